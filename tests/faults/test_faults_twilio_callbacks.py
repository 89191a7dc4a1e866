"""Issue 9, item 3 (3): placing a callback while Twilio's REST API fails (simulator/faults.py): a callback never
rings a member twice, and a call Twilio may have placed is found and recorded or recovered once stale.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from core import keys
from simulator import Fault
from tests.support.flow import Flow
from tests.support.people import add_people
from tests.support.twilio_faults import available, fixed_flow, flow_gateway, rest
from webhooks.outbound import callback_dialer


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
