"""Issue 9, item 3 (3): the dispatcher's REST requests failing at Twilio (simulator/faults.py): the gateway retries
what is safe, and the dispatcher never leaves a caller claimed with no agent ringing, never rings an agent twice for
one offer, and never undoes what may have been done.

Since issue 16 a dispatch makes two requests: it rings the agent by a call of their own (Calls create, "ring"), and
once the agent has answered the bridge job moves the caller out of their queue into the call's conference (Calls
update, "move"). No rq worker runs here: the test dispatches and runs the bridge job's work itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callqueue.live import ordering, presence
from callqueue.live.conference import conference_name
from callqueue.live.dispatch import sweep as sweep_queue
from core import keys
from simulator import CallHandle, Fault
from tests.support.flow import Flow, agent_legs, join_queue, leg_ended
from tests.support.hotline_api import assert_stats_match_records, records
from tests.support.people import add_members, add_people, script
from tests.support.softphone import talking
from tests.support.twilio_faults import available, fixed_flow, flow_gateway, moves_to, rest
from webhooks.outbound import legs
from webhooks.outbound.dispatcher import dispatch_all
from webhooks.outbound.gateway import RetryPolicy

RING = "/Calls.json"  # Calls create: the agent's leg


def bridge(flow: Flow, caller: CallHandle, after: int = 0) -> str:
    """The bridge job's work, once Ann's leg is in the caller's conference (her answer queued the job)."""
    flow.sim.events.wait("conference.join", timeout=20, after=after, endpoint="client:ann",
                         conference=conference_name(caller.sid))
    return legs.bridge(flow.svc, caller.sid)


def talk_and_hang_up(flow: Flow, caller: CallHandle) -> Any:
    """Caller and Ann meet in the conference; Ann hangs up (the caller hears goodbye); the caller's result."""
    talking(flow, caller, "client:ann")
    assert flow.sim.device("ann").hangup() is not None
    return caller.join(30)


def setup(flow: Flow, services: Any, tiers: dict[str, int]) -> dict[str, list[str]]:
    add_people(services, ["ann"])
    flow.sim.add_agent("ann", answer_after=2, talk_seconds=None)  # she hangs up when the test says
    return add_members(services, flow.config, tiers)


@pytest.mark.parametrize("step, how", [
    ("ring", dict(status=429, code=20429, retry_after="0", times=2)),
    ("ring", dict(status=503, times=2)),
    ("move", dict(status=500, times=2)),
    ("move", dict(status=429, code=20429, retry_after="0", times=2)),
    ("move", dict(status=503, times=3)),
    ("move", dict(delay_s=1.0, times=2)),  # two timeouts
], ids=["ring-429x2", "ring-503x2", "move-500x2", "move-429x2", "move-503x3", "move-timeout-x2"])
def test_a_dispatch_rides_out_failing_requests_and_rings_the_agent_once(
    step: str, how: dict[str, Any], services: Any, tmp_path: Path
) -> None:
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        phones = setup(flow, services, {"premium": 1})
        caller = join_queue(flow.sim, phones["premium"][0], script("premium"))
        fault = flow.sim.faults.add(Fault("POST", RING if step == "ring" else f"/Calls/{caller.sid}", **how))
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 1
        assert bridge(flow, caller) == "moved"
        result = talk_and_hang_up(flow, caller)
        retried = fault.times + 1
        assert fault.hits == fault.times
        assert rest(flow.sim, "POST", RING) == (retried if step == "ring" else 1)
        assert rest(flow.sim, "POST", f"/Calls/{caller.sid}") == (retried if step == "move" else 1)
        assert [(c, e) for c, e, _leg in agent_legs(flow.sim)] == [(caller.sid, "client:ann")]  # rung once
        assert result.talked_with() == ["client:ann"] and moves_to(caller, "/voice/connect") == 1
        rec = records(services)[caller.sid]
        assert (rec.outcome, rec.offers, rec.agent_login) == ("answered", 1, "ann")
        assert_stats_match_records(flow.api, services, flow.config)


