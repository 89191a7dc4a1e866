"""The hotline under faults: a store down, Twilio retrying, failing or out of order, a worker killed."""
