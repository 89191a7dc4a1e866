"""Callback tickets under faults, with the hotline's own processes: Redis emptied, workers racing, a worker
that died between claiming a ticket and placing its call. No ticket is lost; none is dialled twice at once.

The app and the processes share the wall clock here (tickets are due now, the line is open around the
clock); agents are made available directly in Redis so that only the path under test can dial.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callqueue.agents.accounts import agent_endpoint
from callqueue.callbacks import attempts, tickets
from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from callqueue.live import presence
from tests.support.common import ROOT
from tests.support.flow import Flow, in_process_flow
from tests.support.people import add_people, phone
from tests.support.processes import hotline_env
from webhooks.outbound import callback_dialer


def book_due(
    flow: Flow, services: Any, n: int, *, due: datetime | None = None, jobs: bool = True
) -> list[tickets.Ticket]:
    """n tickets due now (as after-hours bookings whose opening has come), each with its job, and phones that answer."""
    out = []
    now = flow.clock()
    for i in range(n):
        number = phone("premium", i)
        flow.sim.add_phone(number, "answer", answer_after=2)
        with services.unit_of_work() as db:
            created = tickets.create(db, phone=number, tier="premium", lang="zh", reason="after_hours",
                                     score=now.timestamp() - 600 + i, due=due or now, now=now, max_attempts=3)
        if jobs:
            callback_dialer.schedule(flow.svc, created.ticket)
        out.append(created.ticket)
    return out


def agents_available(flow: Flow, services: Any, logins: list[str]) -> None:
    """Agents available in Redis without asking for a dispatch (so a sweep, not the trigger, must dial)."""
    add_people(services, logins)
    for login in logins:
        flow.sim.add_agent(login, answer_after=1, talk_seconds=5)
        with services.sessions() as db:
            endpoint = agent_endpoint(db, login)
        presence.set_state(services.redis, login, "available", flow.clock(), endpoint=endpoint)


def dialled(flow: Flow) -> list[str]:
    """The members' numbers the hotline dialled, in order: the callback calls among every Calls create (the agents'
    legs are created the same way, with the agent-answer URL)."""
    return [r.params["To"] for r in flow.sim.rest_requests("POST", "/Calls.json")
            if "/voice/callback/answer" in r.params.get("Url", "")]


def wait_placed(flow: Flow, numbers: list[str], timeout: float = 40) -> list[str]:
    """The CallSids of the callback calls to `numbers`, once each has started."""
    return [flow.sim.events.wait("call.started", timeout=timeout, direction="outbound-api", to=number).call_sid
            for number in numbers]


def statuses(services: Any) -> dict[str, str]:
    with services.sessions() as db:
        return {t.phone: t.status for t in db.scalars(select(CallbackTicket))}


def start_cron(flow: Flow, services: Any, folder: Path) -> None:
    env = hotline_env(services, folder / "flow.toml", flow.sim.api_url)
    flow.procs.start("cron", [sys.executable, "-m", "hotline.cli", "cron"], env)


def test_a_flushed_redis_loses_no_ticket_the_sweep_dials_every_due_one_once(services: Any, tmp_path: Path) -> None:
    with in_process_flow(services, tmp_path, workers=1) as flow:
        booked = book_due(flow, services, 3, due=flow.clock() + timedelta(seconds=2))  # jobs scheduled for then
        assert all(services.redis.exists(f"rq:job:{callback_dialer.job_id(t)}") for t in booked)
        services.redis.flushdb()  # the jobs, the queue, the presence, the locks: all gone
        assert not any(services.redis.exists(f"rq:job:{callback_dialer.job_id(t)}") for t in booked)
        agents_available(flow, services, ["ann", "bob", "cat"])
        start_cron(flow, services, tmp_path)  # its sweep, every 5 s, is the only thing that can dial now
        numbers = [t.phone for t in booked]
        for sid in wait_placed(flow, numbers):
            flow.sim.handle(sid).join(60)
        assert sorted(dialled(flow)) == sorted(numbers)  # each exactly once
        assert set(statuses(services).values()) == {"completed"}


def tickets_row(services: Any, ticket_id: int) -> CallbackTicket:
    with services.sessions() as db:
        row = db.get(CallbackTicket, ticket_id)
        assert row is not None
        return row


RACER = """
import sys
from hotline.startup import open_services
from webhooks.outbound.callback_dialer import place
svc = open_services()
ids = [int(x) for x in sys.argv[1:]]
print(sum(place(svc, i, svc.clock()) for i in ids))
"""


def test_racing_processes_never_dial_a_ticket_twice(services: Any, tmp_path: Path) -> None:
    with in_process_flow(services, tmp_path, workers=1) as flow:
        booked = book_due(flow, services, 8, jobs=False)
        agents_available(flow, services, [f"a{i}" for i in range(8)])
        ids = [str(t.id) for t in booked]
        env = hotline_env(services, tmp_path / "flow.toml", flow.sim.api_url)
        # Three processes each try to place every ticket, bypassing the pass lock: only the SQL claim stands
        # between them and a double dial.
        racers = [subprocess.Popen([sys.executable, "-c", RACER, *ids], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE) for _ in range(3)]
        outs = [p.communicate(timeout=60) for p in racers]
        assert all(p.returncode == 0 for p in racers), [o[1][-2000:] for o in outs]
        for sid in wait_placed(flow, [t.phone for t in booked]):
            flow.sim.handle(sid).join(60)
        placed = sum(int(o[0].decode().strip().splitlines()[-1]) for o in outs)
        counts = {n: dialled(flow).count(n) for n in (t.phone for t in booked)}
        assert set(counts.values()) == {1}, counts
        # The racers placed most; an answered callback's dispatch job may have dialled the last ones first.
        assert 1 <= placed <= len(booked)
        with services.sessions() as db:
            assert db.scalar(select(CallbackAttempt.id).where(CallbackAttempt.n > 1)) is None  # no second attempt


def test_a_ticket_left_dialing_by_a_dead_worker_is_recovered_and_dialled_once(services: Any, tmp_path: Path) -> None:
    with in_process_flow(services, tmp_path, workers=1) as flow:
        stale = flow.clock() - timedelta(minutes=10)
        (t,) = book_due(flow, services, 1, due=stale)
        # What a worker killed between its claim's commit and Twilio's answer leaves: dialing, no call.
        with services.unit_of_work() as db:
            assert attempts.claim(db, t.id, stale) is not None
        agents_available(flow, services, ["ann"])
        start_cron(flow, services, tmp_path)
        (sid,) = wait_placed(flow, [t.phone])
        flow.sim.handle(sid).join(60)
        row = tickets_row(services, t.id)
        assert row.status == "completed" and dialled(flow) == [t.phone]
        with services.sessions() as db:
            results = list(db.scalars(select(CallbackAttempt.result).where(CallbackAttempt.ticket_id == t.id)
                                      .order_by(CallbackAttempt.n)))
        assert results == ["lost", "answered"]


def test_a_stale_ticket_whose_call_is_still_live_is_left_to_its_status_callback(services: Any, tmp_path: Path) -> None:
    with in_process_flow(services, tmp_path, workers=1) as flow:
        stale = flow.clock() - timedelta(minutes=10)
        (t,) = book_due(flow, services, 1, due=stale)
        flow.sim.add_phone(t.phone, "answer", answer_after=10_000)  # rings on and on
        with services.unit_of_work() as db:
            claimed = attempts.claim(db, t.id, stale)
        assert claimed is not None
        answer, status = callback_dialer.urls(flow.svc, t, claimed.n)
        # The worker placed the call and died before recording it: Twilio has a live call to the number.
        sid = flow.svc.gateway.create_call(t.phone, answer, status, timeout_s=600)
        assert callback_dialer.recover(flow.svc) == 0
        assert tickets_row(services, t.id).status == "dialing" and dialled(flow) == [t.phone]
        flow.sim.handle(sid).hangup()
        flow.sim.handle(sid).join(30)
        assert tickets_row(services, t.id).status == "scheduled"  # its status callback settled it: a retry

