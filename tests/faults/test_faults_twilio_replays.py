"""Issue 9, item 3 (1): Twilio's retries. Every /voice/* webhook of whole calls is sent twice (same CallSid,
parameters and signature), as Twilio does when it retries: the two answers are the same TwiML and the second changes
nothing (every Redis key, every SQL row). The app's clock stands still within a pair (fixed dates) and moves one
second per request. The agents' legs, their status callbacks, the conference's status callbacks and its hold audio
(issue 16) are sent twice like the rest; the test plays the rq jobs (dispatch, moving the caller in) between pairs.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from callqueue.live import ordering, presence
from core import keys
from hotline.app import create_app
from simulator import Script
from tests.support.clocks import StepClock
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.flow import leg_ended, offers
from tests.support.hotline_api import assert_stats_match_records, records
from tests.support.people import PIN, add_members, add_people
from tests.support.replay import TwiceTransport, replaying
from tests.support.softphone import control, talking
from tests.support.twilio_faults import NINE_TO_NINE, TUESDAY_10, TUESDAY_22, available
from webhooks.outbound import callback_dialer

# The endpoints each replay scenario must have sent twice; together, every /voice/* webhook.
SCENARIOS = {
    "answered": {
        "voice.incoming",
        "voice.ivr_step",
        "voice.wait",
        "voice.agent_status",
        "voice.agent_answer",
        "voice.queue_result",
        "voice.connect",
        "voice.conference_status",
        "voice.hold_audio",
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
        "voice.agent_answer",
        "voice.agent_status",
        "voice.queue_result",
        "voice.connect",
        "voice.conference_status",
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
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=None)  # she hangs up below
        # PIN; the account answers (1); text me the link (1); an agent (0)
        handle = flow.sim.start_call(
            phones["premium"][0], Script(answers=(PIN + "#", "1", "1", "0"), when_answers_run_out="hangup")
        )
        flow.sim.events.wait("queue.joined", timeout=20, call_sid=handle.sid)
        with twice.lock:
            available(services, "nora", clock())
            assert twice.dispatch(flow.svc) == 1  # Nora's device rings (and rings out)
            available(services, "ann", clock())  # idle before Nora is back: the next offer is Ann's
        leg_ended(flow.sim, "client:nora")  # the no-answer reported (twice): the caller never left the queue
        with twice.lock:
            assert twice.dispatch(flow.svc) == 1
        twice.bridge(flow, handle.sid, "client:ann")
        talking(flow, handle, "client:ann")
        with twice.lock:  # the console's hold and resume: the hold audio and the hold callbacks, twice each
            control(flow.api, "ann", handle.sid, "hold", {"hold": True})
        flow.sim.events.wait("heard", timeout=20, call_sid=handle.sid, party="hold", verb="pause")
        with twice.lock:
            control(flow.api, "ann", handle.sid, "hold", {"hold": False})
        flow.sim.events.wait("conference.unhold", timeout=20, call_sid=handle.sid)
        assert flow.sim.device("ann").hangup() is not None
        result = handle.join(30)
        leg_ended(flow.sim, "client:ann")  # and her leg's end reported (twice)
        replayed = twice.assert_idempotent()
        assert replayed >= SCENARIOS["answered"], SCENARIOS["answered"] - replayed
        steps = [p.url.removeprefix(PUBLIC_URL) for p in twice.pairs if p.endpoint == "voice.ivr_step"]
        assert steps == ["/voice/ivr/pin?s=0", "/voice/ivr/menu?s=1", "/voice/ivr/menu?s=2", "/voice/ivr/menu?s=3"]
        assert offers(flow.sim) == [(handle.sid, "nora"), (handle.sid, "ann")]
        assert [q["QueueResult"] for q in result.queue_results] == ["redirected"]  # left the queue once, for Ann
        assert result.talked_with() == ["client:ann"]
        assert result.said()[-1] == flow.config.prompt("goodbye", "zh")  # Ann left: goodbye
        assert flow.config.prompt("hold", "zh") in [h.text for h in result.transcript if h.party == "hold"]
        assert len(flow.sim.messages) == 1 and flow.sim.messages[0].to == phones["premium"][0]  # texted once, not twice
        assert flow.config.prompt("sms_sent", "zh") in result.said()
        rec = records(services)[handle.sid]
        assert (rec.outcome, rec.agent_login, rec.agents, rec.offers, rec.dial_status, rec.call_status) == (
            "answered", "ann", "ann", 2, "completed", "completed")
        assert rec.hold_count == 1  # the hold's callbacks, sent twice, count once
        # Nora's no-answer, reported twice, is one miss (two in a row would have set her away)
        nora = presence.get(services.redis, "nora", clock())
        assert (nora.state, services.redis.hget(keys.agent("nora"), "missed")) == ("available", "1")
        live = assert_stats_match_records(flow.api, services, flow.config)
        assert live["tiers"]["premium"]["answered"] == 1 and live["overall"]["waiting"] == 0


def test_every_webhook_of_a_callback_booked_on_hold_and_of_a_hang_up_in_the_queue_twice(
        services: Any, tmp_path: Path, twiml_check: Callable[[str], None]) -> None:
    with replaying(services, tmp_path, twiml_check, TUESDAY_10) as (flow, _clock, twice):
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
        flow.sim.add_agent("ann", answer_after=2, talk_seconds=None)  # she hangs up below
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
        twice.bridge(flow, started.call_sid, "client:ann")
        talking(flow, flow.sim.handle(started.call_sid), "client:ann")
        assert flow.sim.device("ann").hangup() is not None
        callback = flow.sim.handle(started.call_sid).join(30)
        leg_ended(flow.sim, "client:ann")
        replayed = twice.assert_idempotent()
        assert replayed >= SCENARIOS["callback"], SCENARIOS["callback"] - replayed
        assert callback.talked_with() == ["client:ann"]
        assert [r.params["To"] for r in flow.sim.rest_requests("POST", "/Calls.json")] == [member, "client:ann"]
        # the member was called once, and Ann's device rung once
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
