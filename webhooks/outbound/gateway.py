"""The outbound Twilio REST gateway: the only code that talks to Twilio's API.

Failures are retried with exponential backoff and jitter where a repeat is safe, within a time budget
per request kind (a dispatch job or a webhook never blocks for long); a 429's Retry-After is honoured
up to a cap, never undercut. What is safe to repeat depends on whether the failed request may have
taken effect (`GatewayError.unsure`):

- Twilio refused it before doing anything (429, 503) or it never left (connection refused, connect
  timeout): every request may be sent again.
- It may have been done (a read timeout, a dropped connection, 500/502/504): only requests whose
  repeat is harmless are sent again (reads; hanging up), and moving a queued caller (Calls update
  with Url) once Twilio shows the caller still in their queue: a second
  redirect of a caller already moved cuts their ringing <Dial> short, and its action (canceled)
  counts them as having hung up.
- Calls create and Messages create have no idempotency key at Twilio: an unsure failure is never
  repeated (it could ring a member twice or text them twice). For a call, the dialer looks for it
  among the live calls to the number instead (`live_call_sid`) and otherwise leaves its ticket to
  the stale-dialing check; for a text, the caller is told it failed, which may be wrong but is not
  a second text.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from core.logs import log_event, mask_phone
from webhooks.outbound.conferences import ConferenceRequests
from webhooks.outbound.retry import (
    MIN_TRY_S,
    NOT_DONE_STATUSES,
    POLICIES,
    TWILIO_API,
    Failure,
    GatewayError,
    RebasedHttpClient,
    RetryPolicy,
    TookEffect,
    never_sent,
    paged_read_failure,
    retry_after,
)

log = logging.getLogger("hotline.gateway")

@dataclass
class Queue:
    """A Twilio queue, as the hotline needs to know it."""

    sid: str
    name: str
    max_size: int
    current_size: int


class TwilioGateway(ConferenceRequests):
    """Calls, queues, queue members and messages over Twilio's REST API (or its simulator).

    `timeout_s` bounds each request; `policies` override `POLICIES` by kind; `sleep`, `rand` and
    `monotonic` are the backoff's collaborators (tests give fakes).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str = TWILIO_API,
        from_number: str = "",
        timeout_s: float = 5.0,
        *,
        policies: dict[str, RetryPolicy] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.from_number = from_number
        self.http = RebasedHttpClient(api_url, timeout_s)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.policies = {**POLICIES, **(policies or {})}
        self._sleep, self._rand, self._monotonic = sleep, rand, monotonic

    def _call(self, what: str, fn: Any, kind: str = "read", *, again_if_unsure: bool | TookEffect = False,
              **fields: Any) -> Any:
        """Run `fn` (one REST request), retrying per the policy of `kind`; GatewayError once it gives up.

        `again_if_unsure`: whether a failure that may have taken effect is sent again: True (a repeat is
        harmless), False (never), or a TookEffect check asked before each repeat and before giving up.
        """
        policy = self.policies[kind]
        deadline = self._monotonic() + policy.budget_s
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.http.deadline(time.monotonic() + max(0.0, deadline - self._monotonic())):
                    result = fn()
            except (TwilioException, OSError) as exc:
                failure = self._classify(exc)
                pause, verdict = self._next(policy, attempt, failure, deadline, again_if_unsure)
                if verdict is True:  # the unsure request did take effect
                    log_event(log, "twilio rest done despite error", logging.WARNING, op=what, attempt=attempt,
                              status=failure.status, **fields)
                    return None
                if pause is None:
                    unsure = failure.unsure and verdict is None
                    log_event(
                        log,
                        "twilio rest failed",
                        logging.WARNING,
                        op=what,
                        attempts=attempt,
                        status=failure.status,
                        code=failure.code,
                        unsure=unsure,
                        **fields,
                    )
                    raise GatewayError(f"{what}: {failure.message} (after {attempt} attempt{'s' * (attempt > 1)})",
                                       failure.status, failure.code, unsure=unsure, attempts=attempt) from None
                log_event(log, "twilio rest retry", logging.WARNING, op=what, attempt=attempt, status=failure.status,
                          code=failure.code, pause_s=round(pause, 3), **fields)
                self._sleep(pause)
                continue
            log_event(log, "twilio rest", logging.DEBUG, op=what, attempts=attempt, **fields)
            return result

    def _classify(self, exc: BaseException) -> Failure:
        if isinstance(exc, TwilioRestException):
            return self._answered(int(exc.status or 0), exc.code, exc.msg)
        page = paged_read_failure(exc)
        if page is not None:  # a list read (Calls, Queues): twilio-python raises a bare TwilioException for it
            return self._answered(*page)
        if isinstance(exc, OSError):  # requests' errors: no answer
            if never_sent(exc):
                return Failure(0, None, f"Twilio could not be reached: {type(exc).__name__}", True, unsure=False)
            return Failure(0, None, f"Twilio did not answer: {type(exc).__name__}: {exc}", True, unsure=True)
        return Failure(0, None, f"Twilio's answer was not understood: {exc}", False, unsure=True)

    def _answered(self, status: int, code: int | None, message: str) -> Failure:
        """A request Twilio answered with an error status: retryable when 429 or 5xx, unsure when a 5xx but 503."""
        retryable = status == 429 or status >= 500
        after = retry_after(self.http.last_headers()) if status in NOT_DONE_STATUSES else None
        return Failure(status, code, f"Twilio answered {status} ({code}): {message}", retryable,
                       unsure=status >= 500 and status not in NOT_DONE_STATUSES, retry_after=after)

    def _next(self, policy: RetryPolicy, attempt: int, failure: Failure, deadline: float,
              again_if_unsure: bool | TookEffect) -> tuple[float | None, bool | None]:
        """The pause before the next attempt (None: give up) and, for an unsure failure, whether it took effect."""
        verdict: bool | None = None
        if failure.unsure:
            if callable(again_if_unsure):
                try:
                    verdict = again_if_unsure()
                except GatewayError:
                    verdict = None
                if verdict is not False:
                    return None, verdict  # done after all, or no telling: never send it twice
            elif not again_if_unsure:
                return None, None
        if not failure.retryable or attempt >= policy.attempts:
            return None, verdict
        pause = policy.backoff(attempt, self._rand())
        if failure.retry_after is not None:
            if failure.retry_after > policy.retry_after_cap_s:
                return None, verdict  # Twilio asks for longer than we may wait: fail now rather than hammer it
            pause = max(pause, failure.retry_after)
        if self._monotonic() + pause + MIN_TRY_S > deadline:
            return None, verdict
        return pause, verdict

    # --- calls -----------------------------------------------------------------------------------

    def create_call(self, to: str, url: str, status_callback: str, timeout_s: int = 30, from_number: str = "",
                    events: tuple[str, ...] = ("initiated", "ringing", "answered", "completed")) -> str:
        """Dial `to`; Twilio fetches `url` when answered, and posts the call's `events` to `status_callback`.
        Returns the new CallSid.

        Retried only when Twilio provably placed nothing: an unsure failure (GatewayError.unsure) may
        have rung the member, see `live_call_sid`.
        """
        call = self._call(
            "calls.create",
            lambda: self.client.calls.create(
                to=to, from_=from_number or self.from_number, url=url, method="POST",
                status_callback=status_callback, status_callback_method="POST",
                status_callback_event=list(events), timeout=timeout_s,
            ),
            "create", to=mask_phone(to),
        )
        return str(call.sid)

    def live_call_sid(self, to: str) -> str | None:
        """The sid of the newest call to `to` that is queued, ringing or in progress, if any."""
        calls = self._call("calls.list", lambda: self.client.calls.list(to=to, limit=20), "read", again_if_unsure=True,
                           to=mask_phone(to))
        return next((str(c.sid) for c in calls if c.status in ("queued", "ringing", "in-progress")), None)

    def live_call_to(self, to: str) -> bool:
        """True if a call to `to` is queued, ringing or in progress (Twilio lists the newest first)."""
        return self.live_call_sid(to) is not None

    def redirect_call(
        self, call_sid: str, url: str, *, queue_sid: str | None = None, queue_name: str | None = None
    ) -> None:
        """Make a live call fetch and run the TwiML at `url`.

        For a caller held in a Twilio queue (its sid, or its name), an unsure failure is repeated once
        Twilio shows the caller still in that queue, and counts as done once it shows them gone from it.
        """
        took_effect: bool | TookEffect = False
        if queue_sid or queue_name:
            took_effect = partial(self._left_queue, queue_sid, queue_name, call_sid)
        self._call("calls.update", lambda: self.client.calls(call_sid).update(url=url, method="POST"), "move",
                   again_if_unsure=took_effect, call_sid=call_sid)

    def hang_up(self, call_sid: str) -> None:
        """End a live call (repeating an unsure request is harmless)."""
        self._call("calls.update", lambda: self.client.calls(call_sid).update(status="completed"), "hangup",
                   again_if_unsure=True, call_sid=call_sid)

    # --- queues ----------------------------------------------------------------------------------

    def in_queue(self, queue_sid: str, call_sid: str) -> bool:
        """True while `call_sid` is a member of the queue `queue_sid` (one quick request, not retried)."""
        def fetch() -> bool:
            try:
                self.client.queues(queue_sid).members(call_sid).fetch()
            except TwilioRestException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return bool(self._call("queue_members.fetch", fetch, "check", call_sid=call_sid, queue_sid=queue_sid))

    def _left_queue(self, queue_sid: str | None, queue_name: str | None, call_sid: str) -> bool | None:
        """For an unsure move: True when the caller is no longer in their queue, False while they are, None: unknown."""
        if not queue_sid and queue_name:
            found = self._call("queues.list", lambda: [q for q in self.client.queues.list(page_size=1000)
                                                      if q.friendly_name == queue_name], "check", queue=queue_name)
            if not found:
                return None
            queue_sid = str(found[0].sid)
        if not queue_sid:
            return None
        return not self.in_queue(queue_sid, call_sid)

    def ensure_queue(self, name: str, max_size: int) -> Queue:
        """The queue named `name` holding at most `max_size` callers: created so if missing, its MaxSize updated if
        not (a queue `<Enqueue>` made on demand has Twilio's default). A repeat looks for it first: never two."""
        def find_or_create() -> Any:
            for q in self.client.queues.list(page_size=1000):
                if q.friendly_name == name:
                    if int(q.max_size or 0) != max_size:
                        return self.client.queues(q.sid).update(max_size=max_size)
                    return q
            return self.client.queues.create(friendly_name=name, max_size=max_size)

        q = self._call("queues.ensure", find_or_create, "read", again_if_unsure=True, queue=name)
        return Queue(
            sid=q.sid, name=q.friendly_name, max_size=int(q.max_size or max_size), current_size=int(q.current_size or 0)
        )

    # --- messages --------------------------------------------------------------------------------

    def send_sms(self, to: str, body: str, from_number: str = "") -> str:
        """Send a text message; returns its MessageSid. Retried only when Twilio provably sent nothing."""
        msg = self._call(
            "messages.create",
            lambda: self.client.messages.create(to=to, from_=from_number or self.from_number, body=body),
            "sms", to=mask_phone(to),
        )
        return str(msg.sid)
