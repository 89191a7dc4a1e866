"""The X-Twilio-Signature check, over the URL Twilio actually requested."""
from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from flask import Request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict


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
        return _validator(auth_token).validate(url, request.get_data(as_text=True), signature)
    # Twilio signs the URL as configured, so the first HMAC nearly always matches; only a mismatch pays
    # for the library's full check, which also tries the URL with and without its port (two more HMACs).
    if hmac.compare_digest(form_signature(auth_token, url, request.form), signature):
        return True
    return _validator(auth_token).validate(url, request.form, signature)


def form_signature(auth_token: str, url: str, form: MultiDict[str, str]) -> str:
    """Twilio's HMAC-SHA1 signature of a form POST: the URL, then each name and value, names sorted."""
    s = url + "".join(name + value for name in sorted(set(form)) for value in sorted(set(form.getlist(name))))
    return base64.b64encode(hmac.new(auth_token.encode(), s.encode("utf-8"), hashlib.sha1).digest()).decode()


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)
