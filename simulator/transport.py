"""How signed webhook requests reach the hotline: in-process (Flask test client) or over HTTP."""
from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from twilio.request_validator import RequestValidator


class Reply(NamedTuple):
    """A webhook's answer."""

    status: int
    body: str
    content_type: str


class Transport(Protocol):
    """Sends one form-encoded, signed POST to an absolute URL and returns the answer."""

    def post(self, url: str, params: dict[str, str]) -> Reply:
        """POST `params` to `url` with a valid X-Twilio-Signature."""
        ...


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio computes for a POST of `params` to `url`."""
    return RequestValidator(auth_token).compute_signature(url, params)


class FlaskTransport:
    """Posts into a Flask app in-process; the app sees the absolute URL as its own request URL."""

    def __init__(self, app: Any, auth_token: str) -> None:
        self.app = app
        self.auth_token = auth_token

    def post(self, url: str, params: dict[str, str]) -> Reply:
        """POST through a fresh test client (test clients keep cookies, so one per request is thread-safe)."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        resp = self.app.test_client().post(
            path, base_url=f"{parts.scheme}://{parts.netloc}", data=params,
            headers={"X-Twilio-Signature": signature(self.auth_token, url, params)},
        )
        return Reply(resp.status_code, resp.get_data(as_text=True), resp.content_type or "")


# Told of every answered request: path (with query), seconds from send to the whole answer read, status, headers.
Observer = Callable[[str, float, int, http.client.HTTPMessage], None]


class HttpTransport:
    """Posts over real HTTP with keep-alive, one connection per thread and origin.

    `connect_to` (e.g. "http://127.0.0.1:8000") sends every request to that server while
    signing the public URL, as a TLS-terminating proxy in front of the hotline would.
    `observe` (set by `hotline bench`) is called from the posting thread after each answer.
    """

    def __init__(self, auth_token: str, connect_to: str | None = None, timeout_s: float = 15.0,
                 observe: Observer | None = None) -> None:
        self.auth_token = auth_token
        self.connect_to = urllib.parse.urlsplit(connect_to) if connect_to else None
        self.timeout_s = timeout_s  # Twilio's own webhook limit
        self.observe = observe
        self._local = threading.local()

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        key = (scheme, netloc)
        if key not in pool:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            pool[key] = cls(netloc, timeout=self.timeout_s)
        return pool[key]

    def post(self, url: str, params: dict[str, str]) -> Reply:
        """POST, retrying once on a fresh connection when a kept-alive one was closed by the server."""
        parts = urllib.parse.urlsplit(url)
        target = self.connect_to or parts
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        body = urllib.parse.urlencode(params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(self.auth_token, url, params),
            "Host": parts.netloc,
            "User-Agent": "TwilioProxy/1.1 (hotline simulator)",
        }
        try:
            return self._send(target, path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            return self._send(target, path, body, headers)

    def _send(self, target: urllib.parse.SplitResult, path: str, body: str, headers: dict[str, str]) -> Reply:
        conn = self._connection(target.scheme, target.netloc)
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except Exception:
            self._drop(target.scheme, target.netloc)  # a half-used connection cannot be reused
            raise
        if self.observe is not None:
            self.observe(path, time.perf_counter() - t0, resp.status, resp.headers)
        return Reply(
            resp.status, raw.decode(resp.headers.get_content_charset() or "utf-8"), resp.headers.get("Content-Type", "")
        )

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._local.__dict__.get("pool", {}).pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in getattr(self._local, "pool", {}).values():
            conn.close()
        self._local.pool = {}
