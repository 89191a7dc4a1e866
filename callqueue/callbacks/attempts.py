"""Calling members back: which tickets are due, whose turn it is, and how each attempt ends.

Order: a ticket keeps a queue score. In hours it is the score the caller had in the queue, so
they are called when their turn would have come. After hours everyone is treated as calling at
the moment the line opens for their tier: score = opening − boost(tier), with the booking time
kept only as a tie-break within a tier (`after_hours_score`). A premium member's overnight
ticket is therefore called before a standard member's earlier one, and the ceiling still holds:
callers arriving after the opening beat a ticket once they have waited longer than its boost.

Pacing: a ticket is dialled only when the callers ahead of it in the queue, the callbacks
already ringing and the tickets chosen before it leave an available agent for it (`plan`).

No double dial: `claim` moves a ticket from scheduled to dialing with one conditional UPDATE,
so of any number of racing workers exactly one gets it, whatever happens to Redis.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from callqueue import clock
from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket, Ticket, view
from callqueue.updates import rows_matched

# Attempt results that reached the member's phone and count towards max_attempts.
COUNTED = ("busy", "no-answer", "failed", "canceled", "answered", "rejected")
UNANSWERED = ("busy", "no-answer", "failed", "canceled")
TIE_BREAK = 1e-6  # seconds of score per second booked before the opening: keeps booking order within a tier


def after_hours_score(opens_at: datetime, booked: datetime, boost_s: float) -> float:
    """The score of a ticket booked while closed: as if called at the opening, earlier bookings first within a tier."""
    opens = clock.to_epoch(opens_at)
    return opens - boost_s - max(0.0, opens - clock.to_epoch(booked)) * TIE_BREAK


def due_tickets(session: Session, now: datetime, limit: int = 100) -> list[Ticket]:
    """Scheduled tickets whose due time has come, in score order (best first)."""
    T = CallbackTicket
    rows = session.scalars(
        select(T).where(T.status == "scheduled", T.due <= clock.canonical(now)).order_by(T.score, T.id).limit(limit)
    )
    return [view(t) for t in rows]


def ringing_count(session: Session) -> int:
    """Callbacks placed and not yet answered (they will need an agent each)."""
    return int(session.scalar(select(func.count()).where(CallbackTicket.status == "dialing")) or 0)


def plan(
    due: Sequence[Ticket], *, available_agents: int, ringing: int, callers_ahead: Callable[[Ticket], int],
    is_open: Callable[[Ticket], bool],
) -> list[Ticket]:
    """The due tickets to dial now, best first: each needs an agent free after everyone ahead of it."""
    chosen: list[Ticket] = []
    for t in due:
        if not is_open(t):
            continue  # its tier is closed now: it waits for its own opening
        if callers_ahead(t) + ringing + len(chosen) >= available_agents:
            break  # later tickets have more callers ahead: none of them fits either
        chosen.append(t)
    return chosen


@dataclass(frozen=True)
class Claimed:
    """A ticket this worker is dialling: attempt `n` of it."""

    ticket: Ticket
    n: int


def claim(session: Session, ticket_id: int, now: datetime) -> Claimed | None:
    """Take a due scheduled ticket for dialling (attempt n); None if another worker took it or it changed."""
    T = CallbackTicket
    at = clock.canonical(now)
    claimed = rows_matched(
        session,
        update(T).where(T.id == ticket_id, T.status == "scheduled", T.due <= at)
        .values(status="dialing", attempts=T.attempts + 1, dialing_since=at, call_sid=None)
        .execution_options(synchronize_session=False),
    )
    if claimed != 1:
        return None
    row = session.get(T, ticket_id, populate_existing=True)
    assert row is not None
    session.add(CallbackAttempt(ticket_id=ticket_id, n=row.attempts, started=at))
    session.flush()
    return Claimed(view(row), row.attempts)


def placed(session: Session, ticket_id: int, n: int, call_sid: str) -> None:
    """Twilio accepted attempt n's call: remember its CallSid."""
    # Ticket row first, then the attempt, as everywhere: the answer webhook may be running on them already.
    row = session.get(CallbackTicket, ticket_id, with_for_update=True)
    if row is not None and row.attempts == n:
        row.call_sid = call_sid
    _attempt(session, ticket_id, n).call_sid = call_sid
    session.flush()


