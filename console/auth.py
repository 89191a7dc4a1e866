"""Who is asking: HTTP Basic or the console's session, CSRF tokens, and role checks on every route."""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import abort, current_app, g, jsonify, request, session

from callqueue.agents.logins import Identity, authenticate, identity_of
from core.context import db

F = TypeVar("F", bound=Callable[..., Any])

# Verified Basic credentials are remembered for a minute per process, keyed by a keyed hash:
# an agent's console polling every second must not cost a 13 ms scrypt each time.
_CACHE_TTL_S = 60.0


def _cache_key(login: str, password: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{login}\0{password}".encode(), hashlib.sha256).hexdigest()


def _cache() -> dict[str, tuple[float, str, Identity]]:
    """This app's cache: login → (expiry, credentials digest, identity)."""
    return current_app.extensions.setdefault("basic_auth_cache", {})


def _from_basic() -> Identity | None:
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    digest = _cache_key(auth.username, auth.password or "")
    hit = _cache().get(auth.username)
    if hit and hit[0] > time.monotonic() and hmac.compare_digest(hit[1], digest):
        return hit[2]
    # Any failed attempt forgets the login's cached success: a lock applies at once in this process.
    _cache().pop(auth.username, None)
    result = authenticate(db(), auth.username, auth.password or "", datetime.now(UTC))
    db().commit()  # failure counters and lockouts must persist even though the request is refused
    if result.identity is None:
        if result.reason == "locked":
            abort(json_error(429, "too many failed logins; try again later"))
        return None
    _cache()[auth.username] = (time.monotonic() + _CACHE_TTL_S, digest, result.identity)
    return result.identity


def current_identity() -> Identity | None:
    """The caller of this request, from Basic credentials or the console session."""
    if "identity" not in g:
        ident = _from_basic()
        g.via_session = False
        if ident is None and session.get("login"):
            ident = identity_of(db(), session["login"])
            g.via_session = ident is not None
        g.identity = ident
    return g.identity


def csrf_token() -> str:
    """This browser session's CSRF token (made on first use), for forms and the pages' scripts."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid() -> bool:
    """Whether the request carries this session's CSRF token (form field or X-CSRF-Token header)."""
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    return bool(expected) and hmac.compare_digest(expected, given)


def needs_csrf() -> bool:
    """A state-changing request authenticated only by the session cookie, which a browser sends by itself."""
    return request.method not in ("GET", "HEAD", "OPTIONS") and bool(g.get("via_session"))


def json_error(status: int, reason: str) -> Any:
    """A JSON error response `{"error": reason}`."""
    resp = jsonify(error=reason)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="hotline"'
    return resp


def require_role(*roles: str) -> Callable[[F], F]:
    """Allow the route only to a logged-in identity whose role is in `roles` (401 / 403 otherwise)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            ident = current_identity()
            if ident is None:
                return json_error(401, "log in (HTTP Basic or the console) first")
            if ident.role not in roles:
                return json_error(403, f"this needs the role {' or '.join(roles)}")
            if needs_csrf() and not csrf_valid():
                return json_error(403, "the X-CSRF-Token header is missing or wrong; reload the page")
            return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]  # functools.wraps keeps fn's signature, not its type

    return wrap
