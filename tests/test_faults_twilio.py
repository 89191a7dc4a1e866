"""Issue 9, item 3: Twilio's retries, duplicates and failures.

1. Every /voice/* webhook of whole calls is sent twice (same CallSid, parameters and signature), as Twilio
   does when it retries: the two answers are the same TwiML and the second changes nothing (every Redis key,
   every SQL row). The app's clock stands still within a pair (fixed dates) and moves one second per request.
2. Status callbacks out of order (the status before the Enqueue or Dial action, the whisper after the
   status, a late no-answer): the final call record is right and the live figures equal the records.
3. Twilio's REST API failing (500, 503, 429 with Retry-After, timeouts, answers lost after the work was
   done), played by the simulator (simulator/faults.py): the gateway retries what is safe within its budget,
   the dispatcher never leaves a caller claimed but not connected, a callback never rings a member twice.
4. A real `hotline worker` killed (SIGKILL) while its dispatch's REST redirect is held: the sweep returns the
   claimed caller, and no call record or ticket is lost.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rq import Worker
from sqlalchemy import select

from callqueue.agents.accounts import agent_endpoint
from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from callqueue.live import ordering, presence
from callqueue.live.dispatch import sweep as sweep_queue
from core import keys
from core.redisconn import make_redis
from hotline.app import create_app
from hotline.models import Base
from simulator import Fault, Script
from simulator.transport import Reply
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, sign
from tests.flow_support import (
    PIN,
    Api,
    Flow,
    RunningClock,
    add_members,
    add_people,
    assert_stats_match_records,
    free_port,
    in_process_flow,
    join_queue,
    records,
    script,
)
from webhooks.outbound import callback_dialer
from webhooks.outbound.dispatcher import dispatch_all
from webhooks.outbound.gateway import GatewayError, RetryPolicy, TwilioGateway

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=SH)  # an ordinary working day
TUESDAY_22 = datetime(2026, 11, 24, 22, 0, tzinfo=SH)  # after 21:00: closed with NINE_TO_NINE
NINE_TO_NINE = "[hours]\nholiday_calendar = \"\"\n[hours.weekly]\n" + "".join(
    f'{day} = ["09:00-21:00"]\n' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))


# --- a clock that stands still --------------------------------------------------------------------------------

class StepClock:
    """Fixed instants: it moves only when told (`tick`), so a request and its repeat see the same time."""

    def __init__(self, start: datetime) -> None:
        self._t, self._lock = start, threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._t

    def tick(self, seconds: float = 1.0) -> None:
        with self._lock:
            self._t += timedelta(seconds=seconds)


# --- the state a request may change ---------------------------------------------------------------------------

def snapshot(services: Any) -> dict[str, Any]:
    """Every Redis key's value (not its TTL) and every row of every SQL table."""
    r = make_redis(services.redis_url, decode=False)  # rq's job hashes are binary
    out: dict[str, Any] = {}
    try:
        for k in sorted(r.keys("*")):
            kind = r.type(k).decode()
            value: Any = {
                "string": lambda: r.get(k),
                "hash": lambda: r.hgetall(k),
                "zset": lambda: r.zrange(k, 0, -1, withscores=True),
                "set": lambda: sorted(r.smembers(k)),
                "list": lambda: r.lrange(k, 0, -1),
            }.get(kind, lambda: kind)()
            out["redis " + k.decode()] = value
    finally:
        r.close()
    with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(table.select().order_by(*table.primary_key.columns))
            out["sql " + table.name] = [tuple(row) for row in rows]
    return out


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


# --- sending every webhook twice ------------------------------------------------------------------------------

@dataclass
class Replayed:
    """One webhook request sent twice: both answers, and what each changed."""

    url: str
    endpoint: str
    first: Reply
    second: Reply
    by_first: dict[str, tuple[Any, Any]]
    by_second: dict[str, tuple[Any, Any]]


class TwiceTransport:
    """Wraps the simulator's transport: every request is sent, then sent again, as a Twilio retry would be.

    The simulator follows the first answer. One request (pair) at a time, holding `lock`; the test takes the
    same lock to dispatch, so the snapshots around a pair see only what the pair did.
    """

    def __init__(
        self, inner: Any, app: Any, clock: StepClock, services: Any, twiml_check: Callable[[str], None]
    ) -> None:
        self.inner, self.clock, self.services, self.twiml_check = inner, clock, services, twiml_check
        self.adapter = app.url_map.bind("hotline.test")
        self.lock = threading.RLock()
        self.pairs: list[Replayed] = []

    def post(self, url: str, params: dict[str, str]) -> Reply:
        path = url.removeprefix(PUBLIC_URL).split("?")[0]
        endpoint = self.adapter.match(path, method="POST")[0]
        with self.lock:
            self.clock.tick(1)
            s0 = snapshot(self.services)
            first = self.inner.post(url, params)
            s1 = snapshot(self.services)
            second = self.inner.post(url, dict(params))
            s2 = snapshot(self.services)
            if second.status == 200 and second.body.strip():
                self.twiml_check(second.body)
            self.pairs.append(Replayed(url, endpoint, first, second, changes(s0, s1), changes(s1, s2)))
        return first

    def assert_idempotent(self) -> set[str]:
        """Both answers equal, nothing changed by the repeat; returns the endpoints replayed."""
        assert self.pairs
        for p in self.pairs:
            assert p.second == p.first, (
                f"POST {p.url} answered differently the second time:\n{p.first.body}\n---\n{p.second.body}"
            )
            assert not p.by_second, f"POST {p.url} changed state again the second time: {p.by_second}"
        return {p.endpoint for p in self.pairs}

    def dispatch(self, svc: Any) -> int:
        """The dispatch job's work, between two request pairs."""
        with self.lock:
            return dispatch_all(svc)


