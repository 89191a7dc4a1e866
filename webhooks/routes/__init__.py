"""The /voice/* routes Twilio requests: the IVR, the queue, the callback call, and their checks."""
