"""Twilio edge: signed voice webhooks that answer in TwiML, and the outbound REST gateway."""