def available(services: Any, login: str, now: datetime) -> None:
    """An agent available in Redis without asking for a dispatch (the test dispatches)."""
    with services.sessions() as db:
        endpoint = agent_endpoint(db, login)
    presence.set_state(services.redis, login, "available", now, endpoint=endpoint)



@contextmanager
def replaying(services: Any, folder: Path, twiml_check: Callable[[str], None], start: datetime,
              extra: str = "") -> Iterator[tuple[Flow, StepClock, TwiceTransport]]:
    """A flow (no rq worker: the test dispatches) whose simulator sends every webhook twice, on a standing clock."""
    clock = StepClock(start)
    with in_process_flow(services, folder, workers=0, clock=clock, extra=extra) as flow:
        twice = TwiceTransport(flow.sim.net.transport, flow.app, clock, services, twiml_check)
        flow.sim.net.transport = twice
        yield flow, clock, twice


# The endpoints each replay scenario must have sent twice; together, every /voice/* webhook.
SCENARIOS = {
    "answered": {
        "voice.incoming",
        "voice.ivr_step",
        "voice.wait",
        "voice.queue_result",
        "voice.connect",
        "voice.whisper",
        "voice.dial_result",
        "voice.status",
    },
    "hold": {
        "voice.incoming",
        "voice.ivr_step",
        "voice.wait",
        "voice.hold_offer",
        "voice.hold_step",
        "voice.queue_result",
        "voice.status",
    },
    "callback": {
        "voice.incoming",
        "voice.ivr_step",
        "voice.status",
        "voice.callback_status",
        "voice.callback_answer",
        "voice.wait",
        "voice.queue_result",
        "voice.connect",
        "voice.whisper",
        "voice.dial_result",
    },
    "direct": {"voice.queue", "voice.fallback", "voice.unknown_step"},
}
# Served only while a store is down (webhooks/degraded/answers.py): repeating them is the store-fault tests' business.
NOT_REPLAYED_PREFIX = "/voice/degraded/"


def test_the_replays_cover_every_voice_webhook(app: Any) -> None:
    rules = {r.endpoint: r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/voice/")}
    covered = set().union(*SCENARIOS.values())
    missing = {e: rule for e, rule in rules.items() if e not in covered and not rule.startswith(NOT_REPLAYED_PREFIX)}
    assert not missing, f"webhooks no replay test sends twice (add them to a scenario below): {missing}"
    assert covered <= set(rules), covered - set(rules)


def test_every_webhook_of_an_answered_call_twice_same_answer_state_changed_once(
        services: Any, tmp_path: Path, twiml_check: Callable[[str], None]) -> None:
    with replaying(services, tmp_path, twiml_check, TUESDAY_10) as (flow, clock, twice):
        add_people(services, ["nora", "ann"])
        phones = add_members(services, flow.config, {"premium": 1})
        flow.sim.add_agent("nora", behaviour="no-answer")
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=20)
        # PIN; the account answers (1); text me the link (1); an agent (0)
        handle = flow.sim.start_call(
            phones["premium"][0], Script(answers=(PIN + "#", "1", "1", "0"), when_answers_run_out="hangup")
        )
        joined = flow.sim.events.wait("queue.joined", timeout=20, call_sid=handle.sid)
        with twice.lock:
            available(services, "nora", clock())
            assert twice.dispatch(flow.svc) == 1
        flow.sim.events.wait("queue.joined", timeout=20, call_sid=handle.sid, after=joined.seq)  # back after no answer
        with twice.lock:
            available(services, "ann", clock())
            assert twice.dispatch(flow.svc) == 1
        result = handle.join(30)
        replayed = twice.assert_idempotent()
        assert replayed >= SCENARIOS["answered"], SCENARIOS["answered"] - replayed
        steps = [p.url.removeprefix(PUBLIC_URL) for p in twice.pairs if p.endpoint == "voice.ivr_step"]
        assert steps == ["/voice/ivr/pin?s=0", "/voice/ivr/menu?s=1", "/voice/ivr/menu?s=2", "/voice/ivr/menu?s=3"]
        assert [d.status for d in result.dial_results] == ["no-answer", "completed"]
        assert len(flow.sim.messages) == 1 and flow.sim.messages[0].to == phones["premium"][0]  # texted once, not twice
        assert flow.config.prompt("sms_sent", "zh") in result.said()
        rec = records(services)[handle.sid]
        assert (rec.outcome, rec.agent_login, rec.offers, rec.dial_status, rec.call_status) == (
            "answered", "ann", 2, "completed", "completed")
        assert presence.get(services.redis, "nora", clock()).state == "away"
        live = assert_stats_match_records(flow.api, services, flow.config)
        assert live["tiers"]["premium"]["answered"] == 1 and live["overall"]["waiting"] == 0