def answered(session: Session, ticket_id: int, n: int, call_sid: str, now: datetime) -> Ticket | None:
    """The member picked up attempt n: the ticket is connected. None if it is no longer this attempt's to take."""
    row = session.get(CallbackTicket, ticket_id, with_for_update=True)
    if row is None or row.attempts != n or row.status not in ("dialing", "connected"):
        return None
    row.status, row.call_sid = "connected", call_sid
    a = _attempt(session, ticket_id, n)
    a.call_sid, a.result = call_sid, "answered"
    session.flush()
    return view(row)


def ended(
    session: Session, ticket_id: int, n: int, call_status: str, now: datetime, retry_delay_s: float,
) -> Ticket | None:
    """Attempt n's call is over (Twilio's final CallStatus). Answered: completed. Not answered: retry or fail.

    Idempotent and order-tolerant: only the ticket's current attempt moves it; a repeat changes nothing.
    """
    row = session.get(CallbackTicket, ticket_id, with_for_update=True)
    if row is None:
        return None
    a = _attempt(session, ticket_id, n)
    at = clock.canonical(now)
    a.ended = a.ended or at
    if a.result is None:
        a.result = call_status if call_status in UNANSWERED else "failed"
    if row.attempts != n or row.status not in ("dialing", "connected"):
        session.flush()
        return view(row)
    if a.result == "answered":
        row.status, row.closed = "completed", at
    else:
        _retry_or_fail(session, row, at, retry_delay_s)
    row.dialing_since = None
    session.flush()
    return view(row)


def place_failed(
    session: Session, ticket_id: int, n: int, now: datetime, retry_delay_s: float, error: str, permanent: bool,
) -> Ticket | None:
    """Twilio did not place attempt n: retried after the delay. A refusal of the request itself (`permanent`,
    e.g. a number Twilio will not call) counts towards max_attempts; an outage does not, so it loses no ticket."""
    return _close_attempt(session, ticket_id, n, now, "rejected" if permanent else "error", retry_delay_s, note=error)


def lost(session: Session, ticket_id: int, n: int, now: datetime) -> Ticket | None:
    """Attempt n never reached Twilio (the worker died first): scheduled again at once, not counted."""
    return _close_attempt(session, ticket_id, n, now, "lost", 0.0)


def stale_dialing(session: Session, now: datetime, stale_after_s: float, limit: int = 100) -> list[Ticket]:
    """Tickets dialing for longer than any ring with no word from Twilio (a crash between claim and call)."""
    T = CallbackTicket
    cutoff = clock.canonical(now) - timedelta(seconds=stale_after_s)
    return [view(t) for t in session.scalars(
        select(T).where(T.status == "dialing", T.dialing_since <= cutoff).order_by(T.dialing_since).limit(limit))]


def _close_attempt(
    session: Session, ticket_id: int, n: int, now: datetime, result: str, retry_delay_s: float, note: str | None = None,
) -> Ticket | None:
    row = session.get(CallbackTicket, ticket_id, with_for_update=True)
    if row is None:
        return None
    a = _attempt(session, ticket_id, n)
    at = clock.canonical(now)
    if a.result is None:
        a.result, a.ended = result, at
    if row.attempts == n and row.status == "dialing":
        _retry_or_fail(session, row, at, retry_delay_s, note)
        row.dialing_since = None
    session.flush()
    return view(row)


def _retry_or_fail(
    session: Session, row: CallbackTicket, at: datetime, retry_delay_s: float, note: str | None = None
) -> None:
    """After an unanswered attempt: scheduled again after the delay, or failed once max_attempts rang out."""
    session.flush()  # the attempt's result must be visible to the count below
    counted = int(session.scalar(select(func.count()).where(
        CallbackAttempt.ticket_id == row.id, CallbackAttempt.result.in_(COUNTED))) or 0)
    if counted >= row.max_attempts:
        results = session.scalars(select(CallbackAttempt.result).where(CallbackAttempt.ticket_id == row.id)
                                  .order_by(CallbackAttempt.n))
        row.status, row.closed = "failed", at
        row.note = f"{counted} attempts: " + ", ".join(r or "?" for r in results)
        return
    row.status = "scheduled"
    row.due = at + timedelta(seconds=retry_delay_s)
    if note:
        row.note = note


def _attempt(session: Session, ticket_id: int, n: int) -> CallbackAttempt:
    a = session.scalar(select(CallbackAttempt).where(CallbackAttempt.ticket_id == ticket_id, CallbackAttempt.n == n))
    if a is None:
        raise LookupError(f"ticket {ticket_id} has no attempt {n}")
    return a
