"""Hostile input: property-based fuzzing of the webhooks and the JSON API, and Twilio's own spec as a peer (Prism)."""