def test_every_webhook_of_a_callback_booked_on_hold_and_of_a_hang_up_in_the_queue_twice(
        services: Any, tmp_path: Path, twiml_check: Callable[[str], None]) -> None:
    with replaying(services, tmp_path, twiml_check, TUESDAY_10) as (flow, clock, twice):
        add_people(services, [])
        phones = add_members(services, flow.config, {"standard": 1})
        # On hold: 1 (call me back), 1 (this number): the ticket is booked, then <Leave>.
        booker = flow.sim.start_call(phones["standard"][0], Script(answers=(PIN + "#", "0"), hold_answers=("1", "1"),
                                                                   when_answers_run_out="hangup"))
        booked = booker.join(30)
        # A guest (member number skipped with *) who hangs up after a minute on hold.
        guest = flow.sim.start_call("+8613600000077", Script(answers=("0", "*#"), hangup_after_queue_seconds=60,
                                                               when_answers_run_out="hangup"))
        guest.join(30)
        replayed = twice.assert_idempotent()
        assert replayed >= SCENARIOS["hold"], SCENARIOS["hold"] - replayed
        hold_steps = [
            p.url.removeprefix(PUBLIC_URL) for p in twice.pairs if p.endpoint in ("voice.hold_offer", "voice.hold_step")
        ]
        assert hold_steps == ["/voice/hold/offer?s=2", "/voice/hold/cbnum?s=3"]
        assert any(p.url.endswith("/voice/ivr/uid?s=1") for p in twice.pairs)
        with services.sessions() as db:
            (ticket,) = db.scalars(select(CallbackTicket)).all()
        assert (ticket.phone, ticket.reason, ticket.source_call_sid) == (
            phones["standard"][0],
            "caller_request",
            booker.sid,
        )
        assert any(" ".join(ticket.number) in s for s in booked.said())
        assert [q["QueueResult"] for q in booked.queue_results] == ["leave"]
        recs = records(services)
        assert recs[booker.sid].outcome == "to_callback"
        assert (recs[guest.sid].outcome, recs[guest.sid].queue_result) == (
            "short_abandoned",
            "hangup",
        )  # 2 s by this clock
        assert_stats_match_records(flow.api, services, flow.config)


def test_every_webhook_of_an_after_hours_booking_and_its_callback_twice(
        services: Any, tmp_path: Path, twiml_check: Callable[[str], None]) -> None:
    with replaying(services, tmp_path, twiml_check, TUESDAY_22, extra=NINE_TO_NINE) as (flow, clock, twice):
        add_people(services, ["ann"])
        phones = add_members(services, flow.config, {"premium": 1})
        member = phones["premium"][0]
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=20)
        flow.sim.add_phone(member, "answer", answer_after=2)
        # PIN; closed: 1 (call me back); 1 (this number)
        night = flow.sim.start_call(member, Script(answers=(PIN + "#", "1", "1"), when_answers_run_out="hangup")).join(
            30
        )
        with services.sessions() as db:
            (ticket,) = db.scalars(select(CallbackTicket)).all()
        assert any(" ".join(ticket.number) in s for s in night.said())
        with twice.lock:
            clock.tick(11 * 3600)  # Wednesday 09:00: the ticket is due
            available(services, "ann", clock())
            assert callback_dialer.dial_due(flow.svc) == 1
        started = flow.sim.events.wait("call.started", timeout=20, direction="outbound-api", to=member)
        flow.sim.events.wait("queue.joined", timeout=20, call_sid=started.call_sid)
        with twice.lock:
            assert twice.dispatch(flow.svc) == 1
        callback = flow.sim.handle(started.call_sid).join(30)
        replayed = twice.assert_idempotent()
        assert replayed >= SCENARIOS["callback"], SCENARIOS["callback"] - replayed
        assert [d.status for d in callback.dial_results] == ["completed"]
        assert len(flow.sim.rest_requests("POST", "/Calls.json")) == 1  # the member was called once
        with services.sessions() as db:
            row = db.get(CallbackTicket, ticket.id)
            attempts = db.scalars(select(CallbackAttempt.result).where(CallbackAttempt.ticket_id == ticket.id)).all()
        assert (row.status, row.attempts, attempts) == ("completed", 1, ["answered"])
        assert records(services)[started.call_sid].outcome == "answered"
        assert_stats_match_records(flow.api, services, flow.config)


