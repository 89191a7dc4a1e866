"""The softphone's registration, from the app's side: with a real account's settings (and no network) GET
/api/agents/me/token answers a Voice access token (a JWT signed with the API key) for the agent's client identity,
with a Voice grant for incoming calls and the TwiML App; offline the simulated device, a phone agent their phone.
The agent page serves the pinned SDK from this site and lets it reach Twilio's signalling only with a real account,
and every text its scripts show exists in Chinese and English."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from callqueue.agents.accounts import add_agent
from console.i18n import TEXT
from tests.support.common import ROOT
from tests.support.console import log_in
from tests.support.real_account import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, TWIML_APP_SID

SIGNALLING = "wss://voice-js.roaming.twilio.com"


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_jwt(token: str, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of an HS256 JWT whose signature `secret` makes; AssertionError when it does not."""
    head, body, signature = token.split(".")
    expected = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(expected, b64url(signature)), "the token is not signed with the API key's secret"
    return json.loads(b64url(head)), json.loads(b64url(body))


def test_a_real_account_gives_the_agent_a_voice_token_for_their_client_identity(real_app: Any,
                                                                                console_people: None) -> None:
    client = real_app.test_client()
    log_in(client, "ann", "ann-pass-1")
    before = time.time()
    resp = client.get("/api/agents/me/token")  # at once after logging in: the browser registers before going available
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["mode"], body["identity"]) == ("sdk", "ann")
    assert 0 < body["ttl_s"] <= 3600 and before + body["ttl_s"] - 5 <= body["expires_at"] <= time.time() + 3600
    assert API_KEY_SECRET not in resp.get_data(as_text=True)

    header, claims = decode_jwt(body["token"], API_KEY_SECRET)
    assert header == {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}
    assert (claims["iss"], claims["sub"]) == (API_KEY_SID, ACCOUNT_SID)
    assert claims["grants"] == {"identity": "ann", "voice": {"incoming": {"allow": True},
                                                             "outgoing": {"application_sid": TWIML_APP_SID}}}
    assert 0 < claims["exp"] - claims["nbf"] <= 3600 and abs(claims["exp"] - body["expires_at"]) <= 2
    assert claims["exp"] > time.time()

    # A supervisor's token names their own identity; nobody gets one without logging in.
    sup = real_app.test_client()
    log_in(sup, "sam", "sam-pass-1")
    assert decode_jwt(sup.get("/api/agents/me/token").get_json()["token"], API_KEY_SECRET)[1]["grants"][
        "identity"] == "sam"
    assert real_app.test_client().get("/api/agents/me/token").status_code == 401


def test_offline_the_page_uses_the_simulated_device_and_a_phone_agent_their_phone(client: Any, db: Any,
                                                                                  console_people: None) -> None:
    log_in(client, "ann", "ann-pass-1")
    assert client.get("/api/agents/me/token").get_json() == {"mode": "simulated", "identity": "ann"}

    add_agent(db, login="pat", name="Pat", password="pat-pass-1", role="agent", client_identity=None,
              phone="+8613800138123", now=datetime.now(UTC))
    db.commit()
    phone = client.application.test_client()
    log_in(phone, "pat", "pat-pass-1")
    body = phone.get("/api/agents/me/token").get_json()
    assert body["mode"] == "phone" and "token" not in body
    assert re.fullmatch(r"\+86138\*{4}\d{4}", body["endpoint"]), body


def test_the_agent_page_serves_the_pinned_sdk_from_this_site_and_opens_twilio_only_with_a_real_account(
    client: Any, real_app: Any, console_people: None
) -> None:
    log_in(client, "ann", "ann-pass-1")
    page = client.get("/agent")
    csp = page.headers["Content-Security-Policy"]
    assert "connect-src 'self';" in csp and "twilio.com" not in csp  # offline: the page talks to this site only
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', page.get_data(as_text=True), re.S).group(1))
    assert data["sdk_url"] == "/assets/vendor/twilio-voice-sdk.min.js"
    assert "twilio-voice-sdk" not in re.sub(r'id="page-data">.*?</script>', "", page.get_data(as_text=True), flags=re.S)

    sdk = client.get(data["sdk_url"])
    assert sdk.status_code == 200 and sdk.mimetype in ("text/javascript", "application/javascript")
    assert b"Twilio.Device=Twilio.Device||Voice.Device" in sdk.get_data()
    licence = client.get("/assets/vendor/twilio-voice-sdk.LICENSE.md")
    assert licence.status_code == 200 and b"Apache License, Version 2.0" in licence.get_data()
    assert client.get(data["silence_url"]).status_code == 200  # the SDK's sounds, from this site

    real = real_app.test_client()
    log_in(real, "ann", "ann-pass-1")
    csp = real.get("/agent").headers["Content-Security-Policy"]
    assert f"connect-src 'self' {SIGNALLING};" in csp and "script-src 'self';" in csp
    assert "twilio.com" not in real.get("/supervisor/history").headers.get("Content-Security-Policy", "")


# The texts the scripts build from a value: every value the API documents (GET /api/agents/me, the call controls'
# refusal reasons, the hotline's reasons for a state) and every state of the browser phone.
FAMILIES = {
    "state_": ("offline", "available", "on_call", "wrap_up", "away"),
    "phase_": ("ringing", "connecting", "connected", "held", "consulting", "wrap_up"),
    "call_": ("ringing", "connected", "held", "consulting", "wrap_up"),
    "mode_": ("cold", "warm"),
    "device_": ("simulated", "loading", "registering", "registered", "unregistered", "failed", "phone", "unknown"),
    "reason_": ("missed_offers", "heartbeat_lost", "device_unregistered"),
    "err_": ("not_connected", "not_joined", "transfer_pending", "target_unavailable", "same_agent", "no_transfer",
             "not_consulting", "no_leg", "twilio_failed"),
}


def test_every_text_the_console_shows_is_in_chinese_and_english() -> None:
    used = set()
    for script in (ROOT / "console" / "static").glob("*.js"):
        used |= set(re.findall(r'H\.t\("([a-z0-9_]+)"\s*[,)]', script.read_text(encoding="utf-8")))
    for template in (ROOT / "console" / "templates").glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_]+)'\)", template.read_text(encoding="utf-8")))
    used |= {prefix + value for prefix, values in FAMILIES.items() for value in values}
    assert {"accept", "decline", "hold", "resume", "hang_up", "transfer_queue", "the_line"} <= used  # the scan works
    missing = sorted(key for key in used if key not in TEXT)
    half = sorted(key for key in used if key in TEXT and not (TEXT[key].get("zh") and TEXT[key].get("en")))
    assert (missing, half) == ([], [])
