"""Tickets booked while Redis was down (reason "outage"), parked while their caller holds for an agent.

A verified premium caller held for an agent gets a ticket as a safety net, parked (due only when the call
ends unanswered) so that they are not rung while they hold; `settle_outage_tickets` cancels it once they
are answered and makes it due at once when they hang up or leave. Functions take a session and flush.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callqueue import clock, records
from callqueue.callbacks.tickets import CallbackTicket
from callqueue.records import IN_PROGRESS, CallRecord
from callqueue.updates import rows_matched

MAX_CALL_S = 4 * 3600  # Twilio ends a call after four hours: a record queued earlier is no live caller
PARK_S = MAX_CALL_S    # how far an outage ticket is parked while its caller holds
OUTAGE = "outage"
PARK_NOTE = "booked during an outage while the caller held for an agent: due if the call ends unanswered"


def park_due(now: datetime) -> datetime:
    """The due time of an outage ticket whose caller holds for an agent."""
    return now + timedelta(seconds=PARK_S)


def note_parked(session: Session, ticket_id: int) -> None:
    """Say on the ticket why it is due so late (the console shows the note)."""
    session.execute(update(CallbackTicket).where(CallbackTicket.id == ticket_id, CallbackTicket.note.is_(None))
                    .values(note=PARK_NOTE).execution_options(synchronize_session=False))


def settle_outage_ticket(session: Session, t: CallbackTicket, rec: CallRecord | None, now: datetime) -> str | None:
    """A parked outage ticket against its call: "cancelled" (answered), "due" (ended unanswered), None (holding)."""
    at = clock.canonical(now)
    if rec is not None and rec.outcome == "answered":
        done = rows_matched(
            session,
            update(CallbackTicket).where(CallbackTicket.id == t.id, CallbackTicket.status == "scheduled")
            .values(status="cancelled", closed=at, note=f"answered while holding (call {rec.call_sid})")
            .execution_options(synchronize_session=False))
        return "cancelled" if done else None
    holding = (rec is not None and rec.outcome == IN_PROGRESS and rec.ended is None and rec.queued is not None
               and rec.queued > at - timedelta(seconds=MAX_CALL_S))
    if holding:
        return None
    done = rows_matched(
        session,
        update(CallbackTicket).where(CallbackTicket.id == t.id, CallbackTicket.status == "scheduled",
                                     CallbackTicket.due > at)
        .values(due=at, note="the caller left without an agent: call them back")
        .execution_options(synchronize_session=False))
    return "due" if done else None


def parked_tickets(session: Session, now: datetime, call_sid: str | None = None) -> list[CallbackTicket]:
    """Outage tickets still parked (scheduled, due later than now), optionally the one call `call_sid` booked."""
    T = CallbackTicket
    q = select(T).where(T.status == "scheduled", T.reason == OUTAGE, T.due > clock.canonical(now),
                        T.source_call_sid.is_not(None))
    if call_sid is not None:
        q = q.where(T.source_call_sid == call_sid)
    return list(session.scalars(q.order_by(T.score, T.id)))


def settle_outage_tickets(session: Session, now: datetime, call_sid: str | None = None) -> dict[str, int]:
    """Every parked outage ticket (or the one of `call_sid`) against its call record."""
    out = {"outage_tickets_cancelled": 0, "outage_tickets_due": 0}
    for t in parked_tickets(session, now, call_sid):
        result = settle_outage_ticket(session, t, records.get(session, t.source_call_sid or ""), now)
        if result == "cancelled":
            out["outage_tickets_cancelled"] += 1
        elif result == "due":
            out["outage_tickets_due"] += 1
    return out