def test_the_queue_fallback_and_unknown_webhooks_twice(services: Any, twiml_check: Callable[[str], None]) -> None:
    from simulator.transport import FlaskTransport

    clock = StepClock(TUESDAY_10)
    svc = dataclasses.replace(services, clock=clock, extras={"jobs": services.jobs()})
    app = create_app(services=svc)
    twice = TwiceTransport(FlaskTransport(app, AUTH_TOKEN), app, clock, services, twiml_check)
    params = {
        "CallSid": "CA" + "5" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": "+8613600000078",
        "To": "+864001234567",
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    queued = twice.post(PUBLIC_URL + "/voice/queue", params)
    assert "<Enqueue" in queued.body and ordering.position(services.redis, params["CallSid"]) == 1
    assert "<Hangup" in twice.post(PUBLIC_URL + "/voice/fallback", params).body
    assert "<Hangup" in twice.post(PUBLIC_URL + "/voice/nowhere?x=1", params).body
    assert twice.assert_idempotent() == SCENARIOS["direct"]
    assert twice.pairs[0].by_first  # the first /voice/queue did change something (the order, the record)


# --- 2. status callbacks out of order -------------------------------------------------------------------------

class Moves:
    """A gateway stand-in that only records the moves the dispatcher asks for (the REST side is section 3's)."""

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


# --- 3. Twilio's REST API failing -----------------------------------------------------------------------------

FAST = {  # the shipped kinds, with short pauses (the pauses are recorded, not slept, unless a test says so)
    "move": RetryPolicy(attempts=4, base_s=0.1, max_backoff_s=1.0, budget_s=5.0),
    "create": RetryPolicy(attempts=3, base_s=0.1, budget_s=5.0),
    "sms": RetryPolicy(attempts=2, base_s=0.1, budget_s=3.0, retry_after_cap_s=1.0),
}
TIMEOUT_S = 0.3  # the gateway's request timeout in these tests; a fault's delay of 1 s is a timeout


def fast_gateway(sim: Any, pauses: list[float] | None = None, api_url: str | None = None, **kw: Any) -> TwilioGateway:
    """A gateway on the simulator whose backoff pauses are recorded in `pauses` instead of slept (when given)."""
    extra: dict[str, Any] = {"sleep": pauses.append, "rand": lambda: 0.5} if pauses is not None else {}
    return TwilioGateway(
        sim.account_sid,
        AUTH_TOKEN,
        api_url or sim.api_url,
        from_number=sim.number,
        timeout_s=kw.pop("timeout_s", TIMEOUT_S),
        policies={**FAST, **kw.pop("policies", {})},
        **extra,
        **kw,
    )


@pytest.fixture
def sim(app: Any) -> Iterator[Any]:
    from simulator import Simulator

    with Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=0.005) as s:
        yield s


def held_caller(sim: Any) -> tuple[Any, str]:
    """A guest holding in a Twilio queue; returns the call and the queue's name."""
    handle = sim.start_call("+8613600000055", Script(answers=("0", "*#"), when_answers_run_out="hangup"))
    joined = sim.events.wait("queue.joined", timeout=15, call_sid=handle.sid)
    return handle, joined.data["queue"]


def moves_to(handle: Any, path: str) -> int:
    """How many times the call requested `path` (after its end)."""
    return sum(1 for r in handle.result.requests if r.url.removeprefix(PUBLIC_URL).split("?")[0] == path)


def rest(sim: Any, method: str, piece: str) -> int:
    return len(sim.rest_requests(method, piece))


