"""The call record: one SQL row per call with every timestamp the statistics need, written idempotently.

Twilio retries webhooks and does not promise their order (the status callback `completed` may
come before the Enqueue action). So every function here finds or creates the row by CallSid,
fills only what is still empty, and never replaces a final outcome: the first event that
settles how the call left the queue wins, later ones only add what they alone know
(queue result, dial status, end time). Functions flush, never commit: the caller owns the transaction.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, Text, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from callqueue import clock
from callqueue.clock import Now
from callqueue.updates import rows_matched
from core.db import Base, UTCDateTime

IN_PROGRESS = "in_progress"
FINAL_OUTCOMES = ("answered", "abandoned", "short_abandoned", "to_callback", "failed", "ivr", "removed")
# Call statuses Twilio reports for calls that never connected to us properly.
FAILED_STATUSES = ("busy", "failed", "no-answer", "canceled")


class CallRecord(Base):
    """One call: who, which tier and category, and when it arrived, queued, was offered, answered, left, ended."""

    __tablename__ = "call_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str | None] = mapped_column(String(32), default=None, index=True)  # the agent's "last calls"
    tier: Mapped[str | None] = mapped_column(String(32), default=None)
    category: Mapped[str | None] = mapped_column(String(40), default=None)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    member_uid: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    agent_login: Mapped[str | None] = mapped_column(String(64), default=None, index=True)  # agents' own figures
    score: Mapped[float | None] = mapped_column(Float, default=None)  # queue score: a callback keeps the place
    offers: Mapped[int] = mapped_column(Integer, default=0)  # agents rung for this caller
    arrived: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)  # a day's export
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    queued: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)
    offered: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answered: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)
    left_queue: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)
    ended: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    waited_s: Mapped[float | None] = mapped_column(Float, default=None)  # queued → answered or left
    outcome: Mapped[str] = mapped_column(String(20), default=IN_PROGRESS, index=True)
    queue_result: Mapped[str | None] = mapped_column(String(32), default=None)
    dial_status: Mapped[str | None] = mapped_column(String(20), default=None)
    call_status: Mapped[str | None] = mapped_column(String(20), default=None)
    disposition: Mapped[str | None] = mapped_column(String(40), default=None)  # the agent's wrap-up
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    wrapped_up: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)  # first wrap-up saved: handle time
    # How the connected call went (callqueue/handling.py): the caller's holds, the agents in turn, transfers.
    hold_count: Mapped[int] = mapped_column(Integer, default=0)
    hold_s: Mapped[float] = mapped_column(Float, default=0.0)
    agents: Mapped[str | None] = mapped_column(String(255), default=None)  # logins in the order they took the call
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    wrap_up_expired: Mapped[bool] = mapped_column(Boolean, default=False)  # the wrap-up ran out with no disposition


def get(session: Session, call_sid: str) -> CallRecord | None:
    """The record of `call_sid`, or None."""
    return session.scalar(select(CallRecord).where(CallRecord.call_sid == call_sid))


def ensure(session: Session, call_sid: str) -> CallRecord:
    """Find or create the row; two processes creating it at once end with one row (savepoint + retry)."""
    rec = get(session, call_sid)
    if rec is not None:
        return rec
    try:
        with session.begin_nested():
            rec = CallRecord(call_sid=call_sid, outcome=IN_PROGRESS, verified=False, offers=0)
            session.add(rec)
    except IntegrityError:
        rec = get(session, call_sid)
        if rec is None:
            raise
    return rec


def _wait_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, clock.to_ms(end) - clock.to_ms(start))


def open_call(session: Session, call_sid: str, *, from_number: str | None, now: Now) -> CallRecord:
    """A call arrived (/voice/incoming): create its record once; a retry finds it."""
    rec = ensure(session, call_sid)
    rec.arrived = rec.arrived or clock.canonical(now)
    rec.from_number = rec.from_number or from_number
    session.flush()
    return rec


def record_arrival(session: Session, call_sid: str, *, from_number: str | None, now: Now) -> None:
    """/voice/incoming's cheap path: one INSERT … ON CONFLICT DO NOTHING (a retried webhook changes nothing)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(CallRecord)
        .values(call_sid=call_sid, from_number=from_number, arrived=clock.canonical(now), outcome=IN_PROGRESS,
                verified=False, offers=0)
        .on_conflict_do_nothing(index_elements=["call_sid"])
    )


