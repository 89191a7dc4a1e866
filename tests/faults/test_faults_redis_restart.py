"""Issue 9 (items 1, 2): Redis stopped and restarted mid-run under the hotline's own processes (a real `hotline
worker` and `hotline cron`): no caller and no ticket is lost, and the processes stop at once when told to while Redis
is away.

Figures the README's RELIABILITY section quotes are printed with a `FIGURE` prefix (pytest -s shows them).
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from callqueue.callbacks import tickets
from callqueue.live import ordering
from callqueue.recovery import rebuild
from core import keys
from core.services import Services
from hotline.app import create_app
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.degraded import Twilio, figure, record, stores_services, ticket_rows
from tests.support.flow import join_queue, ringing_order, write_config
from tests.support.hotline_api import Api, assert_stats_match_records
from tests.support.outages import RedisProcess
from tests.support.people import PIN, add_members, add_people, phone, script
from tests.support.processes import Processes, hotline_env
from webhooks import urls


def test_redis_stopped_and_restarted_mid_run_loses_no_caller_and_no_ticket(
    services: Services, fault_redis: RedisProcess, tmp_path: Path,
) -> None:
    """Whole calls through the simulator, a real `hotline worker` and `hotline cron` on a Redis of the test's own.

    Two guests queue as usual and a ticket's rq job is scheduled; Redis stops; three premium members call
    (held in the degraded queue with parked tickets) and two guests book callbacks; Redis comes back empty.
    The cron's sweep rebuilds the queue from SQL; the agent, available again, takes the premium members,
    then the guests who waited, then rings the callbacks, the pre-outage one (whose job was lost) last.
    The app, the worker and the cron share the wall clock here (tickets fall due in real time).
    """
    from simulator import Script, Simulator
    from webhooks.outbound import callback_dialer
    from webhooks.outbound.gateway import TwilioGateway

    config_path, config = write_config(tmp_path)
    wall = lambda: datetime.now(ZoneInfo("UTC"))  # noqa: E731 (the wall clock, as the worker and the cron keep it)
    svc = replace(stores_services(services, fault_redis.url, clock=wall), config=config)
    premium = add_members(services, config, {"premium": 3})["premium"]
    add_people(services, ["ann"])
    app = create_app(services=svc)
    procs = Processes(tmp_path)
    sim = Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=0.005)
    r = svc.redis
    try:
        api_url = sim.start()
        svc.gateway = TwilioGateway(sim.account_sid, AUTH_TOKEN, api_url, from_number=sim.number)
        env = hotline_env(svc, config_path, api_url)
        procs.workers(1, env, svc.redis_url)
        procs.start("cron", [sys.executable, "-m", "hotline.cli", "cron"], env)
        procs.until(lambda: not rebuild.needed(r), 30, "the cron's first sweep")  # the hotline is up and running
        # (her stay in a conference counts from her joining it: long enough for the worker to move the caller in)
        sim.add_agent("ann", answer_after=1, talk_seconds=200)
        api = Api(app=app)
        api.status("ann", "available")
        before = sim.start_call(phone("guest", 5), script("guest"))  # a call answered before the outage
        assert before.join(30).status == "completed"
        api.status("ann", "away")
        guests = [join_queue(sim, phone("guest", i), script("guest")) for i in (1, 2)]  # nobody available: they wait
        early = phone("standard", 9)
        sim.add_phone(early, "answer", answer_after=2)
        with svc.unit_of_work() as s:
            t0 = tickets.create(
                s,
                phone=early,
                tier="standard",
                lang="zh",
                reason="after_hours",
                score=wall().timestamp() + 3600,
                due=wall() + timedelta(seconds=3),
                now=wall(),
                max_attempts=3,
            ).ticket
        callback_dialer.schedule(svc, t0)
        assert r.exists(f"rq:job:{callback_dialer.job_id(t0)}")

        fault_redis.stop()
        held = []
        for number in premium:
            h = sim.start_call(number, Script(answers=(PIN + "#",), when_answers_run_out="silence"))
            sim.events.wait("queue.joined", timeout=15, call_sid=h.sid, queue="hotline-degraded")
            held.append(h)
        booked = []
        for i in (10, 11):
            number = phone("guest", i)
            sim.add_phone(number, "answer", answer_after=2)
            result = sim.place_call(number, Script(answers=("1",), when_answers_run_out="hangup"))
            assert result.status == "completed" and any("已为您登记回拨" in x for x in result.said())
            booked.append(number)
        t_in = time.perf_counter()
        Twilio(app, lambda body: None).post("/voice/incoming", "CA" + "9" * 32, caller=phone("guest", 20))
        incoming_ms = (time.perf_counter() - t_in) * 1000
        assert all(not h.done() for h in guests + held), "nobody who was holding was dropped"
        rows = ticket_rows(svc)
        assert sorted(t.reason for t in rows) == ["after_hours"] + ["outage"] * 5
        parked = [t for t in rows if t.reason == "outage" and t.phone in premium]
        assert len(parked) == 3 and all(t.due > wall() + timedelta(hours=3) for t in parked)

        cron_log = tmp_path / "cron.log"
        procs.until(lambda: "redis lost" in cron_log.read_text(), 20, "the cron noticing that Redis is gone")
        fault_redis.start()  # empty: the queue, the agent's presence and every rq job are gone
        t_up = time.monotonic()
        procs.until(lambda: not rebuild.needed(r), 30, "the sweep's rebuild of the queue")
        rebuilt_s = time.monotonic() - t_up
        waiting = [c["call_sid"] for c in ordering.in_order(r)]
        assert waiting == [h.sid for h in held] + [h.sid for h in guests], "our order, rebuilt from SQL"
        assert not r.exists(f"rq:job:{callback_dialer.job_id(t0)}"), "the scheduled job was lost with Redis"

        api.status("ann", "available")  # presence lived in Redis: the agent says so again
        for h in held + guests:
            h.join(60)
        cb_sids = [
            sim.events.wait("call.started", timeout=60, direction="outbound-api", to=n).call_sid
            for n in (*booked, early)
        ]
        for sid in cb_sids:
            sim.handle(sid).join(60)
        assert ringing_order(sim) == [before.sid] + [h.sid for h in held] + [h.sid for h in guests] + cb_sids
        procs.until(lambda: all(t.status in ("completed", "cancelled") for t in ticket_rows(svc)), 30,
                    "every ticket settled (the sweep cancels the held members' parked tickets)")
        final = {t.phone: t for t in ticket_rows(svc)}
        assert all(final[n].status == "cancelled" and "answered while holding" in final[n].note for n in premium)
        assert all(final[n].status == "completed" and final[n].attempts == 1 for n in (*booked, early))
        dialled = [req.params["To"] for req in sim.rest_requests("POST", "/Calls.json")
                   if urls.AGENT_ANSWER not in req.params["Url"]]  # not the agent's legs (issue 16)
        assert sorted(dialled) == sorted([*booked, early]), "each callback rung once; no held member rung at all"
        for h in held:
            rec = record(svc, h.sid)
            assert (rec.outcome, rec.tier, rec.verified) == ("answered", "premium", True)
        # Today's figures survive the empty restart: the sweep added back what Redis lost (the call answered
        # before the outage among them). The 15-minute window is whole again 15 minutes after the restart.
        procs.until(lambda: bool(r.exists(keys.KEPT)), 30, "the sweep's restore of today's counters")
        assert_stats_match_records(api, services, config)
        procs.check_alive()  # the worker and the cron lived through the outage
        assert "redis answers again" in cron_log.read_text()
        figure("/voice/incoming with Redis stopped, calls in progress", f"{incoming_ms:.0f} ms")
        figure(
            "calls held without Redis / tickets written without Redis", f"{len(held) + len(guests)} / {len(rows) - 1}"
        )
        figure(
            "Redis back (empty) → queue rebuilt by the cron's sweep",
            f"{rebuilt_s:.1f} s, {len(waiting)} callers restored",
        )
    finally:
        procs.stop()
        sim.stop()
        r.close()


def test_the_worker_and_the_cron_stop_at_once_when_told_to_while_redis_is_away(
    services: Services, fault_redis: RedisProcess, tmp_path: Path,
) -> None:
    config_path, _ = write_config(tmp_path)
    svc = stores_services(services, fault_redis.url)
    procs = Processes(tmp_path)
    try:
        env = hotline_env(svc, config_path, "http://127.0.0.1:9")
        procs.workers(1, env, svc.redis_url)
        cron = procs.start("cron", [sys.executable, "-m", "hotline.cli", "cron"], env)
        procs.until(lambda: not rebuild.needed(svc.redis), 30, "the cron's first sweep")
        fault_redis.stop()
        procs.until(
            lambda: "redis lost" in (tmp_path / "cron.log").read_text(), 20, "the cron noticing that Redis is gone"
        )
        procs.until(lambda: "could not connect to Redis" in (tmp_path / "worker1.log").read_text(), 20,
                    "the worker noticing that Redis is gone")
        for name, proc in procs.children:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0, f"{name} did not stop on SIGTERM\n{procs.logs()}"
        assert cron.returncode == 0
    finally:
        procs.stop()
        svc.redis.close()
