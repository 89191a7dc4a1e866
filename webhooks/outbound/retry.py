"""How the gateway retries Twilio's REST API: policies per request kind, the error it raises, and the HTTP client
that keeps each request within the caller's time budget (webhooks/outbound/gateway.py says what is safe to repeat)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from requests.exceptions import ConnectTimeout
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

TWILIO_API = "https://api.twilio.com"
NOT_DONE_STATUSES = (429, 503)  # Twilio answered that it did nothing: too many requests, unavailable
MIN_TRY_S = 0.05  # no attempt is started with less time than this left in the budget


class GatewayError(RuntimeError):
    """A REST request to Twilio failed; `status` is the HTTP status (0: no answer).

    `unsure`: the request may have taken effect all the same (no answer, or a 5xx other than 503);
    False when Twilio refused it or it provably did not happen. `attempts`: requests sent.
    """

    def __init__(self, message: str, status: int = 0, code: int | None = None, *, unsure: bool = False,
                 attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.unsure = unsure
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    """How one kind of request is retried: `attempts` in all, backoff doubling from `base_s` up to
    `max_backoff_s` (half of it random: jitter), everything within `budget_s` (requests included), a
    429's Retry-After followed when it is at most `retry_after_cap_s` (else the request fails at once)."""

    attempts: int = 4
    base_s: float = 0.25
    max_backoff_s: float = 2.0
    budget_s: float = 8.0
    retry_after_cap_s: float = 4.0

    def backoff(self, failures: int, rand: float) -> float:
        """The pause after the `failures`-th failure: b/2 + rand·b/2 with b = base·2^(failures−1), capped."""
        b = min(self.max_backoff_s, self.base_s * 2 ** (failures - 1))
        return b / 2 + rand * b / 2


# Per request kind. Moves and hang-ups run in dispatch jobs (8 s, and one quick look at the queue, at most: a
# caller stays claimed meanwhile); a text may be sent from inside a webhook, which Twilio abandons after 15 s: 3 s.
POLICIES: dict[str, RetryPolicy] = {
    "read": RetryPolicy(attempts=3, budget_s=5.0),
    "move": RetryPolicy(attempts=4, budget_s=8.0),
    "hangup": RetryPolicy(attempts=4, budget_s=8.0),
    "create": RetryPolicy(attempts=3, budget_s=6.0),
    "sms": RetryPolicy(attempts=2, budget_s=3.0, max_backoff_s=0.5, retry_after_cap_s=1.0),
    "check": RetryPolicy(attempts=1, budget_s=2.0),  # a look before repeating a move: never itself repeated
}


class RebasedHttpClient(TwilioHttpClient):
    """Sends every api.twilio.com request to `api_url` instead (the simulator, or a proxy).

    Each request's timeout is cut to what is left of the calling thread's budget, and its answer's
    headers are kept (per thread) for the Retry-After of a failure.
    """

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout, pool_connections=True)
        self.api_url = api_url.rstrip("/")
        self._local = threading.local()

    @contextmanager
    def deadline(self, at: float) -> Iterator[None]:
        """Requests on this thread end by monotonic time `at` (the earliest of nested deadlines wins)."""
        outer = getattr(self._local, "deadline", None)
        self._local.deadline = at if outer is None else min(outer, at)
        try:
            yield
        finally:
            self._local.deadline = outer

    def last_headers(self) -> dict[str, str]:
        """The headers of this thread's last answer."""
        return getattr(self._local, "headers", None) or {}

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.api_url != TWILIO_API and url.startswith(TWILIO_API):
            url = self.api_url + url[len(TWILIO_API):]
        at = getattr(self._local, "deadline", None)
        if at is not None:
            timeout = kwargs.get("timeout") or self.timeout or 60.0
            kwargs["timeout"] = max(MIN_TRY_S, min(timeout, at - time.monotonic()))
        self._local.headers = {}
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = dict(response.headers or {})
        return response


@dataclass(frozen=True)
class Failure:
    """A failed request as the retry loop sees it."""

    status: int
    code: int | None
    message: str
    retryable: bool  # worth sending again at all
    unsure: bool  # it may have taken effect
    retry_after: float | None = None


def never_sent(exc: BaseException) -> bool:
    """True when the request provably never reached the server (refused, or no connection in time)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, (ConnectTimeout, NewConnectionError, ConnectTimeoutError, ConnectionRefusedError)):
            return True
        nxt = getattr(seen, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else seen.__cause__
        seen = nxt
    return False


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


# Whether an unsure failure happened after all: True (it took effect: stop, done), False (it did not:
# sending again is safe), None (cannot tell: stop, unsure).
TookEffect = Callable[[], "bool | None"]


def paged_read_failure(exc: BaseException) -> tuple[int, int | None, str] | None:
    """(status, Twilio error code, message) of a failed list read, or None for any other exception.

    twilio-python's list pages raise `TwilioException("Unable to fetch page", response)` (twilio/base/page.py), not
    the TwilioRestException every other request raises: read the HTTP answer it carries.
    """
    if not (isinstance(exc, TwilioException) and len(exc.args) == 2 and isinstance(exc.args[1], Response)):
        return None
    response = exc.args[1]
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    return response.status_code, code if isinstance(code, int) else None, str(message or exc.args[0])