def assert_back_in_place(services: Any, flow: Flow, caller: CallHandle, score: float) -> None:
    """Not claimed, not lost: first in line at the same score, the agent available, no offer open."""
    assert services.redis.hget(keys.call(caller.sid), "state") == "waiting"
    assert (ordering.position(services.redis, caller.sid), services.redis.zscore(keys.ORDER, caller.sid)) == (1, score)
    assert services.redis.zcard(keys.OFFERS) == 0
    assert presence.get(services.redis, "ann", flow.clock()).state == "available"
    assert caller.result.queue_results == []  # they never left their Twilio queue


@pytest.mark.parametrize("how", [
    dict(status=503, times=None),
    dict(status=429, code=20429, retry_after="0", times=None),
], ids=["503", "429"])
def test_a_ring_failing_for_good_puts_the_caller_back_in_place_and_frees_the_agent(
        how: dict[str, Any], services: Any, tmp_path: Path) -> None:
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        phones = setup(flow, services, {"premium": 1, "standard": 1})
        first = join_queue(flow.sim, phones["premium"][0], script("premium"))
        second = join_queue(flow.sim, phones["standard"][0], script("standard"))
        score = services.redis.zscore(keys.ORDER, first.sid)
        flow.sim.faults.add(Fault("POST", RING, **how))
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 0  # gave up, and did not claim the next caller while Twilio fails
        rung = flow.sim.rest_requests("POST", RING)
        assert len(rung) == 3 and all(f"caller={first.sid}" in r.params["Url"] for r in rung)
        assert_back_in_place(services, flow, first, score)
        assert not flow.sim.events.all("device.ringing")
        # Twilio is back: the next dispatch rings Ann for the same caller.
        flow.sim.faults.clear()
        assert dispatch_all(flow.svc) == 1
        assert bridge(flow, first) == "moved"
        assert talk_and_hang_up(flow, first).talked_with() == ["client:ann"]
        second.hangup()
        second.join(30)
        recs = records(services)
        assert (recs[first.sid].outcome, recs[first.sid].agent_login) == ("answered", "ann")
        assert_stats_match_records(flow.api, services, flow.config)


@pytest.mark.parametrize("how", [
    dict(status=500, times=None),
    dict(status=429, code=20429, retry_after="0", times=None),
    dict(delay_s=1.0, times=None),  # every attempt times out
], ids=["500", "429", "timeout"])
def test_a_move_failing_for_good_ends_the_agents_leg_and_puts_the_caller_back_in_place(
        how: dict[str, Any], services: Any, tmp_path: Path) -> None:
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow, move=RetryPolicy(attempts=3, base_s=0.05, budget_s=4.0))
        phones = setup(flow, services, {"premium": 1, "standard": 1})
        first = join_queue(flow.sim, phones["premium"][0], script("premium"))
        second = join_queue(flow.sim, phones["standard"][0], script("standard"))
        score = services.redis.zscore(keys.ORDER, first.sid)
        flow.sim.faults.add(Fault("POST", f"/Calls/{first.sid}", **how))
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 1
        assert bridge(flow, first) == "failed"  # Ann answered, the caller could not be moved to her
        assert rest(flow.sim, "POST", f"/Calls/{first.sid}") == 3
        leg_ended(flow.sim, "client:ann")  # her leg was ended for her, and that was reported
        assert_back_in_place(services, flow, first, score)
        assert moves_to(first, "/voice/connect") == 0
        # Twilio is back: the next dispatch rings Ann again for the same caller, not the next one.
        flow.sim.faults.clear()
        mark = flow.sim.events.last_seq()
        assert dispatch_all(flow.svc) == 1
        assert bridge(flow, first, after=mark) == "moved"
        assert talk_and_hang_up(flow, first).talked_with() == ["client:ann"]
        assert [c for c, _e, _leg in agent_legs(flow.sim)] == [first.sid, first.sid]
        second.hangup()
        second.join(30)
        recs = records(services)
        assert (recs[first.sid].outcome, recs[first.sid].agent_login, recs[first.sid].offers) == ("answered", "ann", 2)
        assert_stats_match_records(flow.api, services, flow.config)


