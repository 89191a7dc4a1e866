"""Issue 9, item 3 (3): the dispatcher's moves failing at Twilio's REST API (simulator/faults.py): the gateway
retries what is safe, and the dispatcher never leaves a caller claimed but not connected nor rings an agent twice.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callqueue.live import ordering, presence
from callqueue.live.dispatch import sweep as sweep_queue
from core import keys
from simulator import Fault
from tests.support.flow import join_queue
from tests.support.hotline_api import assert_stats_match_records, records
from tests.support.people import add_members, add_people, script
from tests.support.twilio_faults import MOVE, available, fixed_flow, flow_gateway, moves_to, rest
from webhooks.outbound.dispatcher import dispatch_all
from webhooks.outbound.gateway import RetryPolicy


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
