"""The constants every room uses: where the repository is, the test configuration, Twilio's test credentials."""
from __future__ import annotations

from pathlib import Path

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[2]  # the repository (subprocesses run there; tests read its sources)
ALWAYS_OPEN = Path(__file__).with_name("always_open.toml")
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_URL = "https://hotline.test"


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    return RequestValidator(token).compute_signature(url, params)
