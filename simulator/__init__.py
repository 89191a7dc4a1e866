"""An offline stand-in for Twilio: places signed calls, follows TwiML, answers REST requests."""
