"""Issue 9, item 3 (2): status callbacks out of order (the caller's status before the Enqueue action or before their
agent's leg ends, the Enqueue action after the caller joined the conference, the agent's answer or no-answer after the
caller hung up, late repeats of everything): the final call record is right and the live figures equal the records.

Since issue 16 the agent is rung by a call of their own (its answer URL and status callback), the caller is moved
into the call's conference once the agent has answered (the bridge job, run here by the test), and the conference
reports joins and leaves: those are the webhooks that arrive out of order here. (A little over 300 lines: the line
of signed webhooks and the orders it plays them in belong together.)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from callqueue.live import ordering, presence
from callqueue.live.conference import conference_name
from core import keys
from hotline.app import create_app
from tests.support.clocks import StepClock
from tests.support.common import PUBLIC_URL, sign
from tests.support.hotline_api import Api, assert_stats_match_records, records
from tests.support.people import add_people
from tests.support.twilio_faults import TUESDAY_10, available, changes, snapshot
from webhooks.outbound import legs
from webhooks.outbound.dispatcher import dispatch_all

SID = "CA" + "0123456789abcdef" * 2
LEG = "CA" + "e" * 32  # Ann's leg
CONF = "CF" + "c" * 32
NUMBER = "+864001234567"


class Rest:
    """A gateway stand-in that records what the hotline asks of Twilio's REST API: agents' legs placed, callers moved,
    calls hung up (the REST side is tested in test_faults_twilio_rest.py and test_faults_twilio_dispatch.py)."""

    def __init__(self) -> None:
        self.rung: list[tuple[str, str, str]] = []  # (To, Url, StatusCallback)
        self.moved: list[tuple[str, str]] = []
        self.hung_up: list[str] = []

    def create_call(self, to: str, url: str, status_callback: str, **options: Any) -> str:
        self.rung.append((to, url, status_callback))
        return LEG

    def redirect_call(self, call_sid: str, url: str, **queue: Any) -> None:
        self.moved.append((call_sid, url))

    def hang_up(self, call_sid: str) -> None:
        self.hung_up.append(call_sid)


class Line:
    """Signed webhooks, as Twilio would send them, to an app whose clock the test moves; TwiML schema-checked. The
    rq jobs the webhooks queue are read from the real queue; the test runs the bridge itself."""

    GUEST = "+8613600000099"

    def __init__(self, services: Any, clock: StepClock, twiml_check: Callable[[str], None]) -> None:
        self.services, self.clock, self.twiml_check = services, clock, twiml_check
        self.svc = dataclasses.replace(services, clock=clock, extras={"jobs": services.jobs()})
        self.svc.gateway = self.rest = Rest()
        self.app = create_app(services=self.svc)
        self.api = Api(app=self.app)
        self.sequence = 0
        self.conference_callbacks: list[dict[str, str]] = []  # as sent, for repeats
        add_people(services, ["ann"])

    def send(self, path: str, data: dict[str, str]) -> str:
        resp = self.app.test_client().post(
            path, data=data, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, data)}
        )
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True))
        body = resp.get_data(as_text=True)
        if body.strip():
            self.twiml_check(body)
        return body

    def post(self, path: str, sid: str, **params: str) -> str:
        return self.send(path, {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": self.GUEST, "To": NUMBER,
                                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
                                **params})

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
        """Ann becomes available and the dispatcher rings her by a call of her own (the caller keeps holding)."""
        available(self.services, "ann", self.clock())
        self.clock.tick()
        assert dispatch_all(self.svc) == 1
        to, url, _status = self.rest.rung[-1]
        assert to == "client:ann" and f"caller={sid}" in url and self.rest.moved == []

    def leg(self, kind: str, **params: str) -> str:
        """A request of Ann's leg: its answer URL ("answer", she picked up) or its status callback ("status")."""
        _to, url, status = self.rest.rung[-1]
        path = (url if kind == "answer" else status).removeprefix(PUBLIC_URL)
        return self.post(path, LEG, From=NUMBER, To="client:ann", Direction="outbound-api", **params)

    def bridge(self, sid: str) -> None:
        """The bridge job Ann's answer queued: the caller is moved out of their queue to /voice/connect."""
        assert self.jobs("bridge") == [(sid,)]
        assert legs.bridge(self.svc, sid) == "moved"
        assert self.rest.moved == [(sid, PUBLIC_URL + "/voice/connect?agent=ann")]

    def connect(self, sid: str) -> str:
        return self.post("/voice/connect?agent=ann", sid)

    def conference(self, event: str, participant: str, label: str, **params: str) -> str:
        """A status callback of the call's conference about `participant` (SequenceNumber: the order it happened)."""
        self.sequence += 1
        data = {
            "AccountSid": "AC" + "0" * 32, "ConferenceSid": CONF, "FriendlyName": conference_name(SID),
            "StatusCallbackEvent": event, "CallSid": participant, "ParticipantLabel": label, "Muted": "false",
            "Hold": "false", "Coaching": "false", "SequenceNumber": str(self.sequence),
            "Timestamp": format_datetime(self.clock()), **params}
        self.conference_callbacks.append(data)
        return self.send("/voice/conference/status", data)

    def jobs(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every `name` job queued so far (hotline/jobs.py)."""
        return [tuple(j.args) for j in self.svc.jobs().rq.jobs if j.func_name == f"hotline.jobs.{name}"]

    def agent(self) -> str:
        return presence.get(self.services.redis, "ann", self.clock()).state


@pytest.fixture
def line(services: Any, twiml_check: Callable[[str], None]) -> Line:
    return Line(services, StepClock(TUESDAY_10), twiml_check)


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


def test_an_answered_call_whose_status_comes_before_the_agents_leg_ends(line: Line, services: Any) -> None:
    queued = line.queued(SID)
    line.clock.tick(9)
    line.offered(SID)
    line.clock.tick(4)
    assert "<Conference" in line.leg("answer")  # Ann answered: 15 s after queueing
    line.bridge(SID)
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="16")
    assert "<Conference" in line.connect(SID)
    line.conference("participant-join", LEG, "agent")
    line.conference("participant-join", SID, "caller")
    line.clock.tick(120)
    # The caller hangs up: their status callback comes before the conference's leaves and Ann's leg's end.
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="150")
    assert line.agent() == "wrap_up"
    line.clock.tick()
    line.conference("participant-leave", SID, "caller", ReasonParticipantLeft="participant_hung_up")
    line.conference("participant-leave", LEG, "agent", ReasonParticipantLeft="moderator_ended_conference")
    line.leg("status", CallStatus="completed", CallDuration="136")
    rec = records(services)[SID]
    assert (rec.outcome, rec.agent_login, rec.waited_s, rec.dial_status, rec.queue_result) == (
        "answered", "ann", 15.0, "completed", "redirected")
    assert rec.answered == queued + timedelta(seconds=15)
    assert line.agent() == "wrap_up"
    assert line.jobs("end_legs") == []  # the conference ended Ann's leg: nothing to hang up
    live = assert_stats_match_records(line.api, services, line.svc.config)
    assert live["tiers"]["guest"]["answered"] == 1


def test_the_enqueue_action_arriving_after_the_caller_joined_the_conference(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.leg("answer")
    line.bridge(SID)
    assert "<Conference" in line.connect(SID)
    line.conference("participant-join", LEG, "agent")
    line.conference("participant-join", SID, "caller")
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="3")  # late: changes nothing
    assert services.redis.hget(keys.call(SID), "state") == "connected" and line.agent() == "on_call"
    line.clock.tick(60)
    # Ann hangs up: the conference ends (the caller hears goodbye), then the ends are reported.
    line.conference("participant-leave", LEG, "agent", ReasonParticipantLeft="participant_hung_up")
    line.leg("status", CallStatus="completed", CallDuration="60")
    line.conference("participant-leave", SID, "caller", ReasonParticipantLeft="moderator_ended_conference")
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="70")
    rec = records(services)[SID]
    assert (rec.outcome, rec.queue_result, rec.offers, rec.dial_status) == ("answered", "redirected", 1, "completed")
    assert_stats_match_records(line.api, services, line.svc.config)


def test_an_agents_answer_after_the_caller_hung_up_does_not_answer_the_call(line: Line, services: Any) -> None:
    line.queued(SID)
    line.clock.tick(20)
    line.offered(SID)
    line.clock.tick(3)
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="30")  # hung up while Ann's device rang
    assert line.agent() == "on_call"  # until her device stops ringing: never two callers at once
    assert line.jobs("end_legs") == [(LEG,)]  # her device stops ringing
    line.clock.tick()
    answer = line.leg("answer")  # her answer arrives anyway (she picked up as the caller left)
    assert "<Conference" not in answer and "<Hangup" in answer
    assert line.jobs("bridge") == []  # nobody to move
    line.leg("status", CallStatus="completed", CallDuration="1")
    rec = records(services)[SID]
    assert (rec.outcome, rec.answered, rec.agent_login) == ("abandoned", None, "ann")
    assert line.agent() == "available"  # her leg ended: free again, her turn kept, nothing to wrap up
    live = assert_stats_match_records(line.api, services, line.svc.config)
    assert (live["tiers"]["guest"]["answered"], live["tiers"]["guest"]["abandoned"]) == (0, 1)


def test_a_late_no_answer_after_the_caller_hung_up_puts_nobody_back_in_line(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.clock.tick(12)
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="20")
    line.clock.tick()
    before = snapshot(services)
    line.leg("status", CallStatus="no-answer")  # Ann's device rang out as the caller left: reported after
    changed = {k for k in changes(before, snapshot(services)) if not k.startswith("redis rq:")}
    # it frees Ann (kept on the call until her device stopped ringing: her presence, the offer, a dispatch asked
    # for), and nothing else: not a miss of hers, not a dial status of the abandoned call
    assert changed == {"redis hl:agent:ann", "redis hl:agents:available", "redis hl:agents:in:available",
                       "redis hl:agents:in:on_call", "redis hl:presence:log", "redis hl:q:offers",
                       "redis hl:dispatch:pending"}, changed
    assert services.redis.zscore(keys.ORDER, SID) is None and ordering.position(services.redis, SID) is None
    assert line.agent() == "available"  # not set away: the caller had gone
    rec = records(services)[SID]
    assert (rec.outcome, rec.offers) == ("abandoned", 1)
    assert_stats_match_records(line.api, services, line.svc.config)


def test_progress_statuses_after_the_end_and_late_repeats_change_nothing(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.leg("answer")
    line.bridge(SID)
    line.post("/voice/queue-result", SID, QueueResult="redirected", QueueTime="3")
    line.connect(SID)
    line.conference("participant-join", LEG, "agent")
    line.conference("participant-join", SID, "caller")
    line.clock.tick(10)
    line.conference("participant-hold", SID, "caller", Hold="true")  # Ann holds the caller for 5 s
    line.clock.tick(5)
    line.conference("participant-unhold", SID, "caller")
    line.clock.tick(15)
    line.conference("participant-leave", LEG, "agent", ReasonParticipantLeft="participant_hung_up")
    line.leg("status", CallStatus="completed", CallDuration="30")
    line.conference("participant-leave", SID, "caller", ReasonParticipantLeft="moderator_ended_conference")
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="40")
    before, settled = snapshot(services), records(services)[SID]
    line.clock.tick(300)  # five minutes later: Twilio's late deliveries and repeats
    for status in ("ringing", "in-progress", "completed"):
        line.post("/voice/status", SID, CallStatus=status)
    line.post("/voice/queue-result", SID, QueueResult="hangup", QueueTime="500", CallStatus="completed")
    assert "<Conference" not in line.leg("answer")
    assert "<Conference" not in line.connect(SID)
    for status in ("ringing", "in-progress", "completed", "no-answer"):
        line.leg("status", CallStatus=status)
    for callback in reversed(line.conference_callbacks):  # the conference's callbacks again, last first
        line.send("/voice/conference/status", callback)
    changed = {k for k in changes(before, snapshot(services)) if not k.startswith("redis rq:")}
    assert changed <= {"sql call_records"}, changed  # no live state, counter, agent or ticket moved
    # The record only takes what late events alone say (the Enqueue action's words); how the call ended, when,
    # after which wait, with whom and how it was handled stays as first settled.
    rec = records(services)[SID]
    settled_fields = ("outcome", "waited_s", "queued", "offered", "answered", "left_queue", "ended", "agent_login",
                      "offers", "call_status", "dial_status", "score", "tier", "agents", "hold_count", "hold_s")
    assert [getattr(rec, f) for f in settled_fields] == [getattr(settled, f) for f in settled_fields]
    assert (rec.outcome, rec.agent_login, rec.waited_s, rec.hold_count, rec.hold_s) == ("answered", "ann", 2.0, 1, 5.0)
    assert line.rest.moved == [(SID, PUBLIC_URL + "/voice/connect?agent=ann")]  # moved once, never again
    assert_stats_match_records(line.api, services, line.svc.config)


def test_a_caller_who_joins_after_their_agent_hung_up_is_not_left_in_silence(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.leg("answer")
    line.bridge(SID)
    assert "<Conference" in line.connect(SID)  # on the way in ...
    line.conference("participant-join", LEG, "agent")
    line.clock.tick(2)  # ... as Ann, alone in the conference, hangs up: it ends with her
    line.conference("participant-leave", LEG, "agent", ReasonParticipantLeft="participant_hung_up")
    line.leg("status", CallStatus="completed", CallDuration="3")
    assert line.agent() == "wrap_up" and line.jobs("end_legs") == []
    # The caller joins a conference of that name, started by nobody: they would wait in silence for good.
    line.conference("participant-join", SID, "caller", ConferenceSid="CF" + "d" * 32)
    assert line.jobs("end_legs") == [(SID,)]  # hung up instead
    line.conference("participant-join", SID, "caller", ConferenceSid="CF" + "d" * 32)  # Twilio repeats it
    assert line.jobs("end_legs") == [(SID,)]  # once
    line.post("/voice/status", SID, CallStatus="completed", CallDuration="10")
    rec = records(services)[SID]
    assert (rec.outcome, rec.agent_login, rec.dial_status) == ("answered", "ann", "completed")
    assert_stats_match_records(line.api, services, line.svc.config)


def test_a_late_join_to_the_conference_the_agent_was_in_hangs_up_nobody(line: Line, services: Any) -> None:
    line.queued(SID)
    line.offered(SID)
    line.leg("answer")
    line.bridge(SID)
    line.connect(SID)
    line.conference("participant-join", LEG, "agent")
    line.conference("participant-join", SID, "caller")
    joined = line.conference_callbacks[-1]
    line.clock.tick(30)
    line.conference("participant-leave", LEG, "agent", ReasonParticipantLeft="participant_hung_up")
    line.leg("status", CallStatus="completed", CallDuration="30")
    line.send("/voice/conference/status", joined)  # the caller's join, delivered again after the end
    assert line.jobs("end_legs") == []  # they met Ann there: the conference's end says goodbye, not a hang-up