def test_the_backoff_doubles_up_to_its_cap_with_half_of_it_random() -> None:
    p = RetryPolicy(base_s=0.25, max_backoff_s=2.0)
    assert [p.backoff(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.125, 0.25, 0.5, 1.0, 1.0]
    assert [p.backoff(n, 1.0) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_a_move_answered_500_twice_is_retried_after_checking_the_caller_is_still_queued(
    sim: Any, services: Any
) -> None:
    handle, queue = held_caller(sim)
    fault = sim.faults.add(Fault("POST", "/Calls/CA", status=500, times=2))
    pauses: list[float] = []
    fast_gateway(sim, pauses).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    handle.join(15)
    assert fault.hits == 2 and rest(sim, "POST", f"/Calls/{handle.sid}") == 3
    assert pauses == pytest.approx([0.075, 0.15])  # 0.1·2^(n−1), three quarters of it with rand = 0.5
    assert rest(sim, "GET", f"/Members/{handle.sid}") == 2  # a 500 may have been done: looked before each repeat
    assert moves_to(handle, "/voice/fallback") == 1


def test_a_429_waits_as_long_as_retry_after_says_and_one_beyond_the_cap_fails_at_once(sim: Any) -> None:
    handle, queue = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", status=429, code=20429, retry_after="0.7"))
    pauses: list[float] = []
    gw = fast_gateway(sim, pauses)
    gw.redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    assert pauses == [0.7] and rest(sim, "GET", "/Members/") == 0  # a 429 did nothing: no need to look
    handle.join(15)
    other, queue = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", status=429, code=20429, retry_after="30"))
    pauses.clear()
    with pytest.raises(GatewayError) as failed:
        gw.redirect_call(other.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    assert (failed.value.status, failed.value.attempts, failed.value.unsure, pauses) == (429, 1, False, [])
    other.hangup()
    other.join(15)


def test_moves_that_timed_out_are_repeated_while_the_caller_is_still_queued(sim: Any) -> None:
    handle, queue = held_caller(sim)
    fault = sim.faults.add(Fault("POST", "/Calls/CA", delay_s=1.0, times=2))  # Twilio too slow, and nothing done
    pauses: list[float] = []
    fast_gateway(sim, pauses).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    handle.join(15)
    assert fault.hits == 2 and rest(sim, "POST", f"/Calls/{handle.sid}") == 3 and len(pauses) == 2
    assert moves_to(handle, "/voice/fallback") == 1


def test_a_move_done_whose_answer_was_lost_is_not_repeated(sim: Any) -> None:
    handle, queue = held_caller(sim)
    sim.faults.add(
        Fault("POST", "/Calls/CA", status=None, applied=True, delay_s=1.0)
    )  # done; the answer comes too late
    pauses: list[float] = []
    fast_gateway(sim, pauses).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    handle.join(15)
    assert rest(sim, "POST", f"/Calls/{handle.sid}") == 1 and pauses == []  # gone from the queue: it was done
    assert moves_to(handle, "/voice/fallback") == 1 and [q["QueueResult"] for q in handle.result.queue_results] == [
        "redirected"
    ]


def test_an_unsure_move_with_no_queue_to_look_in_is_never_repeated(sim: Any) -> None:
    handle, _ = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", delay_s=1.0))
    with pytest.raises(GatewayError) as failed:
        fast_gateway(sim, []).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback")
    assert (failed.value.unsure, failed.value.attempts, failed.value.status) == (True, 1, 0)
    assert rest(sim, "POST", f"/Calls/{handle.sid}") == 1
    handle.hangup()
    handle.join(15)
    assert moves_to(handle, "/voice/fallback") == 0  # the slow request did nothing, and was not sent again


def test_a_move_failing_for_good_gives_up_within_its_budget(sim: Any) -> None:
    handle, queue = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", delay_s=1.0, times=None))  # every attempt times out
    budget = 1.5
    gw = fast_gateway(sim, policies={"move": RetryPolicy(attempts=10, base_s=0.1, budget_s=budget)})  # real pauses
    t0 = time.monotonic()
    with pytest.raises(GatewayError) as failed:
        gw.redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    elapsed = time.monotonic() - t0
    # Bounded: the budget, plus at most one last look at the queue (a local request); far below ten timeouts.
    assert elapsed < budget + 1.0, elapsed
    assert 2 <= failed.value.attempts < 10
    assert failed.value.unsure is False  # the caller was seen still queued: the move provably did not happen
    handle.hangup()
    handle.join(15)


def test_calls_create_is_repeated_only_when_twilio_provably_placed_nothing(sim: Any) -> None:
    member = "+8613800000011"
    sim.add_phone(member, "busy")
    pauses: list[float] = []
    gw = fast_gateway(sim, pauses)
    url, status = PUBLIC_URL + "/voice/callback/answer?ticket=1&n=1", PUBLIC_URL + "/voice/callback/status?ticket=1&n=1"
    sim.faults.add(Fault("POST", "/Calls.json", status=500))
    with pytest.raises(GatewayError) as failed:
        gw.create_call(member, url, status)
    assert (failed.value.unsure, failed.value.attempts) == (True, 1)  # a 500 may have rung the member: not again
    assert rest(sim, "POST", "/Calls.json") == 1 and not sim.events.all("call.started")
    sim.faults.add(Fault("POST", "/Calls.json", status=503))
    sid = gw.create_call(member, url, status)
    assert rest(sim, "POST", "/Calls.json") == 3 and [e.call_sid for e in sim.events.all("call.started")] == [sid]
    dead = fast_gateway(sim, pauses, api_url=f"http://127.0.0.1:{free_port()}")
    pauses.clear()
    with pytest.raises(GatewayError) as refused:
        dead.create_call(member, url, status)
    assert (refused.value.unsure, refused.value.attempts, len(pauses)) == (False, 3, 2)  # never sent: safe to repeat
    sim.handle(sid).join(15)


def test_a_text_is_repeated_only_when_twilio_provably_sent_nothing(sim: Any) -> None:
    gw = fast_gateway(sim, [])
    sim.faults.add(Fault("POST", "/Messages.json", status=503))
    gw.send_sms("+8613800000012", "one")
    assert rest(sim, "POST", "/Messages.json") == 2 and [m.body for m in sim.messages] == ["one"]
    sim.faults.add(Fault("POST", "/Messages.json", status=None, applied=True, delay_s=1.0))  # sent; the answer is late
    with pytest.raises(GatewayError) as failed:
        gw.send_sms("+8613800000012", "two")
    assert (failed.value.unsure, failed.value.attempts) == (True, 1)
    assert rest(sim, "POST", "/Messages.json") == 3 and [m.body for m in sim.messages] == ["one", "two"]  # never twice


def flow_gateway(flow: Flow, **policies: RetryPolicy) -> None:
    """The in-process app's gateway: short timeout, short real pauses."""
    flow.svc.gateway = fast_gateway(flow.sim, policies={**FAST, **policies})


def fixed_flow(services: Any, folder: Path) -> Any:
    """A flow with no rq worker (the test dispatches and dials) on a clock starting at a fixed instant."""
    return in_process_flow(services, folder, workers=0, clock=RunningClock(TUESDAY_10))


MOVE = "/Calls/CA"  # Calls/{CallSid}.json: the dispatcher's redirect (not Calls.json, a create)


@pytest.mark.parametrize("how", [
    dict(status=500, times=2),
    dict(status=429, code=20429, retry_after="0", times=2),
    dict(status=503, times=3),
    dict(delay_s=1.0, times=2),  # two timeouts
], ids=["500x2", "429x2", "503x3", "timeout-x2"])
def test_a_dispatch_rides_out_failing_moves_and_rings_the_agent_once(
    how: dict[str, Any], services: Any, tmp_path: Path
) -> None:
    fault = Fault("POST", MOVE, **how)
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        add_people(services, ["ann"])
        phones = add_members(services, flow.config, {"premium": 1})
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=10)
        caller = join_queue(flow.sim, phones["premium"][0], script("premium"))
        flow.sim.faults.add(fault)
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 1
        result = caller.join(30)
        assert fault.hits == fault.times and rest(flow.sim, "POST", f"/Calls/{caller.sid}") == fault.times + 1
        assert [e.call_sid for e in flow.sim.events.all("dial.ringing")] == [caller.sid]  # rung once
        assert [d.status for d in result.dial_results] == ["completed"]
        assert moves_to(caller, "/voice/connect") == 1
        rec = records(services)[caller.sid]
        assert (rec.outcome, rec.offers, rec.agent_login) == ("answered", 1, "ann")
        assert_stats_match_records(flow.api, services, flow.config)


@pytest.mark.parametrize("how", [
    dict(status=500, times=None),
    dict(status=429, code=20429, retry_after="0", times=None),
    dict(delay_s=1.0, times=None),  # every attempt times out
], ids=["500", "429", "timeout"])
def test_a_move_failing_for_good_puts_the_caller_back_in_place_and_frees_the_agent(
        how: dict[str, Any], services: Any, tmp_path: Path) -> None:
    fault = Fault("POST", MOVE, **how)
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow, move=RetryPolicy(attempts=3, base_s=0.05, budget_s=4.0))
        add_people(services, ["ann"])
        phones = add_members(services, flow.config, {"premium": 1, "standard": 1})
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=10)
        first = join_queue(flow.sim, phones["premium"][0], script("premium"))
        second = join_queue(flow.sim, phones["standard"][0], script("standard"))
        score = services.redis.zscore(keys.ORDER, first.sid)
        flow.sim.faults.add(fault)
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 0  # gave up, and did not claim the next caller while Twilio fails
        assert (
            rest(flow.sim, "POST", f"/Calls/{first.sid}") == 3 and rest(flow.sim, "POST", f"/Calls/{second.sid}") == 0
        )
        # Not claimed, not lost: first in line at the same score, the agent available, no offer open, nobody rung.
        assert services.redis.hget(keys.call(first.sid), "state") == "waiting"
        assert (ordering.position(services.redis, first.sid), services.redis.zscore(keys.ORDER, first.sid)) == (
            1,
            score,
        )
        assert (
            services.redis.zcard(keys.OFFERS) == 0
            and presence.get(services.redis, "ann", flow.clock()).state == "available"
        )
        assert not flow.sim.events.all("dial.ringing") and moves_to(first, "/voice/connect") == 0
        # Twilio is back: the next dispatch connects the same caller.
        flow.sim.faults.clear()
        assert dispatch_all(flow.svc) == 1
        assert [d.status for d in first.join(30).dial_results] == ["completed"]
        second.hangup()
        second.join(30)
        recs = records(services)
        assert (recs[first.sid].outcome, recs[first.sid].agent_login) == ("answered", "ann")
        assert_stats_match_records(flow.api, services, flow.config)


