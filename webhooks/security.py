"""The X-Twilio-Signature check, over the URL Twilio actually requested."""
from __future__ import annotations

from flask import Request
from twilio.request_validator import RequestValidator


def public_request_url(request: Request, public_url: str) -> str:
    """The URL as Twilio saw it: HOTLINE_PUBLIC_URL when set, else the request's own URL.

    Behind a trusted TLS-terminating proxy the app is wrapped in ProxyFix, so the
    request's own scheme and host are already the forwarded ones.
    """
    query = request.query_string.decode("latin-1")
    if public_url:
        return public_url + request.path + ("?" + query if query else "")
    return request.url


def signature_valid(request: Request, auth_token: str, public_url: str) -> bool:
    """True when the request carries a valid Twilio signature for its URL and form body."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    url = public_request_url(request, public_url)
    if request.mimetype == "application/json":
        return RequestValidator(auth_token).validate(url, request.get_data(as_text=True), signature)
    return RequestValidator(auth_token).validate(url, request.form, signature)