@pytest.mark.parametrize("placed", [False, True], ids=["not-placed", "placed"])
def test_a_ring_that_may_have_happened_is_left_to_the_sweep_not_undone(
        placed: bool, services: Any, tmp_path: Path) -> None:
    """No answer from Twilio to Calls create, so no telling whether Ann's device rings: undoing the claim could
    give the caller to someone else while she answers. The offer stays: if her leg was placed, her answer connects
    the call; if not, the sweep returns the offer (ring timeout + grace) and the next dispatch rings her."""
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        phones = setup(flow, services, {"premium": 1})
        caller = join_queue(flow.sim, phones["premium"][0], script("premium"))
        flow.sim.faults.add(Fault("POST", RING, status=None if placed else 500, applied=placed, delay_s=1.0,
                                  times=None))
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 0
        assert rest(flow.sim, "POST", RING) == 1  # never sent twice
        assert presence.get(services.redis, "ann", flow.clock()).state == "on_call"
        if placed:
            assert bridge(flow, caller) == "moved"  # her answer (her leg unknown to the dispatcher) connects it
        else:
            assert services.redis.hget(keys.call(caller.sid), "state") == "offered"
            flow.sim.faults.clear()
        flow.clock.advance(flow.config["queue"]["ring_timeout_s"] + 31)
        assert sweep_queue(services.redis, flow.clock(), flow.config)["offers_returned"] == (0 if placed else 1)
        if not placed:
            assert services.redis.hget(keys.call(caller.sid), "state") == "waiting"
            assert dispatch_all(flow.svc) == 1
            assert bridge(flow, caller) == "moved"
        assert talk_and_hang_up(flow, caller).talked_with() == ["client:ann"]
        assert [(c, e) for c, e, _leg in agent_legs(flow.sim)] == [(caller.sid, "client:ann")]  # rung once
        assert rest(flow.sim, "POST", RING) == (1 if placed else 2)
        rec = records(services)[caller.sid]
        assert (rec.outcome, rec.agent_login) == ("answered", "ann")
        assert_stats_match_records(flow.api, services, flow.config)


@pytest.mark.parametrize("moved", [False, True], ids=["not-done", "done"])
def test_a_move_that_may_have_happened_is_not_undone(moved: bool, services: Any, tmp_path: Path) -> None:
    """No answer from Twilio to the caller's move, and no look at their queue possible: if the move was done the
    caller talks with Ann (never cut off); if not, Ann's leg ends and the caller is back at their place."""
    with fixed_flow(services, tmp_path) as flow:
        flow_gateway(flow)
        phones = setup(flow, services, {"premium": 1})
        caller = join_queue(flow.sim, phones["premium"][0], script("premium"))
        score = services.redis.zscore(keys.ORDER, caller.sid)
        flow.sim.faults.add(Fault("POST", f"/Calls/{caller.sid}", status=None if moved else 500, applied=moved,
                                  delay_s=1.0, times=None))
        flow.sim.faults.add(Fault("GET", "/Queues", status=500, times=None))
        available(services, "ann", flow.clock())
        assert dispatch_all(flow.svc) == 1
        assert bridge(flow, caller) == ("moved" if moved else "failed")
        assert rest(flow.sim, "POST", f"/Calls/{caller.sid}") == 1  # never sent twice
        if moved:
            result = talk_and_hang_up(flow, caller)
            assert result.talked_with() == ["client:ann"] and moves_to(caller, "/voice/connect") == 1
            assert records(services)[caller.sid].outcome == "answered"
        else:
            leg_ended(flow.sim, "client:ann")
            assert_back_in_place(services, flow, caller, score)
            caller.hangup()
            caller.join(30)
            rec = records(services)[caller.sid]  # Ann's answer, which the caller never heard, does not count
            assert rec.outcome in ("abandoned", "short_abandoned") and rec.answered is None
        assert_stats_match_records(flow.api, services, flow.config)