def test_a_move_that_may_have_happened_is_left_to_the_sweep_not_undone(services: Any, tmp_path: Path) -> None:
    """No answer from Twilio and no telling whether the caller left their queue: undoing the claim could ring Ann
    while the caller went to someone else; the offer stays until the sweep returns it (ring timeout + grace)."""
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        add_people(services, ["ann"])
        phones = add_members(services, flow.config, {"premium": 1})
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=10)
        caller = join_queue(flow.sim, phones["premium"][0], script("premium"))
        flow.sim.faults.add(Fault("POST", MOVE, delay_s=1.0, times=None))  # timeouts (nothing done, as it happens)
        flow.sim.faults.add(Fault("GET", "/Queues", status=500, times=None))  # and no look at the queue possible
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 0
        assert rest(flow.sim, "POST", f"/Calls/{caller.sid}") == 1  # never sent twice
        assert services.redis.hget(keys.call(caller.sid), "state") == "offered"
        assert presence.get(services.redis, "ann", flow.clock()).state == "on_call"
        flow.sim.faults.clear()
        flow.clock.advance(flow.config["queue"]["ring_timeout_s"] + 31)
        assert sweep_queue(services.redis, flow.clock(), flow.config)["offers_returned"] == 1
        assert services.redis.hget(keys.call(caller.sid), "state") == "waiting"
        assert dispatch_all(flow.svc) == 1
        assert [d.status for d in caller.join(30).dial_results] == ["completed"]
        assert [e.call_sid for e in flow.sim.events.all("dial.ringing")] == [caller.sid]
        assert records(services)[caller.sid].outcome == "answered"
        assert_stats_match_records(flow.api, services, flow.config)


