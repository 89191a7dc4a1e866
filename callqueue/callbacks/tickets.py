"""Callback tickets in SQL: the durable promise to call a member back, and its attempts.

A ticket is committed before the caller hears its number; Redis holds nothing about it that
cannot be rebuilt, so a Redis flush or a worker crash loses no ticket. One open ticket per
phone number is a partial unique index, enforced by the database under any concurrency.
Functions flush, never commit: the caller owns the transaction.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from callqueue import clock
from core.db import Base, UTCDateTime

STATUSES = ("scheduled", "dialing", "connected", "completed", "failed", "cancelled")
OPEN = ("scheduled", "dialing", "connected")
REASONS = (
    "after_hours",
    "long_wait",
    "caller_request",
    "outage",
)  # outage: booked while a store was down (webhooks/degraded/answers.py)
NUMBER_DIGITS = 8


class CallbackTicket(Base):
    """A member to call back: who, where, why, with which queue score, and how it went."""

    __tablename__ = "callback_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)
    member_uid: Mapped[str | None] = mapped_column(String(32), default=None, index=True)  # the agent's view
    tier: Mapped[str] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(40), default=None)
    phone: Mapped[str] = mapped_column(String(32), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(Float)  # the queue score the member keeps
    source_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    due: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), default=None, index=True)  # the latest callback call
    dialing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)
    note: Mapped[str | None] = mapped_column(Text, default=None)  # why it failed or who cancelled it


# One open ticket per number; closed tickets do not count (a partial unique index on both databases).
Index("uq_callback_tickets_open_phone", CallbackTicket.phone, unique=True,
      sqlite_where=CallbackTicket.status.in_(OPEN), postgresql_where=CallbackTicket.status.in_(OPEN))
Index("ix_callback_tickets_status_score", CallbackTicket.status, CallbackTicket.score)


class CallbackAttempt(Base):
    """One call placed for a ticket: when, which call, and how it ended."""

    __tablename__ = "callback_attempts"
    __table_args__ = (UniqueConstraint("ticket_id", "n"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("callback_tickets.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    call_sid: Mapped[str | None] = mapped_column(String(64), default=None)
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    ended: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # answered | busy | no-answer | failed | canceled | error (Twilio refused) | lost (no word, re-scheduled)
    result: Mapped[str | None] = mapped_column(String(20), default=None)


@dataclass(frozen=True)
class Ticket:
    """A ticket as plain values (what the edge, the API and the CLI show)."""

    id: int
    number: str
    status: str
    tier: str
    phone: str
    lang: str
    reason: str
    score: float
    category: str | None
    member_uid: str | None
    created: datetime
    due: datetime
    attempts: int
    max_attempts: int
    call_sid: str | None
    closed: datetime | None
    note: str | None

    def as_json(self, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The API's shape (times in ISO 8601 UTC)."""
        out: dict[str, Any] = {
            "number": self.number, "status": self.status, "tier": self.tier, "phone": self.phone,
            "reason": self.reason, "category": self.category, "member_uid": self.member_uid, "lang": self.lang,
            "score": self.score, "created": self.created.isoformat(), "due": self.due.isoformat(),
            "attempts": self.attempts, "max_attempts": self.max_attempts,
            "closed": self.closed.isoformat() if self.closed else None, "note": self.note,
        }
        if history is not None:
            out["history"] = history
        return out


def view(t: CallbackTicket) -> Ticket:
    """The row as plain values."""
    return Ticket(t.id, t.number, t.status, t.tier, t.phone, t.lang, t.reason, t.score, t.category, t.member_uid,
                  t.created, t.due, t.attempts, t.max_attempts, t.call_sid, t.closed, t.note)


@dataclass(frozen=True)
class Created:
    """The ticket a request ended with: `new` when booked now, `own` when booked by this call (now or by a retry)."""

    ticket: Ticket
    new: bool
    own: bool


def open_for_phone(session: Session, phone: str) -> Ticket | None:
    """The open ticket of `phone`, if any. One indexed SELECT."""
    row = session.scalar(select(CallbackTicket).where(CallbackTicket.phone == phone, CallbackTicket.status.in_(OPEN)))
    return view(row) if row else None


def for_caller(session: Session, phone: str | None, member_uid: str | None, limit: int = 5) -> list[Ticket]:
    """A caller's open tickets and then their most recent closed ones (by phone or member), for the agent's screen."""
    who = [c for c in (CallbackTicket.phone == phone if phone else None,
                       CallbackTicket.member_uid == member_uid if member_uid else None) if c is not None]
    if not who:
        return []
    rows = session.scalars(select(CallbackTicket).where(or_(*who)).order_by(
        CallbackTicket.status.in_(OPEN).desc(), CallbackTicket.created.desc(), CallbackTicket.id.desc()).limit(limit))
    return [view(t) for t in rows]


