"""<Dial>: ring simulated agents or phones, whisper to the one who answers, bridge, report DialCallStatus."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from simulator.conference import dial_conference
from simulator.control import HungUp, LegEnded, Redirected
from simulator.endpoints import Endpoint, client_key
from simulator.errors import NotSimulated
from simulator.flow import DECLINED, Context, Goto, Outcome
from simulator.network import new_sid
from simulator.results import DialOutcome, Heard
from simulator.twiml import method_attr, number_attr, text, url_attr

if TYPE_CHECKING:
    from simulator.call import SimulatedCall

WHISPER_VERBS = frozenset({"Say", "Play", "Pause", "Hangup"})
BUSY_SECONDS = 1.0  # how long a busy signal takes to come back


class Leg:
    """The called party's side of a <Dial> (Direction outbound-dial), visible to the REST API."""

    def __init__(self, parent: SimulatedCall, endpoint: Endpoint, whisper_url: str | None, from_: str) -> None:
        self.sid = new_sid("CA")
        self.parent = parent
        self.parent_sid: str | None = parent.sid
        self.endpoint, self.whisper_url = endpoint, whisper_url
        self.from_, self.to, self.direction = from_, endpoint.key, "outbound-dial"
        self.status = "ringing"
        self.created = datetime.now(UTC)
        self.started: datetime | None = None
        self.ended: datetime | None = None
        self.heard: list[Heard] = []
        self.answered_at = 0.0
        self.duration = 0

    def params(self) -> dict[str, str]:
        """What Twilio sends when it requests this leg's whisper URL."""
        return self.parent.params({
            "CallSid": self.sid, "ParentCallSid": self.parent.sid, "From": self.from_, "To": self.to,
            "Caller": self.from_, "Called": self.to, "Direction": self.direction,
        }, "in-progress")

    def redirect(self, url: str, method: str = "POST") -> bool:
        """Moving the agent's leg elsewhere is not simulated."""
        raise NotSimulated(f"redirecting <Dial> leg {self.sid} (the called party) is not simulated")

    def hang_up(self, status: str) -> bool:
        """The agent hangs up: the bridge ends and the caller's <Dial> completes."""
        if self.status != "in-progress":
            return False
        return self.parent.control.interrupt(LegEnded())

    def finish(self, status: str, now: float) -> None:
        """Close the leg with its final status."""
        if self.status == "in-progress":
            self.duration = int(now - self.answered_at)
        self.status = status
        self.ended = datetime.now(UTC)


def _legs(call: SimulatedCall, el: ET.Element, doc_url: str) -> list[Leg]:
    """One leg per noun (a bare number counts as <Number>); other nouns are not simulated."""
    caller_id = el.get("callerId") or call.from_
    bare = (el.text or "").strip()
    nouns = list(el)
    if not nouns and bare:
        return [Leg(call, call.net.endpoints.get(bare), None, caller_id)]
    legs = []
    for noun in nouns:
        if noun.tag == "Client":
            identity = noun.find("Identity")  # <Client><Identity>alice</Identity></Client> or <Client>alice</Client>
            key = client_key(text(identity if identity is not None else noun))
        elif noun.tag == "Number":
            key = text(noun)
        else:
            raise NotSimulated(f"call {call.sid}: <Dial><{noun.tag}> in {doc_url} is not simulated")
        method_attr(noun)
        legs.append(Leg(call, call.net.endpoints.get(key), url_attr(noun, "url", doc_url), caller_id))
    return legs


def _ring(legs: list[Leg], timeout: float) -> tuple[Leg | None, str, float]:
    """Who answers first, else the DialCallStatus and how long finding out takes."""
    if any(leg.endpoint.behaviour == "manual" for leg in legs):
        raise NotSimulated(f"<Dial> to {[leg.to for leg in legs]}: a \"manual\" device is only rung by Calls.create")
    answering = [leg for leg in legs if leg.endpoint.behaviour == "answer" and leg.endpoint.answer_after < timeout]
    if answering:
        winner = min(answering, key=lambda leg: leg.endpoint.answer_after)
        return winner, "answered", winner.endpoint.answer_after
    behaviours = {leg.endpoint.behaviour for leg in legs}
    if behaviours == {"busy"}:
        return None, "busy", BUSY_SECONDS
    if behaviours == {"failed"}:
        return None, "failed", 0.0
    return None, "no-answer", timeout


