"""Callback tickets for supervisors: /api/callbacks (list, cancel), the "callbacks" block of /api/stats, and
`hotline callbacks list|run-due`. Fixed instants on the app's clock. (A little over 300 lines: the API and the
command show the same tickets, made by one set of helpers.)"""
from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from callqueue.agents.accounts import add_agent
from callqueue.callbacks import attempts, tickets
from callqueue.callbacks.tickets import CallbackTicket
from hotline.app import create_app
from hotline.cli.callbacks import callbacks as callbacks_cli

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=SH)  # the app's clock: a Tuesday noon
UTC_NOW = NOW.astimezone(UTC)


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


@pytest.fixture
def svc(services: Any) -> Any:
    """The shared services with the clock standing at NOW."""
    return dataclasses.replace(services, clock=lambda: NOW, extras={"jobs": services.jobs()})


@pytest.fixture
def api(svc: Any) -> Any:
    return create_app(services=svc).test_client()


@pytest.fixture
def people(db: Any) -> dict[str, dict[str, str]]:
    add_agent(
        db, login="ann", name="Ann", password="ann-pass-1", role="agent", client_identity="ann", phone=None, now=UTC_NOW
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password="sam-pass-1",
        role="supervisor",
        client_identity="sam",
        phone=None,
        now=UTC_NOW,
    )
    add_agent(
        db,
        login="sue",
        name="Sue",
        password="sue-pass-1",
        role="supervisor",
        client_identity="sue",
        phone=None,
        now=UTC_NOW,
    )
    db.commit()
    return {
        "agent": basic("ann", "ann-pass-1"),
        "supervisor": basic("sam", "sam-pass-1"),
        "other": basic("sue", "sue-pass-1"),
    }


def phone(i: int) -> str:
    return f"+86138000000{i:02d}"


def masked(i: int) -> str:
    return f"+86138****00{i:02d}"


def book(db: Any, i: int, due: datetime, *, booked: datetime | None = None, score: float = 0.0, tier: str = "standard",
         max_attempts: int = 3) -> tickets.Ticket:
    created = tickets.create(db, phone=phone(i), tier=tier, lang="zh", reason="after_hours", score=score, due=due,
                             now=booked or due - timedelta(hours=12), max_attempts=max_attempts, member_uid=f"{i}")
    db.flush()
    assert created.new
    return created.ticket


def complete(db: Any, i: int, at: datetime) -> tickets.Ticket:
    """A ticket called back and answered: completed at `at`."""
    t = book(db, i, at - timedelta(minutes=3))
    c = attempts.claim(db, t.id, at - timedelta(minutes=2))
    assert c is not None
    attempts.placed(db, t.id, c.n, "CA" + f"{i:02d}" * 16)
    assert attempts.answered(db, t.id, c.n, "CA" + f"{i:02d}" * 16, at - timedelta(minutes=1)) is not None
    done = attempts.ended(db, t.id, c.n, "completed", at, retry_delay_s=600)
    assert done is not None and done.status == "completed"
    return done


def fail(db: Any, i: int, at: datetime) -> tickets.Ticket:
    """A one-attempt ticket that rang out: failed at `at`."""
    t = book(db, i, at - timedelta(minutes=3), max_attempts=1)
    c = attempts.claim(db, t.id, at - timedelta(minutes=2))
    assert c is not None
    done = attempts.ended(db, t.id, c.n, "no-answer", at, retry_delay_s=600)
    assert done is not None and done.status == "failed"
    return done


def row(db: Any, number: str) -> CallbackTicket:
    db.expire_all()
    found = db.query(CallbackTicket).filter_by(number=number).one()
    return found


# --- /api/callbacks -------------------------------------------------------------------------------------------

def test_callbacks_need_a_supervisor(api: Any, people: Any, db: Any) -> None:
    t = book(db, 1, NOW + timedelta(hours=1))
    db.commit()
    assert api.get("/api/callbacks").status_code == 401
    assert api.get("/api/callbacks", headers=basic("sam", "wrong")).status_code == 401
    assert api.get("/api/callbacks", headers=people["agent"]).status_code == 403
    assert api.post(f"/api/callbacks/{t.number}/cancel").status_code == 401
    assert api.post(f"/api/callbacks/{t.number}/cancel", headers=people["agent"]).status_code == 403
    assert row(db, t.number).status == "scheduled"  # an agent cannot cancel
    assert api.get("/api/callbacks", headers=people["supervisor"]).status_code == 200


@pytest.mark.parametrize("query, reason", [
    ("status=pending", "status: must be one of"), ("status=SCHEDULED", "status: must be one of"),
    ("limit=0", "limit:"), ("limit=1001", "limit:"), ("limit=ten", "limit:"),
])
def test_bad_status_or_limit_is_400(api: Any, people: Any, query: str, reason: str) -> None:
    resp = api.get(f"/api/callbacks?{query}", headers=people["supervisor"])
    assert resp.status_code == 400 and reason in resp.json["error"]