def by_call(session: Session, call_sid: str) -> Ticket | None:
    """The ticket whose callback call this is, if it is one."""
    row = session.scalar(select(CallbackTicket).where(CallbackTicket.call_sid == call_sid).limit(1))
    return view(row) if row else None


def booked_by(session: Session, call_sid: str) -> Ticket | None:
    """The ticket call `call_sid` booked (from the hold loop or after hours), if any."""
    row = session.scalar(select(CallbackTicket).where(CallbackTicket.source_call_sid == call_sid).limit(1))
    return view(row) if row else None




def create(
    session: Session, *, phone: str, tier: str, lang: str, reason: str, score: float, due: datetime, now: datetime,
    max_attempts: int, category: str | None = None, member_uid: str | None = None, source_call_sid: str | None = None,
) -> Created:
    """Book a callback, unless `phone` has an open ticket or this call booked one already (then that one)."""
    if reason not in REASONS:
        raise ValueError(f"reason: must be one of {', '.join(REASONS)}")
    if source_call_sid:
        earlier = session.scalar(select(CallbackTicket).where(CallbackTicket.source_call_sid == source_call_sid))
        if earlier is not None:
            return Created(view(earlier), False, True)
    existing = open_for_phone(session, phone)
    if existing is not None:
        return Created(existing, False, False)
    for _ in range(10):
        row = CallbackTicket(
            number=_new_number(),
            phone=phone,
            tier=tier,
            lang=lang,
            reason=reason,
            score=score,
            category=category or None,
            member_uid=member_uid,
            source_call_sid=source_call_sid,
            created=clock.canonical(now),
            due=clock.canonical(due),
            attempts=0,
            max_attempts=max_attempts,
            status="scheduled",
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # Another request booked for this number (or call) meanwhile, or the random number was taken.
            raced = open_for_phone(session, phone)
            if raced is not None:
                return Created(raced, False, False)
            continue
        return Created(view(row), True, True)
    raise RuntimeError("could not draw a free ticket number in 10 tries")


def _new_number() -> str:
    """A ticket number to read out: 8 digits, not starting with 0, not guessable from the previous one."""
    low = 10 ** (NUMBER_DIGITS - 1)
    return str(low + secrets.randbelow(9 * low))


def list_tickets(session: Session, status: str | None = None, limit: int = 200) -> list[Ticket]:
    """Tickets, optionally of one status: open ones in dialling order, closed ones newest first."""
    q = select(CallbackTicket)
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}")
        q = q.where(CallbackTicket.status == status)
    if status in OPEN:
        q = q.order_by(CallbackTicket.score, CallbackTicket.id)
    else:
        q = q.order_by(CallbackTicket.created.desc(), CallbackTicket.id.desc())
    return [view(t) for t in session.scalars(q.limit(limit))]


def history(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    """The attempts of a ticket, first first."""
    rows = session.scalars(
        select(CallbackAttempt).where(CallbackAttempt.ticket_id == ticket_id).order_by(CallbackAttempt.n)
    )
    return [{"n": a.n, "call_sid": a.call_sid, "started": a.started.isoformat(),
             "ended": a.ended.isoformat() if a.ended else None, "result": a.result} for a in rows]


def cancel(session: Session, number: str, now: datetime, by: str) -> tuple[Ticket, bool] | None:
    """Cancel a scheduled (or ringing) ticket: the ticket and whether this call cancelled it; None if no such ticket.

    A connected or closed ticket (cancelled before included) comes back unchanged, with False.
    """
    row = session.scalar(select(CallbackTicket).where(CallbackTicket.number == number).with_for_update())
    if row is None:
        return None
    if row.status not in ("scheduled", "dialing"):
        return view(row), False
    row.status, row.closed, row.note = "cancelled", clock.canonical(now), f"cancelled by {by}"
    session.flush()
    return view(row), True


def counts(session: Session, now: datetime, day_start: datetime, overdue_after_s: float) -> dict[str, int]:
    """The supervisor's callback figures: scheduled (not yet due), due, overdue, and completed / failed today."""
    now_c = clock.canonical(now)
    late = now_c - timedelta(seconds=overdue_after_s)
    T = CallbackTicket
    scheduled = session.execute(
        select(func.count().filter(T.due > now_c), func.count().filter(T.due <= now_c, T.due > late),
               func.count().filter(T.due <= late)).where(T.status == "scheduled")
    ).one()
    closed = dict(
        session.execute(
            select(T.status, func.count())
            .where(T.status.in_(("completed", "failed")), T.closed >= clock.canonical(day_start))
            .group_by(T.status)
        ).all()
    )
    return {"scheduled": scheduled[0], "due": scheduled[1], "overdue": scheduled[2],
            "completed": closed.get("completed", 0), "failed": closed.get("failed", 0)}
