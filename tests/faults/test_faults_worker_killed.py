"""Issue 9, item 3 (4): a real `hotline worker` killed (SIGKILL) while its dispatch's REST request is held (since
issue 16 that is Calls create, ringing the agent by a call of their own): the sweep returns the claimed caller, and
no call record or ticket is lost.
"""
from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rq import Worker
from sqlalchemy import select

from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from callqueue.live import presence
from callqueue.live.dispatch import sweep as sweep_queue
from core import keys
from core.redisconn import make_redis
from simulator import Fault, Script
from tests.support.flow import agent_legs, in_process_flow, join_queue
from tests.support.hotline_api import assert_stats_match_records, records
from tests.support.people import PIN, add_members, add_people, script
from webhooks.outbound.dispatcher import dispatch_all


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
    """Callers in state 'offered' for whom no agent's leg has rung: claimed but nobody to answer."""
    rung = {caller for caller, _endpoint, _leg in agent_legs(sim)}
    out = []
    for k in services.redis.scan_iter(keys.call("*")):
        sid = k.removeprefix(keys.call(""))
        if services.redis.hget(k, "state") == "offered" and sid not in rung:
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
            # (a stay in a conference counts from the agent's joining it: long enough for a worker to move the
            # caller in)
            sim.add_agent(login, answer_after=1, talk_seconds=100)
        booker_phone = phones["standard"][0]
        sim.add_phone(booker_phone, "busy")  # if its callback is dialled during the test, it is busy: retried later
        try:
            first = join_queue(sim, phones["premium"][0], script("premium"))
            second = join_queue(sim, phones["premium"][1], script("premium"))
            booker = sim.start_call(booker_phone, Script(answers=(PIN + "#", "0"), hold_answers=("1", "1"),
                                                         when_answers_run_out="hangup"))
            booker.join(30)  # booked a callback from the hold loop and left
            # The Calls create that rings Ann for the first caller hangs in Twilio (never done) ...
            held = sim.faults.add(Fault("POST", "/Calls.json", status=503, hold=gate, hold_max_s=60))
            api.status("ann", "available")  # the real trigger: an rq job in one of the workers
            sim.events.wait("rest.fault", timeout=30, method="POST")
            pid = worker_pid_running_a_job(services.redis_url)
            assert pid in [p.pid for _, p in flow.procs.children]
            # ... and the worker ringing her dies.
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
        past = flow.config["queue"]["ring_timeout_s"] + 31
        flow.clock.advance(past)
        # The worker stamped the offer with its own clock, the wall clock (another process); the test's clock is
        # held back before the hotline's midnight (FakeClock), so the sweep runs at the later of the two.
        swept = sweep_queue(services.redis, max(flow.clock(), datetime.now(UTC) + timedelta(seconds=past)),
                            flow.config)
        assert swept["offers_returned"] == 1, swept
        assert (
            claimed_not_ringing(services, sim) == [] and services.redis.hget(keys.call(first.sid), "state") == "waiting"
        )
        assert dispatch_all(flow.svc) == 1  # the surviving worker moves the caller in once Ann answers
        assert first.join(30).talked_with() == ["client:ann"]
        api.status("bob", "available")  # the surviving worker dispatches the second caller (to Bob, or Ann once free)
        assert second.join(30).talked_with() in (["client:bob"], ["client:ann"])
        assert claimed_not_ringing(services, sim) == [] and services.redis.zcard(keys.OFFERS) == 0
        assert [caller for caller, _endpoint, _leg in agent_legs(sim)] == [first.sid, second.sid]  # each rung once

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
