"""Callback tickets and attempts on the real database: one open ticket per number, the claim that makes a
double dial impossible, retries and failure, the supervisor's figures, and the ordering and pacing rules."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from callqueue.callbacks import attempts, tickets
from callqueue.callbacks.tickets import CallbackTicket, Ticket

T0 = datetime(2030, 1, 9, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
PHONE = "+8613700000001"


def book(db: Any, phone: str = PHONE, *, score: float = 100.0, due: datetime = T0, sid: str | None = None,
         tier: str = "premium", max_attempts: int = 3) -> tickets.Created:
    created = tickets.create(db, phone=phone, tier=tier, lang="zh", reason="after_hours", score=score, due=due,
                             now=due - timedelta(hours=10), max_attempts=max_attempts, source_call_sid=sid)
    db.commit()
    return created


def test_one_open_ticket_per_number_and_a_retried_booking_is_the_same_ticket(db: Any) -> None:
    first = book(db, sid="CA1")
    assert first.new and first.own and len(first.ticket.number) == 8
    assert book(db, sid="CA1") == tickets.Created(first.ticket, False, True)  # the same call asking again
    other = book(db, sid="CA2")  # another call from the number: told about the open ticket
    assert not other.new and not other.own and other.ticket.number == first.ticket.number
    assert tickets.open_for_phone(db, PHONE) == first.ticket
    cancelled, changed = tickets.cancel(db, first.ticket.number, T0, by="sam")
    assert changed and cancelled.status == "cancelled"
    assert tickets.cancel(db, first.ticket.number, T0, by="sam") == (cancelled, False)  # once only
    db.commit()
    again = book(db, sid="CA3")  # closed tickets do not block a new one
    assert again.new and again.ticket.number != first.ticket.number


def test_the_database_allows_one_open_ticket_per_number_under_racing_bookings(services: Any) -> None:
    results: list[tickets.Created] = []
    start = threading.Barrier(4)

    def racer(i: int) -> None:
        with services.sessions() as db:
            start.wait()
            results.append(book(db, sid=f"CA{i}"))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4 and sum(r.new for r in results) == 1
    assert len({r.ticket.number for r in results}) == 1


def test_of_racing_claims_exactly_one_wins(services: Any, db: Any) -> None:
    t = book(db).ticket
    won: list[attempts.Claimed | None] = []
    start = threading.Barrier(4)

    def racer() -> None:
        with services.sessions() as s:
            start.wait()
            claimed = attempts.claim(s, t.id, T0)
            s.commit()
            won.append(claimed)

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert len(won) == 4 and [c.n for c in won if c is not None] == [1]
    assert attempts.claim(db, t.id, T0) is None  # dialing already
    assert db.get(CallbackTicket, t.id).status == "dialing"


def test_a_claim_waits_for_the_due_time(db: Any) -> None:
    t = book(db, due=T0 + timedelta(minutes=5)).ticket
    assert attempts.claim(db, t.id, T0) is None
    assert attempts.claim(db, t.id, T0 + timedelta(minutes=5)) is not None


def test_unanswered_attempts_retry_after_the_delay_then_fail_with_their_history(db: Any) -> None:
    t = book(db).ticket
    now = T0
    for n, result in enumerate(("busy", "no-answer", "failed"), start=1):
        c = attempts.claim(db, t.id, now)
        assert c is not None and c.n == n
        attempts.placed(db, t.id, n, f"CA{n}")
        after = attempts.ended(db, t.id, n, result, now + timedelta(seconds=30), retry_delay_s=600)
        assert after.attempts == n
        if n < 3:
            assert after.status == "scheduled" and after.due == now + timedelta(seconds=630)
            assert attempts.ended(db, t.id, n, result, now + timedelta(seconds=40), 600) == after  # a repeat: no change
            now = after.due
        db.commit()
    assert after.status == "failed" and after.note == "3 attempts: busy, no-answer, failed"
    assert [h["result"] for h in tickets.history(db, t.id)] == ["busy", "no-answer", "failed"]


def test_an_answered_attempt_completes_the_ticket_and_a_late_status_of_an_old_attempt_changes_nothing(db: Any) -> None:
    t = book(db).ticket
    attempts.claim(db, t.id, T0)
    attempts.ended(db, t.id, 1, "no-answer", T0, retry_delay_s=0)
    attempts.claim(db, t.id, T0)
    assert attempts.answered(db, t.id, 1, "CA-old", T0) is None  # attempt 1 is over
    assert attempts.answered(db, t.id, 2, "CA2", T0).status == "connected"
    assert attempts.ended(db, t.id, 1, "no-answer", T0, 0).status == "connected"
    done = attempts.ended(db, t.id, 2, "completed", T0 + timedelta(minutes=3), 0)
    assert done.status == "completed" and done.closed == T0 + timedelta(minutes=3)


def test_outages_and_lost_attempts_do_not_use_up_attempts_but_refusals_do(db: Any) -> None:
    t = book(db, max_attempts=2).ticket
    attempts.claim(db, t.id, T0)
    assert attempts.place_failed(db, t.id, 1, T0, 60, "Twilio did not answer", permanent=False).status == "scheduled"
    attempts.claim(db, t.id, T0 + timedelta(seconds=60))
    assert attempts.lost(db, t.id, 2, T0 + timedelta(seconds=90)).status == "scheduled"
    attempts.claim(db, t.id, T0 + timedelta(seconds=90))
    after = attempts.place_failed(db, t.id, 3, T0 + timedelta(seconds=90), 60, "21215 not allowed", permanent=True)
    assert after.status == "scheduled" and after.attempts == 3  # one counted so far: a retry is left
    attempts.claim(db, t.id, T0 + timedelta(seconds=150))
    assert attempts.ended(db, t.id, 4, "busy", T0 + timedelta(seconds=160), 60).status == "failed"


def test_stale_dialing_tickets_are_found_for_recovery(db: Any) -> None:
    t = book(db).ticket
    attempts.claim(db, t.id, T0)
    assert attempts.stale_dialing(db, T0 + timedelta(seconds=100), stale_after_s=180) == []
    assert [s.id for s in attempts.stale_dialing(db, T0 + timedelta(seconds=200), stale_after_s=180)] == [t.id]


def test_supervisor_figures(db: Any) -> None:
    book(db, "+8613700000001", due=T0 + timedelta(minutes=10))  # scheduled, not yet due
    book(db, "+8613700000002", due=T0 - timedelta(minutes=1))  # due
    book(db, "+8613700000003", due=T0 - timedelta(hours=1))  # overdue (900 s)
    done = book(db, "+8613700000004", due=T0 - timedelta(hours=2)).ticket
    attempts.claim(db, done.id, T0 - timedelta(hours=2))
    attempts.answered(db, done.id, 1, "CA", T0 - timedelta(hours=2))
    attempts.ended(db, done.id, 1, "completed", T0 - timedelta(minutes=90), 0)
    db.commit()
    day_start = datetime(2030, 1, 8, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    assert tickets.counts(db, T0, day_start, 900) == {
        "scheduled": 1,
        "due": 1,
        "overdue": 1,
        "completed": 1,
        "failed": 0,
    }


def ticket(i: int, score: float, tier: str = "premium") -> Ticket:
    return Ticket(
        i, str(i), "scheduled", tier, PHONE, "zh", "after_hours", score, None, None, T0, T0, 0, 3, None, None, None
    )


def test_pacing_dials_only_what_free_agents_can_take_in_score_order() -> None:
    due = [ticket(1, 10), ticket(2, 20, "standard"), ticket(3, 30)]
    ahead = {1: 0, 2: 1, 3: 1}

    def plan(avail: int, ringing: int, open_: Any = lambda t: True) -> list[int]:
        chosen = attempts.plan(due, available_agents=avail, ringing=ringing, callers_ahead=lambda t: ahead[t.id],
                                is_open=open_)
        return [t.id for t in chosen]

    assert plan(0, 0) == []
    assert plan(1, 0) == [1]
    assert plan(3, 0) == [1, 2]  # ticket 2 has a caller and ticket 1 ahead: 2 + 0 < 3; ticket 3 needs a 4th agent
    assert plan(4, 0) == [1, 2, 3]
    assert plan(4, 2) == [1] and plan(5, 2) == [1, 2]  # two callbacks already ringing hold two agents
    assert plan(4, 0, lambda t: t.tier != "standard") == [1, 3]  # a tier still closed waits for its opening


def test_after_hours_tickets_are_ordered_as_if_called_at_the_opening() -> None:
    opens = T0
    standard_early = attempts.after_hours_score(opens, opens - timedelta(hours=12), boost_s=0)
    standard_late = attempts.after_hours_score(opens, opens - timedelta(hours=1), boost_s=0)
    premium_late = attempts.after_hours_score(opens, opens - timedelta(minutes=1), boost_s=600)
    assert premium_late < standard_early < standard_late
    live_standard_at_opening = opens.timestamp() + 1  # a live call just after the opening, no boost
    assert standard_late < live_standard_at_opening
    live_premium_late = opens.timestamp() + 700 - 600  # a premium caller 700 s after the opening
    assert standard_late < live_premium_late  # the ceiling: the boost does not let them pass forever