def due_ticket(flow: Flow, services: Any, member: str) -> tickets.Ticket:
    with services.unit_of_work() as db:
        now = flow.clock()
        return tickets.create(
            db,
            phone=member,
            tier="premium",
            lang="zh",
            reason="after_hours",
            score=now.timestamp() - 600,
            due=now,
            now=now,
            max_attempts=3,
        ).ticket


def ticket_row(services: Any, ticket_id: int) -> tuple[CallbackTicket, list[str | None]]:
    with services.sessions() as db:
        row = db.get(CallbackTicket, ticket_id)
        results = list(db.scalars(select(CallbackAttempt.result).where(CallbackAttempt.ticket_id == ticket_id)
                                  .order_by(CallbackAttempt.n)))
        return row, results


def answer_and_hang_up(flow: Flow, member: str) -> str:
    """The member's phone rings, they answer and join the queue, then hang up; returns the call's sid."""
    started = flow.sim.events.wait("call.started", timeout=20, direction="outbound-api", to=member)
    flow.sim.events.wait("queue.joined", timeout=20, call_sid=started.call_sid)
    flow.sim.handle(started.call_sid).hangup()
    flow.sim.handle(started.call_sid).join(20)
    return started.call_sid


def test_a_callback_whose_create_failed_unsure_is_not_redialled_but_recovered_once_stale(
    services: Any, tmp_path: Path
) -> None:
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        add_people(services, ["ann"])
        available(services, "ann", flow.clock())
        member = "+8613800000021"
        flow.sim.add_phone(member, "answer", answer_after=2)
        t = due_ticket(flow, services, member)
        flow.sim.faults.add(Fault("POST", "/Calls.json", status=500))  # Twilio placed nothing, but who can tell
        assert callback_dialer.dial_due(flow.svc) == 0
        row, results = ticket_row(services, t.id)
        assert (row.status, row.call_sid, results) == ("dialing", None, [None])  # left for the stale-dialing check
        assert (
            rest(flow.sim, "POST", "/Calls.json") == 1 and rest(flow.sim, "GET", "/Calls.json") == 1
        )  # looked, found none
        assert services.redis.zcard(keys.CB_RINGING) == 0  # no agent held for a call that may not exist
        assert callback_dialer.sweep(flow.svc) == {"callbacks_recovered": 0, "callbacks_placed": 0}  # not stale yet
        flow.clock.advance(flow.config["callbacks"]["stale_dialing_s"] + 1)
        assert callback_dialer.sweep(flow.svc) == {"callbacks_recovered": 1, "callbacks_placed": 1}
        sid = answer_and_hang_up(flow, member)
        row, results = ticket_row(services, t.id)
        assert (row.status, row.call_sid, results) == ("completed", sid, ["lost", "answered"])
        assert [e.call_sid for e in flow.sim.events.all("call.started", to=member)] == [sid]  # the member rang once


def test_a_callback_twilio_placed_despite_an_error_is_found_and_recorded_not_redialled(
    services: Any, tmp_path: Path
) -> None:
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        add_people(services, ["ann"])
        available(services, "ann", flow.clock())
        member = "+8613800000022"
        flow.sim.add_phone(member, "answer", answer_after=2)
        t = due_ticket(flow, services, member)
        flow.sim.faults.add(Fault("POST", "/Calls.json", status=500, applied=True))  # placed, then answered 500
        assert callback_dialer.dial_due(flow.svc) == 1
        started = flow.sim.events.wait("call.started", timeout=20, direction="outbound-api", to=member)
        row, _ = ticket_row(services, t.id)
        assert (row.status, row.call_sid) in (("dialing", started.call_sid), ("connected", started.call_sid))
        assert answer_and_hang_up(flow, member) == started.call_sid
        row, results = ticket_row(services, t.id)
        assert (row.status, results) == ("completed", ["answered"])
        assert rest(flow.sim, "POST", "/Calls.json") == 1 and len(flow.sim.events.all("call.started", to=member)) == 1


def test_a_callback_refused_with_429_is_placed_on_the_next_attempt(services: Any, tmp_path: Path) -> None:
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        add_people(services, ["ann"])
        available(services, "ann", flow.clock())
        member = "+8613800000023"
        flow.sim.add_phone(member, "answer", answer_after=2)
        t = due_ticket(flow, services, member)
        flow.sim.faults.add(Fault("POST", "/Calls.json", status=429, code=20429, retry_after="0"))
        assert callback_dialer.dial_due(flow.svc) == 1
        sid = answer_and_hang_up(flow, member)
        row, results = ticket_row(services, t.id)
        assert (row.status, row.call_sid, results) == ("completed", sid, ["answered"])
        assert rest(flow.sim, "POST", "/Calls.json") == 2 and len(flow.sim.events.all("call.started", to=member)) == 1


# --- 4. a worker killed in the middle of a dispatch -----------------------------------------------------------

def worker_pid_running_a_job(redis_url: str) -> int:
    """The pid of the rq worker that is running a job now (exactly one is expected)."""
    conn = make_redis(redis_url, decode=False)
    try:
        busy = [w.pid for w in Worker.all(connection=conn) if w.get_current_job_id()]
    finally:
        conn.close()
    assert len(busy) == 1 and busy[0], busy
    return int(busy[0])