def dial(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Ring, whisper, bridge for the agent's talk time, then request `action` with DialCallStatus."""
    if any(noun.tag == "Conference" for noun in el):
        return dial_conference(call, el, doc_url, ctx)
    action = url_attr(el, "action", doc_url)
    method_attr(el)
    timeout = number_attr(el, "timeout", 30)
    time_limit = number_attr(el, "timeLimit", 0) or None  # Twilio's default (4 h) is the call's own limit
    legs = _legs(call, el, doc_url)
    events, control = call.net.events, call.control
    for leg in legs:
        call.net.calls.add(leg)
        events.emit("dial.ringing", call.sid, endpoint=leg.to, dial_call_sid=leg.sid)
    winner, status, ring_seconds = _ring(legs, timeout)
    shown = winner or legs[0]
    try:
        control.wait(ring_seconds)
        if winner is not None:
            status = _connect(call, winner, time_limit)
    except (Redirected, HungUp) as exc:
        # Twilio still requests the action when the caller leaves a <Dial>; the answer is not followed.
        status = "completed" if shown.status == "in-progress" else "canceled"
        outcome = _close(call, legs, shown, status)
        if action:
            call.fetch(action, "dial-action", _figures(outcome), status=exc.status if isinstance(exc, HungUp) else None)
        raise
    outcome = _close(call, legs, shown, status)
    return Goto(action, "dial-action", _figures(outcome)) if action else None


def _connect(call: SimulatedCall, leg: Leg, time_limit: float | None) -> str:
    """The leg answered: whisper, then talk until the agent's talk time, a hang-up or the time limit."""
    leg.status, leg.answered_at, leg.started = "in-progress", call.control.now, datetime.now(UTC)
    call.net.events.emit("dial.answered", call.sid, endpoint=leg.to, dial_call_sid=leg.sid)
    if leg.whisper_url:
        root = call.fetch(leg.whisper_url, "whisper", params=leg.params())
        if call.run_document(root, leg.whisper_url, Context("whisper", leg.heard, WHISPER_VERBS)) is DECLINED:
            return "no-answer"
    call.net.events.emit("dial.connected", call.sid, endpoint=leg.to, dial_call_sid=leg.sid)
    limits = [t for t in (leg.endpoint.talk_seconds, time_limit) if t is not None]
    call.control.hang_up_after("talk", call.cursor.script.hangup_after_talk_seconds)
    try:
        call.control.wait(min(limits) if limits else None)  # None: until someone hangs up
    except LegEnded:
        pass  # the agent hung up: the caller's <Dial> is over
    finally:
        call.control.hang_up_after("talk", None)
    return "completed"


def _close(call: SimulatedCall, legs: list[Leg], shown: Leg, status: str) -> DialOutcome:
    """End every leg, record and announce the outcome."""
    someone_answered = shown.status == "in-progress"
    for leg in legs:
        if leg.status == "in-progress":
            leg.finish("completed", call.control.now)
        else:
            leg.finish("canceled" if someone_answered or status == "completed" else status, call.control.now)
    outcome = DialOutcome(status, shown.sid, shown.duration, shown.to, shown.heard)
    call.result.dial_results.append(outcome)
    call.net.events.emit(
        "dial.ended", call.sid, endpoint=shown.to, dial_call_sid=shown.sid, status=status, duration=shown.duration
    )
    return outcome


def _figures(outcome: DialOutcome) -> dict[str, str]:
    return {
        "DialCallStatus": outcome.status,
        "DialCallSid": outcome.dial_call_sid,
        "DialCallDuration": str(outcome.duration),
    }
