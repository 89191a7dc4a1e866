"""The webhook signature check, against Twilio's own published vectors and behind proxies."""
from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, request

from tests.support.common import ROOT
from webhooks.security import signature_valid

VECTORS = ROOT.parent / "shared" / "twilio-signature-vectors.json"  # beside the project, as the TwiML schema


def _vectors() -> dict[str, Any] | None:
    return json.loads(VECTORS.read_text()) if VECTORS.is_file() else None


DATA = _vectors()
CASES = DATA["cases"] if DATA else []


def _check(url: str, form: Any, signature: str, token: str, public_url: str = "", body: str | None = None,
           headers: dict[str, str] | None = None, app: Flask | None = None) -> bool:
    """Run signature_valid inside a request built exactly as a server would receive `url`."""
    parts = urlsplit(url)
    app = app or Flask(__name__)
    kwargs: dict[str, Any] = {"method": "POST", "headers": {"X-Twilio-Signature": signature, **(headers or {})}}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    else:
        kwargs["data"] = form
    path = parts.path + ("?" + parts.query if parts.query else "")
    with app.test_request_context(path, base_url=f"{parts.scheme}://{parts.netloc}", **kwargs):
        return signature_valid(request, token, public_url)


@pytest.mark.skipif(DATA is None, reason=f"Twilio signature vectors not found at {VECTORS}")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_twilio_published_vectors(case: dict[str, Any]) -> None:
    token = DATA["auth_token"]
    from werkzeug.datastructures import MultiDict

    form = case.get("params") or MultiDict(case.get("params_list") or [])
    assert _check(case["url"], form, case["signature"], token, body=case.get("body")) is case["valid"]


def test_the_vectors_are_read_and_cover_both_outcomes() -> None:
    if DATA is None:
        # CI sets HOTLINE_REQUIRE_VECTORS=1: there the published vectors must be checked, never skipped.
        if os.environ.get("HOTLINE_REQUIRE_VECTORS", "") not in ("", "0"):
            pytest.fail(f"HOTLINE_REQUIRE_VECTORS is set (as in CI) but there are no vectors at {VECTORS}")
        pytest.skip(f"Twilio signature vectors not found at {VECTORS}")
    assert len(CASES) >= 9 and {c["valid"] for c in CASES} == {True, False}


def test_behind_tls_terminating_proxy_with_public_url() -> None:
    """Twilio signed https://…; the app hears http://internal:8000/… — HOTLINE_PUBLIC_URL fixes it."""
    from tests.support.common import sign

    params = {"CallSid": "CA" + "5" * 32, "From": "+8613800000001"}
    sig = sign("https://hotline.example.com/voice/incoming", params, token="tok")
    assert not _check("http://10.0.0.5:8000/voice/incoming", params, sig, "tok")
    assert _check("http://10.0.0.5:8000/voice/incoming", params, sig, "tok", public_url="https://hotline.example.com")


def test_behind_trusted_proxy_forwarded_headers(services: Any) -> None:
    """With HOTLINE_TRUSTED_PROXIES=1 the app trusts X-Forwarded-Proto/Host from the one proxy in front."""
    from dataclasses import replace

    from hotline.app import create_app
    from tests.support.common import sign

    params = {"CallSid": "CA" + "6" * 32, "From": "+8613800000001"}
    sig = sign("https://hotline.example.com/voice/incoming", params)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hotline.example.com", "X-Forwarded-For": "54.1.2.3"}

    behind = replace(services, settings=replace(services.settings, public_url="", trusted_proxies=1))
    client = create_app(services=behind).test_client()
    ok = client.post("/voice/incoming", data=params, base_url="http://10.0.0.5:8000",
                     headers={"X-Twilio-Signature": sig, **forwarded})
    assert ok.status_code == 200

    untrusting = replace(services, settings=replace(services.settings, public_url="", trusted_proxies=0))
    client = create_app(services=untrusting).test_client()
    refused = client.post("/voice/incoming", data=params, base_url="http://10.0.0.5:8000",
                          headers={"X-Twilio-Signature": sig, **forwarded})
    assert refused.status_code == 403


def test_empty_token_never_validates() -> None:
    params = {"CallSid": "CA1"}
    assert not _check("https://h.test/voice/incoming", params, "", "")


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c.get("params"), dict)], ids=lambda c: c["name"])
def test_fast_path_is_twilios_own_computation(case: dict[str, Any]) -> None:
    """The one-HMAC fast path signs exactly what the library signs for the URL as given."""
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from webhooks.security import form_signature

    token = DATA["auth_token"]
    form = MultiDict(case["params"])
    assert form_signature(token, case["url"], form) == RequestValidator(token).compute_signature(case["url"], form)


def test_fast_path_signs_repeated_fields_like_twilio() -> None:
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from webhooks.security import form_signature

    form = MultiDict([("b", "2"), ("a", "z"), ("a", "y"), ("a", "z"), ("ü", "值")])
    url = "https://example.com/voice/wait?x=1"
    assert form_signature("tok", url, form) == RequestValidator("tok").compute_signature(url, form)
    assert form_signature("tok", url, form) != form_signature("tok2", url, form)
