"""What the hotline asks of Twilio: the REST gateway, moving callers to agents, dialling callbacks, texts."""
