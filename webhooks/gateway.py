"""The outbound Twilio REST gateway: the only code that talks to Twilio's API."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from hotline.logs import log_event, mask_phone

log = logging.getLogger("hotline.gateway")

TWILIO_API = "https://api.twilio.com"


class GatewayError(RuntimeError):
    """A REST request to Twilio failed; `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _RebasedHttpClient(TwilioHttpClient):
    """Sends every api.twilio.com request to `api_url` instead (the simulator, or a proxy)."""

    def __init__(self, api_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout, pool_connections=True)
        self.api_url = api_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.api_url != TWILIO_API and url.startswith(TWILIO_API):
            url = self.api_url + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)


@dataclass
class Queue:
    """A Twilio queue, as the hotline needs to know it."""

    sid: str
    name: str
    max_size: int
    current_size: int


class TwilioGateway:
    """Calls, queues, queue members and messages over Twilio's REST API (or its simulator)."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str = TWILIO_API, from_number: str = "", timeout_s: float = 5.0) -> None:
        self.from_number = from_number
        self.client = Client(account_sid, auth_token, http_client=_RebasedHttpClient(api_url, timeout_s))

    def _call(self, what: str, fn: Any, **fields: Any) -> Any:
        try:
            result = fn()
        except TwilioRestException as exc:
            log_event(log, "twilio rest error", logging.WARNING, op=what, status=exc.status, code=exc.code, **fields)
            raise GatewayError(f"{what}: Twilio answered {exc.status} ({exc.code}): {exc.msg}", exc.status, exc.code) from None
        except (TwilioException, OSError) as exc:
            log_event(log, "twilio unreachable", logging.WARNING, op=what, error=type(exc).__name__, **fields)
            raise GatewayError(f"{what}: Twilio did not answer: {exc}") from None
        log_event(log, "twilio rest", logging.DEBUG, op=what, **fields)
        return result

    def create_call(self, to: str, url: str, status_callback: str, timeout_s: int = 30, from_number: str = "") -> str:
        """Dial `to`; Twilio fetches `url` when answered. Returns the new CallSid."""
        call = self._call(
            "calls.create",
            lambda: self.client.calls.create(
                to=to, from_=from_number or self.from_number, url=url, method="POST",
                status_callback=status_callback, status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"], timeout=timeout_s,
            ),
            to=mask_phone(to),
        )
        return str(call.sid)

    def live_call_to(self, to: str) -> bool:
        """True if a call to `to` is queued, ringing or in progress (Twilio lists the newest first)."""
        calls = self._call("calls.list", lambda: self.client.calls.list(to=to, limit=20), to=mask_phone(to))
        return any(c.status in ("queued", "ringing", "in-progress") for c in calls)

    def redirect_call(self, call_sid: str, url: str) -> None:
        """Make a live call fetch and run the TwiML at `url`."""
        self._call("calls.update", lambda: self.client.calls(call_sid).update(url=url, method="POST"), call_sid=call_sid)

    def hang_up(self, call_sid: str) -> None:
        """End a live call."""
        self._call("calls.update", lambda: self.client.calls(call_sid).update(status="completed"), call_sid=call_sid)

    def dequeue_member(self, queue_sid: str, call_sid: str, url: str) -> None:
        """Take `call_sid` out of a Twilio queue and run the TwiML at `url` for it."""
        self._call(
            "queue_members.update",
            lambda: self.client.queues(queue_sid).members(call_sid).update(url=url, method="POST"),
            call_sid=call_sid, queue_sid=queue_sid,
        )

    def ensure_queue(self, name: str, max_size: int) -> Queue:
        """The queue named `name`, created with `max_size` if missing."""
        def find_or_create() -> Any:
            for q in self.client.queues.list(page_size=1000):
                if q.friendly_name == name:
                    return q
            return self.client.queues.create(friendly_name=name, max_size=max_size)

        q = self._call("queues.ensure", find_or_create, queue=name)
        return Queue(sid=q.sid, name=q.friendly_name, max_size=int(q.max_size or max_size), current_size=int(q.current_size or 0))

    def send_sms(self, to: str, body: str, from_number: str = "") -> str:
        """Send a text message; returns its MessageSid."""
        msg = self._call(
            "messages.create",
            lambda: self.client.messages.create(to=to, from_=from_number or self.from_number, body=body),
            to=mask_phone(to),
        )
        return str(msg.sid)
