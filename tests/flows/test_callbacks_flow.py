"""Issue 5's "done when", as whole calls through the simulator: booking after hours, the callback at the
opening in score order, retries that end in a visible failure, and "press 1" from the hold loop.

The app runs on a clock that starts at a fixed instant in 2030 (so the rq workers, which keep the wall
clock, never find these tickets due); the test runs each dialling pass in-process with the app's clock,
as `hotline callbacks run-due` does, and the workers dispatch the answered callbacks to agents.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from simulator import Script
from tests.support.clocks import RunningClock
from tests.support.flow import Flow, agent_legs, in_process_flow, join_queue, offers
from tests.support.hotline_api import records
from tests.support.people import PIN, add_members, add_people
from tests.support.redis_state import foreign_keys
from webhooks.outbound.callback_dialer import dial_due

SH = ZoneInfo("Asia/Shanghai")
CLOSED_AT = datetime(2030, 1, 8, 22, 0, tzinfo=SH)  # a Tuesday evening, after 21:00
OPENING = datetime(2030, 1, 9, 9, 0, tzinfo=SH)
HOURS = "\n".join(["[hours]", 'timezone = "Asia/Shanghai"', 'holiday_calendar = ""', "[hours.weekly]"]
                  + [f'{d} = ["09:00-21:00"]' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]) + "\n"
BOOK = Script(answers=(PIN + "#", "1", "1"), when_answers_run_out="hangup")  # PIN, "call me back", "this number"


@pytest.fixture
def flow(services: Any, tmp_path: Path) -> Iterator[Flow]:
    with in_process_flow(services, tmp_path, extra=HOURS, clock=RunningClock(CLOSED_AT)) as f:
        yield f


def ticket_rows(services: Any) -> dict[str, CallbackTicket]:
    with services.sessions() as db:
        return {t.phone: t for t in db.scalars(select(CallbackTicket))}


def attempts(services: Any, ticket_id: int) -> list[str | None]:
    with services.sessions() as db:
        return list(db.scalars(select(CallbackAttempt.result).where(CallbackAttempt.ticket_id == ticket_id)
                               .order_by(CallbackAttempt.n)))


def run_due(flow: Flow) -> int:
    """One dialling pass on the app's clock (waiting for a worker's pass, if one runs, to end first)."""
    return dial_due(flow.svc, wait_s=10)


def placed_to(flow: Flow) -> list[str]:
    """The members the hotline asked Twilio to call back (Calls.json POSTs answered by /voice/callback/answer; the
    agents' own legs are rung the same way), in order."""
    return [r.params["To"] for r in flow.sim.rest_requests("POST", "/Calls.json")
            if "/voice/callback/answer" in r.params.get("Url", "")]


def test_after_hours_a_premium_ticket_is_called_back_at_the_opening_before_an_earlier_standard_one(
    flow: Flow, services: Any,
) -> None:
    sim, api, clock = flow.sim, flow.api, flow.clock
    phones = add_members(services, flow.config, {"premium": 1, "standard": 1})
    standard, premium = phones["standard"][0], phones["premium"][0]

    first = sim.place_call(standard, BOOK)
    clock.advance(600)
    second = sim.place_call(premium, BOOK)

    rows = ticket_rows(services)
    for result, phone in ((first, standard), (second, premium)):
        t = rows[phone]
        spoken = " ".join(t.number)
        said = result.said()
        assert any("现在是非服务时间" in s and "1月9日09:00" in s for s in said), said
        assert any(spoken in s for s in said), f"ticket {t.number} not read out: {said}"
        # Committed before it was read out: the row exists and its creation precedes the end of the call.
        assert t.status == "scheduled" and t.reason == "after_hours" and t.due == OPENING
        assert t.member_uid is not None and result.status == "completed"
    assert rows[premium].tier == "premium" and rows[standard].tier == "standard"
    assert rows[premium].score < rows[standard].score  # booked later, called first

    # Calling again while the ticket is open books nothing new and says which ticket the caller has.
    again = sim.place_call(premium, BOOK)
    assert len(ticket_rows(services)) == 2
    assert any(" ".join(rows[premium].number) in s and "已有" in s for s in again.said())

    add_people(services, ["ann"])
    sim.add_agent("ann", answer_after=2, talk_seconds=20)
    for phone in (standard, premium):
        sim.add_phone(phone, "answer", answer_after=3)
    assert run_due(flow) == 0  # closed: nothing is dialled before the opening
    api.status("ann", "available")

    clock.set(OPENING + timedelta(seconds=5))
    assert run_due(flow) == 1  # one agent: one callback rings at a time
    assert placed_to(flow) == [premium]
    call = sim.handle(ticket_rows(services)[premium].call_sid).join(30)
    assert call.talked_with() == ["client:ann"]
    ((_, _, leg),) = [row for row in agent_legs(sim) if row[0] == call.sid]
    assert any("回拨" in text for text in sim.handle(leg).result.said())  # the agent hears it is a callback
    assert any("回拨工单" in s for s in call.said())  # the member hears who is calling and why

    assert run_due(flow) == 1
    assert placed_to(flow) == [premium, standard]
    sim.handle(ticket_rows(services)[standard].call_sid).join(30)
    rows = ticket_rows(services)
    assert rows[premium].status == rows[standard].status == "completed"
    recs = records(services)
    assert (
        recs[rows[premium].call_sid].outcome == "answered" and recs[rows[premium].call_sid].score == rows[premium].score
    )

    code, listed = api.call("GET", "/api/callbacks?status=completed", "sam")
    assert code == 200 and [t["number"] for t in listed] == [
        rows[premium].number,
        rows[standard].number,
    ]  # newest first
    assert listed[0]["history"][0]["result"] == "answered"
    assert api.stats()["callbacks"] == {"scheduled": 0, "due": 0, "overdue": 0, "completed": 2, "failed": 0}


def test_an_unanswered_callback_is_retried_then_fails_visibly(flow: Flow, services: Any) -> None:
    sim, api, clock = flow.sim, flow.api, flow.clock
    phone = add_members(services, flow.config, {"premium": 1})["premium"][0]
    sim.place_call(phone, BOOK)
    add_people(services, ["ann"])
    api.status("ann", "available")
    sim.add_phone(phone, "no-answer")
    delay = flow.config["callbacks"]["retry_delay_s"]
    assert flow.config["callbacks"]["max_attempts"] == 3 and delay == 600

    clock.set(OPENING + timedelta(seconds=1))
    for attempt in (1, 2, 3):
        assert run_due(flow) == 1, f"attempt {attempt}"
        t = ticket_rows(services)[phone]
        sim.handle(t.call_sid).join(30)
        t = ticket_rows(services)[phone]
        assert t.attempts == attempt
        if attempt < 3:
            assert t.status == "scheduled" and t.due > clock() + timedelta(seconds=delay - 30)
            assert run_due(flow) == 0  # not before the delay
            assert api.stats()["callbacks"]["scheduled"] == 1
            clock.advance(delay + 1)
    t = ticket_rows(services)[phone]
    assert t.status == "failed" and attempts(services, t.id) == ["no-answer"] * 3
    assert run_due(flow) == 0
    code, failed = api.call("GET", "/api/callbacks?status=failed", "sam")
    assert code == 200 and [f["number"] for f in failed] == [t.number]
    assert failed[0]["note"] == "3 attempts: no-answer, no-answer, no-answer" and failed[0]["phone"] != phone
    assert api.stats()["callbacks"]["failed"] == 1
    # The number has no open ticket any more: "check my ticket" says so, and a new booking is possible.
    check = sim.place_call(phone, Script(answers=(PIN + "#", "8"), when_answers_run_out="hangup"))
    assert any(flow.config.prompt("ticket_none", "zh") in s for s in check.said())


def test_a_caller_booking_from_the_hold_loop_keeps_the_place_and_is_called_in_turn(
    services: Any, tmp_path: Path
) -> None:
    with in_process_flow(services, tmp_path, announce_every_s=20) as flow:
        sim, api = flow.sim, flow.api
        phones = add_members(services, flow.config, {"premium": 1, "standard": 1})
        premium, standard = phones["premium"][0], phones["standard"][0]
        add_people(services, ["ann"])
        sim.add_agent("ann", answer_after=2, talk_seconds=20)
        # The premium member waits, presses 1 for a callback and confirms the calling number; the standard
        # member, who called earlier but has a lower tier, keeps holding.
        waiting = join_queue(sim, standard, Script(answers=(PIN + "#", "0"), when_answers_run_out="hangup"))
        booker = join_queue(sim, premium, Script(answers=(PIN + "#", "0"), when_answers_run_out="hangup",
                                                 hold_answers=("1", "1")))
        result = booker.join(30)
        t = ticket_rows(services)[premium]
        assert t.reason == "caller_request" and t.status == "scheduled"
        assert any(" ".join(t.number) in s for s in result.said())
        assert result.queue_results[-1]["QueueResult"] == "leave"
        rec = records(services)[booker.sid]
        assert rec.outcome == "to_callback" and rec.score == t.score  # the ticket keeps the queue score

        sim.add_phone(premium, "answer", answer_after=2)
        api.status("ann", "available")  # the dispatch job rings the callback first: its turn came before
        callback = sim.events.wait("call.started", timeout=30, direction="outbound-api")
        assert callback.data["to"] == premium
        assert sim.handle(callback.call_sid).join(30).talked_with() == ["client:ann"]
        waiting.join(60)
        assert waiting.result.talked_with() == ["client:ann"]
        # ann took the callback, then the waiting caller
        assert offers(sim) == [(callback.call_sid, "ann"), (waiting.sid, "ann")]
        assert ticket_rows(services)[premium].status == "completed"
        # Menu, PIN, queue, hold loop, booking, callback, dispatch: every key left is named in core/keys.py
        assert foreign_keys(services.redis) == []