def mark_verified(session: Session, call_sid: str, *, tier: str, member_uid: str | None, now: Now) -> None:
    """The PIN step's cheap path: one UPDATE of the record /voice/incoming created (find-or-create if it did not)."""
    done = rows_matched(
        session,
        update(CallRecord).where(CallRecord.call_sid == call_sid)
        .values(verified=True, tier=tier, member_uid=func.coalesce(member_uid, CallRecord.member_uid),
                verified_at=func.coalesce(CallRecord.verified_at, clock.canonical(now)))
        .execution_options(synchronize_session=False),
    )
    if done == 0:
        note_verified(session, call_sid, tier=tier, member_uid=member_uid, now=now)


def note_verified(session: Session, call_sid: str, *, tier: str, member_uid: str | None, now: Now) -> CallRecord:
    """The caller proved their membership: their tier and member number."""
    rec = ensure(session, call_sid)
    if rec.verified_at is None:
        rec.verified_at = clock.canonical(now)
    rec.verified, rec.tier, rec.member_uid = True, tier, member_uid or rec.member_uid
    session.flush()
    return rec


def note_queued(
    session: Session, call_sid: str, *, tier: str, category: str | None, verified: bool,
    member_uid: str | None, score: float, queued_at: Now, from_number: str | None = None,
) -> CallRecord:
    """The caller joined the queue; `queued_at` is the time Redis recorded (the first join, on a retry too)."""
    rec = ensure(session, call_sid)
    if rec.queued is None:
        rec.queued, rec.score = clock.canonical(queued_at), score
    rec.tier = rec.tier or tier
    rec.category = rec.category or category
    rec.verified = rec.verified or verified
    rec.member_uid = rec.member_uid or member_uid
    rec.from_number = rec.from_number or from_number
    rec.arrived = rec.arrived or rec.queued
    session.flush()
    return rec


def note_offered(session: Session, call_sid: str, *, agent: str, attempt: int, now: Now) -> CallRecord:
    """An agent is being rung for this caller (attempt n: a retried note keeps the count)."""
    rec = ensure(session, call_sid)
    rec.offered = rec.offered or clock.canonical(now)
    if attempt >= (rec.offers or 0):
        rec.offers, rec.agent_login = attempt, agent
    session.flush()
    return rec


def note_answered(session: Session, call_sid: str, *, agent: str, now: Now) -> CallRecord:
    """The agent picked up: the wait ends and the queue outcome is `answered` (unless an exit was recorded first:
    one conditional UPDATE, so a caller's leaving written meanwhile by another process is never overwritten)."""
    rec = ensure(session, call_sid)
    if rec.answered is None and rec.outcome == IN_PROGRESS:
        answered = clock.canonical(now)
        wait = _wait_ms(rec.queued, answered)
        _update_if(session, rec, (CallRecord.answered.is_(None), CallRecord.outcome == IN_PROGRESS),
                   answered=answered, agent_login=agent, outcome="answered",
                   waited_s=None if wait is None else wait / 1000)
    return rec


def _update_if(session: Session, rec: CallRecord, where: tuple[Any, ...], **values: Any) -> bool:
    """UPDATE the record's `values` in one statement while `where` holds (checked by the database at the write,
    not on what this session read earlier); the object is reloaded. True when it held."""
    session.flush()
    done = rows_matched(session, update(CallRecord).where(CallRecord.call_sid == rec.call_sid, *where)
                        .values(**values).execution_options(synchronize_session=False))
    session.expire(rec)
    return bool(done)


