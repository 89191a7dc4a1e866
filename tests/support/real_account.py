"""A real Twilio account's settings (made-up values of the right shape) and the app built on them, for the softphone's
token and SDK tests. Nothing built from them reaches Twilio: the tests use no network."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.services import Services
from hotline.app import create_app, create_services

ACCOUNT_SID = "AC" + "a1" * 16
API_KEY_SID = "SK" + "b2" * 16
API_KEY_SECRET = "softphone-api-key-secret-0123456789"
TWIML_APP_SID = "AP" + "c3" * 16
REAL_ACCOUNT = {
    "twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": "real-account-auth-token-0123456789",
    "twilio_api_key_sid": API_KEY_SID, "twilio_api_key_secret": API_KEY_SECRET, "twilio_twiml_app_sid": TWIML_APP_SID,
    "pin_key": "p" * 32, "secret_key": "real-account-secret-key",
}


@pytest.fixture
def real_app(services: Services, overrides: dict[str, Any]) -> Iterator[Any]:
    """The app with a real Twilio account's settings, on the test stores."""
    svc = create_services({**overrides, **REAL_ACCOUNT})
    try:
        yield create_app(services=svc)
    finally:
        svc.close()
