"""The call engine: one simulated call, requesting webhooks and following their TwiML as Twilio does."""
from __future__ import annotations

import dataclasses
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

from simulator import dial, enqueue, verbs
from simulator.control import CallControl, HungUp, Redirected
from simulator.endpoints import Endpoint
from simulator.errors import NotSimulated, RequestCapExceeded, SimulationError, TwimlRejected
from simulator.flow import Context, Goto, Marker
from simulator.network import API_VERSION, Network, new_sid
from simulator.results import CallResult, Heard, WebhookRequest
from simulator.script import Script, ScriptCursor
from simulator.transport import Reply
from simulator.twiml import document

HANDLERS: dict[str, verbs.Handler] = {**verbs.BASIC, "Enqueue": enqueue.enqueue, "Dial": dial.dial}
FINAL = ("completed", "busy", "no-answer", "failed", "canceled")


class SimulatedCall:
    """One call leg that runs TwiML: inbound from a caller, or outbound-api from Calls.create."""

    def __init__(self, net: Network, from_: str, to: str, url: str, script: Script, *, direction: str = "inbound",
                 status_callback: str | None = None, callback_events: Sequence[str] = ("completed",),
                 callee: Endpoint | None = None, ring_timeout: float = 60.0, twiml: str | None = None) -> None:
        self.net = net
        self.sid = new_sid("CA")
        self.from_, self.to, self.direction, self.url = from_, to, direction, url
        self.parent_sid: str | None = None
        self.status = "queued" if callee else "ringing"
        self.control = CallControl(net.options.scale, net.options.max_call_seconds)
        self.cursor = ScriptCursor(callee.script if callee else script)
        self.result = CallResult(self.sid, from_, to, direction)
        self.status_callback, self.callback_events = status_callback, tuple(callback_events)
        self.callee, self.ring_timeout, self.twiml = callee, ring_timeout, twiml
        self.created = datetime.now(UTC)
        self.started: datetime | None = None
        self.ended: datetime | None = None
        self._answered_at = 0.0
        self._sequence = 0
        net.calls.add(self)

    @property
    def duration(self) -> int:
        """CallDuration so far (final once the call has ended)."""
        return self.result.duration

    # -- the REST API's levers (called from server threads) --

    def redirect(self, url: str, method: str = "POST") -> bool:
        """Run new TwiML at once, leaving any queue first; False when the call is not in progress."""
        with self.net.queues.lock:  # one lock with <Leave>, so the call leaves its queue exactly once
            if self.status != "in-progress" or self.control.ending():
                return False
            member = self.net.queues.member_of(self.sid)
            if member is not None:
                self.net.queues.remove(member)
            return self.control.interrupt(Redirected(url, method))

    def hang_up(self, status: str) -> bool:
        """Status=completed ends the call, canceled cancels it if not yet answered; False once it has ended."""
        if self.status in FINAL:
            return False
        if status == "canceled" and self.status == "in-progress":
            return True  # Twilio ignores a cancel of an answered call
        final = "completed" if self.status == "in-progress" else "canceled"
        self.control.interrupt(HungUp(final, by="api"))  # refused only when a hang-up is already under way
        return True

    # -- running --

    def run(self) -> CallResult:
        """Place the call and follow it to its end on this thread; failures are kept in result.error."""
        self.net.events.emit("call.started", self.sid, from_=self.from_, to=self.to, direction=self.direction)
        try:
            if self.callee is not None:
                self._ring()
            self._follow(Goto(self.url, "voice"))
            final = "completed"
        except HungUp as exc:
            final = exc.status
        except Exception as exc:  # noqa: BLE001 (anything else is the test's business: kept, re-raised by whoever joins)
            self.result.error = exc
            final = "failed"
        self._end(final)
        return self.result

    def _ring(self) -> None:
        """The outbound call rings the callee; HungUp with busy/no-answer/failed/canceled when not answered."""
        callee = self.callee
        assert callee is not None
        self._progress("initiated", "initiated")
        self.status = "ringing"
        self._progress("ringing", "ringing")
        self.net.devices.ring(self, callee)  # the device's behaviour (simulator/devices.py)
        self._answer()
        self._progress("answered", "in-progress")

    def _answer(self) -> None:
        self.status = "in-progress"
        self._answered_at = self.control.now
        self.started = datetime.now(UTC)
        self.control.hang_up_after("call", self.cursor.script.hangup_after_seconds)
        self.net.events.emit("call.answered", self.sid)

    def _follow(self, nxt: Goto | None) -> None:
        """Fetch and run documents until the call's TwiML runs out."""
        while nxt is not None:
            try:
                if nxt.kind == "voice" and self.twiml is not None:
                    root = document(Reply(200, self.twiml, "application/xml"), "(Twiml parameter)", f"call {self.sid}")
                else:
                    root = self.fetch(nxt.url, nxt.kind, nxt.extra)
                if self.status == "ringing" and (len(root) == 0 or root[0].tag != "Reject"):
                    self._answer()
                outcome = self.run_document(root, nxt.url, Context("main", self.result.transcript))
                self.control.check()  # a REST redirect that lands as the document ends still counts
            except Redirected as exc:
                outcome = Goto(exc.url, "rest-redirect")
            assert not isinstance(outcome, Marker), "markers only come from wait and whisper documents"
            nxt = outcome

    def run_document(self, root: ET.Element, doc_url: str, ctx: Context) -> Goto | Marker | None:
        """Run the verbs in order; the first jump or marker wins, None when the document ends."""
        for el in root:
            self.control.check()
            if ctx.allowed is not None and el.tag not in ctx.allowed:
                raise TwimlRejected(f"call {self.sid}: <{el.tag}> is not allowed in a {ctx.kind} document ({doc_url})\n"
                                    f"--- document ---\n{ET.tostring(root, encoding='unicode')}")
            handler = HANDLERS.get(el.tag)
            if handler is None:
                raise NotSimulated(
                    f"call {self.sid}: <{el.tag}> in {doc_url} is valid TwiML the simulator does not run"
                )
            outcome = handler(self, el, doc_url, ctx)
            if outcome is not None:
                return outcome
        return None

    def hear(self, ctx: Context, heard: Heard) -> None:
        """Record what a party hears (before the time it takes passes) and announce it."""
        heard = dataclasses.replace(heard, party=heard.party or ctx.kind)
        ctx.heard.append(heard)
        self.net.events.emit("heard", self.sid, party=ctx.kind, verb=heard.verb, text=heard.text)

    def params(self, extra: dict[str, str] | None = None, status: str | None = None) -> dict[str, str]:
        """The parameters Twilio sends with every request about this call."""
        base = {
            "CallSid": self.sid, "AccountSid": self.net.account_sid, "From": self.from_, "To": self.to,
            "Caller": self.from_, "Called": self.to, "CallStatus": status or self.status,
            "ApiVersion": API_VERSION, "Direction": self.direction,
        }
        return {**base, **(extra or {})}

    def fetch(self, url: str, kind: str, extra: dict[str, str] | None = None, *, status: str | None = None,
              params: dict[str, str] | None = None) -> ET.Element:
        """Request a TwiML document (counted against the request cap) and return its checked root."""
        if len(self.result.requests) >= self.net.options.max_requests:
            raise RequestCapExceeded(f"call {self.sid} made {len(self.result.requests)} requests; last: "
                                     f"{[r.url for r in self.result.requests[-5:]]}")
        if not urllib.parse.urlsplit(url).scheme:  # e.g. a relative URL in inline Twiml, which has no URL of its own
            raise SimulationError(f"call {self.sid}: cannot request {url!r}: not an absolute URL")
        sent = params or self.params(extra, status)
        reply = self._post(url, sent)
        self.result.requests.append(WebhookRequest(kind, url, sent, reply.status, reply.body))
        return document(reply, url, f"call {self.sid} ({kind})")

    def _post(self, url: str, params: dict[str, str]) -> Reply:
        if self.net.closed.is_set():
            raise SimulationError(f"call {self.sid}: the simulator was stopped before POST {url}")
        return self.net.transport.post(url, params)

    # -- ending --

    def _progress(self, event: str, call_status: str, extra: dict[str, str] | None = None) -> None:
        """A status callback for a call-progress event the call subscribed to."""
        if not self.status_callback or event not in self.callback_events:
            return
        fields = {"CallbackSource": "call-progress-events", "SequenceNumber": str(self._sequence),
                  "Timestamp": format_datetime(datetime.now(UTC)), **(extra or {})}
        self._sequence += 1
        sent = self.params(fields, call_status)
        reply = self._post(self.status_callback, sent)
        self.result.requests.append(WebhookRequest("status", self.status_callback, sent, reply.status, reply.body))
        if not 200 <= reply.status < 300:
            raise SimulationError(
                f"call {self.sid}: status callback {self.status_callback} answered {reply.status}\n{reply.body}"
            )

    def _end(self, final: str) -> None:
        answered = self.status == "in-progress"
        self.status = final
        self.ended = datetime.now(UTC)
        self.result.status = final
        self.result.duration = int(self.control.now - self._answered_at) if answered else 0
        self.net.conferences.call_ended(self, final)  # its conferences' callbacks are answered before it ends
        if self.callee is not None:
            self.net.devices.ended(self, self.callee.key, final)
        if self.result.error is None:
            try:
                self._progress("completed", final, {"CallDuration": str(self.result.duration)})
            except SimulationError as exc:
                self.result.error = exc
        self.net.events.emit(
            "call.ended", self.sid, status=final, error=repr(self.result.error) if self.result.error else ""
        )
