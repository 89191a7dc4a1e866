"""Access tokens for the agents' softphone: Twilio's Voice JavaScript SDK registers a Device with one.

An AccessToken signed with the account's API key, naming the agent's client identity, with a VoiceGrant that lets
the browser receive calls to that identity (incoming_allow) and names the TwiML App of its outgoing calls
(https://www.twilio.com/docs/iam/access-tokens#create-an-access-token-for-voice). A token lives at most an hour;
the page asks for a new one before it expires (the SDK's tokenWillExpire event).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from core.settings import Settings

TTL_S = 3600  # Twilio's maximum for a Voice token is 24 h; an hour limits what a leaked token is worth


@dataclass(frozen=True)
class Token:
    """A signed token (JWT) for `identity`, valid until `expires_at` (epoch seconds)."""

    jwt: str
    identity: str
    ttl_s: int
    expires_at: float


def voice_token(settings: Settings, identity: str, ttl_s: int = TTL_S, now: float | None = None) -> Token:
    """A Voice access token for the client `identity` (settings checked at start-up: softphone_problems)."""
    if not 60 <= ttl_s <= TTL_S:
        raise ValueError(f"ttl_s: from 60 to {TTL_S}")
    issued = int(time.time() if now is None else now)
    token = AccessToken(settings.twilio_account_sid, settings.twilio_api_key_sid, settings.twilio_api_key_secret,
                        identity=identity, ttl=ttl_s)
    token.add_grant(VoiceGrant(outgoing_application_sid=settings.twilio_twiml_app_sid, incoming_allow=True))
    return Token(token.to_jwt(), identity, ttl_s, issued + ttl_s)
