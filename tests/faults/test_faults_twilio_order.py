"""Issue 9, item 3 (2): status callbacks out of order (the status before the Enqueue or Dial action, the whisper
after the status, a late no-answer): the final call record is right and the live figures equal the records.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from callqueue.live import ordering, presence
from core import keys
from hotline.app import create_app
from tests.support.clocks import StepClock
from tests.support.common import PUBLIC_URL, sign
from tests.support.hotline_api import Api, assert_stats_match_records, records
from tests.support.people import add_people
from tests.support.twilio_faults import TUESDAY_10, available, changes, snapshot
from webhooks.outbound.dispatcher import dispatch_all


class Moves:
    """A gateway stand-in that only records the moves the dispatcher asks for (the REST side is tested in
    test_faults_twilio_rest.py)."""

    def __init__(self) -> None:
        self.moved: list[tuple[str, str]] = []

    def redirect_call(self, call_sid: str, url: str, **queue: Any) -> None:
        self.moved.append((call_sid, url))


class Line:
    """Signed webhooks, as Twilio would send them, to an app whose clock the test moves; TwiML schema-checked."""

    GUEST = "+8613600000099"

    def __init__(self, services: Any, clock: StepClock, twiml_check: Callable[[str], None]) -> None:
        self.services, self.clock, self.twiml_check = services, clock, twiml_check
        self.svc = dataclasses.replace(services, clock=clock, extras={"jobs": services.jobs()})
        self.svc.gateway = self.moves = Moves()
        self.app = create_app(services=self.svc)
        self.api = Api(app=self.app)
        add_people(services, ["ann"])

    def post(self, path: str, sid: str, **params: str) -> str:
        data = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": self.GUEST, "To": "+864001234567",
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **params}
        resp = self.app.test_client().post(
            path, data=data, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, data)}
        )
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True))
        body = resp.get_data(as_text=True)
        if body.strip():
            self.twiml_check(body)
        return body

    def queued(self, sid: str) -> datetime:
        """A guest caller through the menu (0: an agent; * skips the member number) into the queue; when queued."""
        self.post("/voice/incoming", sid)
        self.post("/voice/ivr/menu?s=0", sid, Digits="0")
        assert "<Enqueue" in self.post("/voice/ivr/uid?s=1", sid, Digits="*")
        at = self.clock()
        self.clock.tick()
        self.post("/voice/wait", sid, QueueSid="QU" + "1" * 32, QueuePosition="1", QueueTime="1")
        return at

    def offered(self, sid: str) -> None:
        """Ann becomes available and the dispatcher moves the caller to her (redirect, Enqueue action, connect)."""
        available(self.services, "ann", self.clock())
        self.clock.tick()
        assert dispatch_all(self.svc) == 1 and self.moves.moved[-1][0] == sid

    def whisper(self, sid: str) -> str:
        return self.post(f"/voice/whisper?caller={sid}&agent=ann", "CA" + "e" * 32, Direction="outbound-dial",
                         ParentCallSid=sid)

    def agent(self) -> str:
        return presence.get(self.services.redis, "ann", self.clock()).state


@pytest.fixture
def line(services: Any, twiml_check: Callable[[str], None]) -> Line:
    return Line(services, StepClock(TUESDAY_10), twiml_check)


SID = "CA" + "0123456789abcdef" * 2


def test_status_before_the_enqueue_action_abandoned_once(line: Line, services: Any) -> None:
    queued = line.queued(SID)
    line.clock.tick(70)
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="95")
    line.clock.tick()
    assert "<Hangup" in line.post(
        "/voice/queue-result", SID, QueueResult="hangup", QueueTime="71", CallStatus="completed"
    )
    rec = records(services)[SID]
    assert (rec.outcome, rec.waited_s, rec.queue_result, rec.call_status) == ("abandoned", 71.0, "hangup", "completed")
    assert rec.ended == rec.left_queue == queued + timedelta(seconds=71)
    live = assert_stats_match_records(line.api, services, line.svc.config)
    assert (live["tiers"]["guest"]["abandoned"], live["overall"]["waiting"]) == (1, 0)


def test_an_answered_call_whose_status_comes_before_the_dial_action(line: Line, services: Any) -> None:
    queued = line.queued(SID)
    line.clock.tick(9)
    line.offered(SID)
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="11")
    assert "<Dial" in line.post("/voice/connect?agent=ann&offer=1", SID)
    line.clock.tick(4)
    line.whisper(SID)  # the agent answered: 15 s after queueing
    line.clock.tick(120)
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="150")
    line.clock.tick()
    line.post(
        "/voice/dial-result?agent=ann", SID, DialCallStatus="completed", DialCallDuration="120", CallStatus="completed"
    )
    rec = records(services)[SID]
    assert (rec.outcome, rec.agent_login, rec.waited_s, rec.dial_status, rec.queue_result) == (
        "answered", "ann", 15.0, "completed", "redirected")
    assert rec.answered == queued + timedelta(seconds=15)
    assert line.agent() == "wrap_up"
    live = assert_stats_match_records(line.api, services, line.svc.config)
    assert live["tiers"]["guest"]["answered"] == 1


def test_the_enqueue_action_arriving_after_the_connect_and_the_whisper(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    assert "<Dial" in line.post("/voice/connect?agent=ann&offer=1", SID)
    line.whisper(SID)
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="3")  # late: changes nothing
    line.clock.tick(60)
    assert "<Hangup" in line.post(
        "/voice/dial-result?agent=ann", SID, DialCallStatus="completed", DialCallDuration="60"
    )
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="70")
    rec = records(services)[SID]
    assert (rec.outcome, rec.queue_result, rec.offers) == ("answered", "redirected", 1)
    assert_stats_match_records(line.api, services, line.svc.config)


def test_a_whisper_after_the_caller_hung_up_does_not_answer_the_call(line: Line, services: Any) -> None:
    line.queued(SID)
    line.clock.tick(20)
    line.offered(SID)
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="22")
    line.post("/voice/connect?agent=ann&offer=1", SID)
    line.clock.tick(3)
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="30")  # hung up while Ann's phone rang
    assert line.agent() == "available"  # she keeps her turn
    line.clock.tick()
    line.whisper(SID)  # her leg's whisper request arrives late
    line.post(
        "/voice/dial-result?agent=ann", SID, DialCallStatus="completed", DialCallDuration="0", CallStatus="completed"
    )
    rec = records(services)[SID]
    assert (rec.outcome, rec.answered, rec.agent_login) == ("abandoned", None, "ann")
    assert line.agent() == "available"
    live = assert_stats_match_records(line.api, services, line.svc.config)
    assert (live["tiers"]["guest"]["answered"], live["tiers"]["guest"]["abandoned"]) == (0, 1)


def test_a_late_no_answer_after_the_caller_hung_up_puts_nobody_back_in_line(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="2")
    line.post("/voice/connect?agent=ann&offer=1", SID)
    line.clock.tick(12)
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="20")
    line.clock.tick()
    # Sent before the hang-up reached Twilio's record of the call: the caller's leg still reads in-progress.
    answer = line.post("/voice/dial-result?agent=ann", SID, DialCallStatus="no-answer", CallStatus="in-progress")
    assert "<Enqueue" not in answer and "<Hangup" in answer
    assert services.redis.zscore(keys.ORDER, SID) is None and ordering.position(services.redis, SID) is None
    assert line.agent() == "available"  # not set away: the caller had gone
    rec = records(services)[SID]
    assert (rec.outcome, rec.dial_status) == ("abandoned", "no-answer")
    assert_stats_match_records(line.api, services, line.svc.config)


def test_progress_statuses_after_the_end_and_late_repeats_change_nothing(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.post("/voice/connect?agent=ann&offer=1", SID)
    line.whisper(SID)
    line.clock.tick(30)
    line.post("/voice/dial-result?agent=ann", SID, DialCallStatus="completed", DialCallDuration="30")
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="40")
    before, settled = snapshot(services), records(services)[SID]
    line.clock.tick(300)  # five minutes later: Twilio's late deliveries and repeats
    for status in ("ringing", "in-progress", "completed"):
        line.post("/voice/status", SID, CallStatus=status)
    line.post("/voice/queue-result", SID, QueueResult="hangup", QueueTime="500", CallStatus="completed")
    line.whisper(SID)
    line.post("/voice/dial-result?agent=ann", SID, DialCallStatus="no-answer", CallStatus="completed")
    changed = {k for k in changes(before, snapshot(services)) if not k.startswith("redis rq:")}
    assert changed <= {"sql call_records"}, changed  # no live state, counter, agent or ticket moved
    # The record only takes what late events alone say (the Enqueue and Dial actions' words); how the call
    # ended, when, after which wait and with whom stays as first settled.
    rec = records(services)[SID]
    settled_fields = (
        "outcome",
        "waited_s",
        "queued",
        "offered",
        "answered",
        "left_queue",
        "ended",
        "agent_login",
        "offers",
        "call_status",
        "score",
        "tier",
    )
    assert [getattr(rec, f) for f in settled_fields] == [getattr(settled, f) for f in settled_fields]
    assert (rec.outcome, rec.agent_login, rec.waited_s) == ("answered", "ann", 2.0)
    assert_stats_match_records(line.api, services, line.svc.config)