def test_listing_shows_masked_numbers_and_the_attempt_history(api: Any, people: Any, db: Any) -> None:
    later = book(db, 1, NOW + timedelta(hours=1), score=30.0)
    first = book(db, 2, NOW - timedelta(minutes=5), score=10.0)
    done = complete(db, 3, NOW - timedelta(minutes=10))
    db.commit()

    rows = api.get("/api/callbacks", headers=people["supervisor"]).json
    by_number = {r["number"]: r for r in rows}
    assert set(by_number) == {later.number, first.number, done.number}
    assert {r["phone"] for r in rows} == {masked(1), masked(2), masked(3)}
    assert not any(phone(i) in json.dumps(rows) for i in (1, 2, 3))  # whole numbers never leave the API
    shown = by_number[done.number]
    assert shown["status"] == "completed" and shown["attempts"] == 1 and shown["member_uid"] == "3"
    [attempt] = shown["history"]
    assert attempt["n"] == 1 and attempt["result"] == "answered" and attempt["call_sid"] == "CA" + "03" * 16
    assert datetime.fromisoformat(attempt["ended"]) == (NOW - timedelta(minutes=10)).astimezone(UTC)
    assert by_number[later.number]["history"] == [] and by_number[later.number]["closed"] is None
    assert datetime.fromisoformat(by_number[later.number]["due"]) == (NOW + timedelta(hours=1)).astimezone(UTC)

    scheduled = api.get("/api/callbacks?status=scheduled", headers=people["supervisor"]).json
    assert [r["number"] for r in scheduled] == [first.number, later.number]  # dialling (score) order
    assert [r["number"] for r in api.get("/api/callbacks?status=completed", headers=people["supervisor"]).json] == [
        done.number
    ]
    assert api.get("/api/callbacks?status=failed", headers=people["supervisor"]).json == []
    assert len(api.get("/api/callbacks?limit=1", headers=people["supervisor"]).json) == 1


# --- cancel ---------------------------------------------------------------------------------------------------

def test_cancel_unknown_number_is_404(api: Any, people: Any, db: Any) -> None:
    book(db, 1, NOW + timedelta(hours=1))
    db.commit()
    for number in ("99999999", "abc", "1" * 13):
        resp = api.post(f"/api/callbacks/{number}/cancel", headers=people["supervisor"])
        assert resp.status_code == 404 and resp.json["error"] == "no such ticket", number


def test_cancel_a_scheduled_ticket(api: Any, people: Any, db: Any) -> None:
    t = book(db, 1, NOW + timedelta(hours=1))
    db.commit()
    resp = api.post(f"/api/callbacks/{t.number}/cancel", headers=people["supervisor"])
    assert resp.status_code == 200
    body = resp.json
    assert body["status"] == "cancelled" and body["number"] == t.number and body["phone"] == masked(1)
    assert body["note"] == "cancelled by sam"
    stored = row(db, t.number)
    assert stored.status == "cancelled" and stored.closed == UTC_NOW and stored.note == "cancelled by sam"
    assert tickets.open_for_phone(db, phone(1)) is None  # the number may book again


def test_cancel_a_ringing_ticket(api: Any, people: Any, db: Any) -> None:
    t = book(db, 1, NOW - timedelta(minutes=1))
    assert attempts.claim(db, t.id, NOW) is not None
    db.commit()
    resp = api.post(f"/api/callbacks/{t.number}/cancel", headers=people["supervisor"])
    assert resp.status_code == 200 and row(db, t.number).status == "cancelled"


def test_cancel_a_completed_or_connected_ticket_is_409_and_changes_nothing(api: Any, people: Any, db: Any) -> None:
    done = complete(db, 1, NOW - timedelta(minutes=10))
    talking = book(db, 2, NOW - timedelta(minutes=2))
    c = attempts.claim(db, talking.id, NOW - timedelta(minutes=1))
    assert c is not None and attempts.answered(db, talking.id, c.n, "CA" + "2" * 32, NOW) is not None
    db.commit()
    for t, status in ((done, "completed"), (talking, "connected")):
        resp = api.post(f"/api/callbacks/{t.number}/cancel", headers=people["supervisor"])
        assert resp.status_code == 409 and status in resp.json["error"]
        stored = row(db, t.number)
        assert stored.status == status and stored.note is None


def test_cancelling_an_already_cancelled_ticket_is_409_whoever_asks(api: Any, people: Any, db: Any) -> None:
    """The API's contract (docstring and OpenAPI): 409 when the ticket is already closed. A cancelled ticket is
    closed."""
    t = book(db, 1, NOW + timedelta(hours=1))
    db.commit()
    assert api.post(f"/api/callbacks/{t.number}/cancel", headers=people["supervisor"]).status_code == 200
    assert api.post(f"/api/callbacks/{t.number}/cancel", headers=people["other"]).status_code == 409
    again = api.post(f"/api/callbacks/{t.number}/cancel", headers=people["supervisor"])  # the same supervisor again
    assert again.status_code == 409