def claimed_not_ringing(services: Any, sim: Any) -> list[str]:
    """Callers in state 'offered' whose agent is not being rung (nor talking) for them: claimed but not connected."""
    out = []
    for k in services.redis.scan_iter(keys.call("*")):
        h = services.redis.hgetall(k)
        sid = k.removeprefix(keys.call(""))
        if h.get("state") == "offered":
            rung = any(e.call_sid == sid for e in sim.events.all("dial.ringing"))
            if not rung:
                out.append(sid)
    return out


def test_a_worker_killed_while_moving_a_caller_leaves_nobody_claimed_and_loses_nothing(
    services: Any, tmp_path: Path
) -> None:
    gate = threading.Event()
    with in_process_flow(services, tmp_path, workers=2) as flow:
        sim, api = flow.sim, flow.api
        add_people(services, ["ann", "bob"])
        phones = add_members(services, flow.config, {"premium": 2, "standard": 1})
        for login in ("ann", "bob"):
            sim.add_agent(login, answer_after=1, talk_seconds=5)
        booker_phone = phones["standard"][0]
        sim.add_phone(booker_phone, "busy")  # if its callback is dialled during the test, it is busy: retried later
        try:
            first = join_queue(sim, phones["premium"][0], script("premium"))
            second = join_queue(sim, phones["premium"][1], script("premium"))
            booker = sim.start_call(booker_phone, Script(answers=(PIN + "#", "0"), hold_answers=("1", "1"),
                                                         when_answers_run_out="hangup"))
            booker.join(30)  # booked a callback from the hold loop and left
            # The redirect that moves the first caller to Ann hangs in Twilio (never done) ...
            held = sim.faults.add(Fault("POST", MOVE, status=503, hold=gate, hold_max_s=60))
            api.status("ann", "available")  # the real trigger: an rq job in one of the workers
            sim.events.wait("rest.fault", timeout=30, method="POST")
            pid = worker_pid_running_a_job(services.redis_url)
            assert pid in [p.pid for _, p in flow.procs.children]
            # ... and the worker moving them dies.
            os.kill(pid, signal.SIGKILL)
            dead = next(p for _, p in flow.procs.children if p.pid == pid)
            assert dead.wait(timeout=20) == -signal.SIGKILL
            flow.procs.mark_killed(pid)  # waiting on other processes below must not count this death as a failure
        finally:
            gate.set()  # the held request ends (answered 503 to nobody): Twilio did nothing
        assert held.hits == 1
        # The damage: the first caller claimed for Ann, nobody rung, Ann on a call she does not have.
        assert claimed_not_ringing(services, sim) == [first.sid]
        assert presence.get(services.redis, "ann", flow.clock()).state == "on_call"
        # The periodic sweep job's queue part (hotline/jobs.py sweep), run here at the app's clock past ring timeout
        # + grace: the stale offer is returned, then the dispatch rings Ann for the first caller, who answers.
        # (Its store rebuild is left out: nothing was lost from a store, and it reads Redis' uptime against the
        # real clock, which this test's clock has passed.)
        flow.clock.advance(flow.config["queue"]["ring_timeout_s"] + 31)
        swept = sweep_queue(services.redis, flow.clock(), flow.config)
        assert swept["offers_returned"] == 1, swept
        assert (
            claimed_not_ringing(services, sim) == [] and services.redis.hget(keys.call(first.sid), "state") == "waiting"
        )
        assert dispatch_all(flow.svc) == 1
        assert [d.status for d in first.join(30).dial_results] == ["completed"]
        api.status("bob", "available")  # the surviving worker dispatches the second caller (to Bob, or Ann once free)
        assert [d.status for d in second.join(30).dial_results] == ["completed"]
        assert claimed_not_ringing(services, sim) == [] and services.redis.zcard(keys.OFFERS) == 0

        def settled() -> bool:
            with services.sessions() as db:
                dialing = db.scalar(select(CallbackTicket.id).where(CallbackTicket.status == "dialing"))
            return dialing is None and all(h.done() for h in (first, second, booker))

        flow.procs.until(settled, 30, "callbacks settled")
        # Nothing lost: a final record for every call, the booked ticket still there and still to be called back.
        recs = records(services)
        assert {sid: recs[sid].outcome for sid in (first.sid, second.sid, booker.sid)} == {
            first.sid: "answered", second.sid: "answered", booker.sid: "to_callback"}
        assert recs[first.sid].agent_login == "ann" and recs[second.sid].agent_login in ("ann", "bob")
        with services.sessions() as db:
            (ticket,) = db.scalars(select(CallbackTicket)).all()
            attempts = db.scalars(select(CallbackAttempt.result).where(CallbackAttempt.ticket_id == ticket.id)).all()
        assert (ticket.phone, ticket.source_call_sid, ticket.status) == (booker_phone, booker.sid, "scheduled")
        assert all(a == "busy" for a in attempts)  # dialled (busy) or not yet: no attempt left open
        assert_stats_match_records(api, services, flow.config)