def note_left(session: Session, call_sid: str, *, outcome: str, now: Now, waited_s: float | None = None,
              unheard: bool = False) -> CallRecord:
    """The caller left the queue unanswered: abandoned, short_abandoned, to_callback, failed (first one wins).

    The wait is computed from the record's own `queued`; `waited_s` is used only when the record lacks it.
    `unheard`: the caller left after an agent had answered but before they were moved to that agent (Redis took
    the answer back, dispatch.caller_left): the record's answer goes too.
    """
    if outcome not in FINAL_OUTCOMES or outcome == "answered":
        raise ValueError(f"outcome: {outcome!r} is not a way to leave the queue unanswered")
    rec = ensure(session, call_sid)
    left = clock.canonical(now)
    wait = _wait_ms(rec.queued, left)
    was = [CallRecord.outcome == IN_PROGRESS]
    if unheard:
        was.append((CallRecord.outcome == "answered") & CallRecord.left_queue.is_(None))
    values: dict[str, Any] = {"left_queue": left, "outcome": outcome,
                              "waited_s": waited_s if wait is None else wait / 1000}
    _update_if(session, rec, (or_(*was),), **values, **({"answered": None} if unheard else {}))
    return rec


def note_queue_result(session: Session, call_sid: str, result: str) -> None:
    """Keep Twilio's QueueResult of the Enqueue action (the first one reported): one UPDATE."""
    if not _update(session, call_sid, queue_result=func.coalesce(CallRecord.queue_result, result)):
        rec = ensure(session, call_sid)
        rec.queue_result = rec.queue_result or result
        session.flush()


def note_dial_status(session: Session, call_sid: str, status: str, *, agent: str | None = None) -> None:
    """Keep the latest DialCallStatus (a caller may be dialled to several agents in turn): one UPDATE.

    `agent`: only if the record names that agent (their leg's end, reported after the call was closed).
    """
    if agent is not None:
        rows_matched(session, update(CallRecord).where(CallRecord.call_sid == call_sid, CallRecord.agent_login == agent)
                     .values(dial_status=status).execution_options(synchronize_session=False))
        return
    if not _update(session, call_sid, dial_status=status):
        ensure(session, call_sid).dial_status = status
        session.flush()


def _update(session: Session, call_sid: str, **values: Any) -> bool:
    """UPDATE the record's `values` in one statement; False when there is no record yet (then find-or-create)."""
    return bool(rows_matched(
        session,
        update(CallRecord).where(CallRecord.call_sid == call_sid).values(**values)
        .execution_options(synchronize_session=False),
    ))


def close_call(session: Session, call_sid: str, *, call_status: str, now: Now, short_abandon_s: float) -> CallRecord:
    """The status callback: the call is over. Settles an outcome no earlier event settled.

    Still in the queue → abandoned (or short_abandoned); never queued → `ivr` (completed) or
    `failed` (busy, no-answer…); answered stays answered. A second callback changes nothing.
    """
    rec = ensure(session, call_sid)
    at = clock.canonical(now)
    rec.ended = rec.ended or at
    rec.call_status = rec.call_status or call_status
    if rec.outcome == IN_PROGRESS:
        if rec.answered is not None:
            rec.outcome = "answered"
        elif rec.queued is not None:
            wait = _wait_ms(rec.queued, at) or 0
            rec.left_queue, rec.waited_s = at, wait / 1000
            rec.outcome = "short_abandoned" if wait < round(short_abandon_s * 1000) else "abandoned"
        else:
            rec.outcome = "failed" if call_status in FAILED_STATUSES else "ivr"
    session.flush()
    return rec


def last_answered_by(session: Session, agent: str) -> CallRecord | None:
    """The most recent call `agent` answered (the one their wrap-up is about)."""
    return session.scalar(
        select(CallRecord).where(CallRecord.agent_login == agent, CallRecord.answered.is_not(None))
        .order_by(CallRecord.answered.desc()).limit(1)
    )


def note_wrapup(session: Session, record: CallRecord, *, disposition: str, notes: str, now: Now) -> CallRecord:
    """Keep the agent's disposition and notes on the call (a second wrap-up replaces the first's text, not its time)."""
    record.disposition = disposition or None
    record.notes = notes or None
    record.wrapped_up = record.wrapped_up or clock.canonical(now)
    session.flush()
    return record