# --- /api/stats -----------------------------------------------------------------------------------------------

def test_stats_count_callback_tickets(api: Any, people: Any, db: Any) -> None:
    empty = api.get("/api/stats", headers=people["supervisor"]).json["callbacks"]
    assert empty == {"scheduled": 0, "due": 0, "overdue": 0, "completed": 0, "failed": 0}

    book(db, 1, NOW + timedelta(hours=1))               # scheduled: not yet due
    book(db, 2, NOW + timedelta(minutes=1))             # scheduled
    book(db, 3, NOW - timedelta(minutes=5))             # due (within overdue_after_s = 900 s)
    book(db, 4, NOW - timedelta(hours=1))               # overdue
    complete(db, 5, NOW - timedelta(minutes=10))        # completed today
    complete(db, 6, NOW - timedelta(days=1))            # completed yesterday: not today's figure
    fail(db, 7, NOW - timedelta(minutes=20))            # failed today
    cancelled = book(db, 8, NOW - timedelta(hours=2))   # cancelled: counted nowhere
    tickets.cancel(db, cancelled.number, NOW - timedelta(hours=1), by="sam")
    db.commit()

    figures = api.get("/api/stats", headers=people["supervisor"]).json["callbacks"]
    assert figures == {"scheduled": 2, "due": 1, "overdue": 1, "completed": 1, "failed": 1}
    assert api.get("/api/stats?window=15m", headers=people["supervisor"]).json["callbacks"] == figures


def test_stats_today_starts_at_local_midnight(api: Any, people: Any, db: Any) -> None:
    complete(db, 1, datetime(2026, 11, 24, 0, 30, tzinfo=SH))   # today in Shanghai, still "yesterday" in UTC
    complete(db, 2, datetime(2026, 11, 23, 23, 30, tzinfo=SH))  # yesterday in Shanghai
    db.commit()
    assert api.get("/api/stats", headers=people["supervisor"]).json["callbacks"]["completed"] == 1


# --- hotline callbacks list | run-due -------------------------------------------------------------------------

def cli(svc: Any, *args: str) -> Any:
    return CliRunner().invoke(callbacks_cli, list(args), obj=svc)


def test_cli_list_as_a_table(svc: Any, db: Any) -> None:
    t = book(db, 1, datetime(2026, 11, 25, 9, 0, tzinfo=SH), tier="premium")
    done = complete(db, 2, NOW - timedelta(minutes=10))
    db.commit()
    result = cli(svc, "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["number", "status", "tier", "reason", "phone"]
    assert lines[-1] == "2 ticket(s)"
    [mine] = [ln for ln in lines if ln.startswith(t.number)]
    assert mine.split() == [t.number, "scheduled", "premium", "after_hours", masked(1), "2026-11-25", "01:00:00", "0/3"]
    assert phone(1) not in result.output and phone(2) not in result.output
    only = cli(svc, "list", "--status", "completed")
    assert only.exit_code == 0 and only.output.splitlines()[1].startswith(done.number)
    assert only.output.splitlines()[-1] == "1 ticket(s)"
    assert cli(svc, "list", "--status", "failed").output.splitlines()[-1] == "0 ticket(s)"
    assert cli(svc, "list", "--status", "pending").exit_code == 2


def test_cli_list_as_json_lines(svc: Any, db: Any) -> None:
    t = book(db, 1, datetime(2026, 11, 25, 9, 0, tzinfo=SH))
    complete(db, 2, NOW - timedelta(minutes=10))
    db.commit()
    result = cli(svc, "list", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["number"] for r in rows} >= {t.number} and len(rows) == 2
    assert {r["phone"] for r in rows} == {masked(1), masked(2)}
    mine = next(r for r in rows if r["number"] == t.number)
    assert (
        mine["status"] == "scheduled" and mine["due"] == "2026-11-25T01:00:00+00:00" and mine["reason"] == "after_hours"
    )
    assert cli(svc, "list", "--json", "--status", "cancelled").output.strip() == ""


def test_cli_run_due_with_nothing_due_places_no_call(svc: Any, db: Any) -> None:
    t = book(db, 1, NOW + timedelta(hours=1))
    db.commit()
    result = cli(svc, "run-due")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "recovered 0, placed 0 callback call(s)"
    stored = row(db, t.number)
    assert stored.status == "scheduled" and stored.attempts == 0


def test_cli_run_due_with_no_free_agent_places_no_call(svc: Any, db: Any) -> None:
    t = book(db, 1, NOW - timedelta(minutes=5))  # due, but nobody is available to take it
    db.commit()
    result = cli(svc, "run-due")
    assert result.exit_code == 0, result.output
    assert "placed 0 callback call(s)" in result.output
    stored = row(db, t.number)
    assert stored.status == "scheduled" and stored.attempts == 0
