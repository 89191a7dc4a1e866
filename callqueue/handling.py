"""How a connected call was handled, in SQL: every transfer (from, to, mode, when, how it ended) and, on the call
record, the caller's holds, the agents who took the call in turn and the number of transfers.

Redis keeps the live truth while the call runs (callqueue/live/conference.py, transfer.py); these rows are written
from it at each step and when the call ends, idempotently (a repeated event rewrites the same values).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callqueue import clock, records
from callqueue.clock import Now
from core.db import Base, UTCDateTime

TRANSFER_MODES = ("cold", "warm", "queue")
TRANSFER_RESULTS = ("completed", "cancelled", "missed")


class CallTransfer(Base):
    """One transfer of a call: who passed it to whom (an agent's login, or `queue`), how, when, and how it ended."""

    __tablename__ = "call_transfers"
    __table_args__ = (UniqueConstraint("call_sid", "n"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), ForeignKey("call_records.call_sid"), index=True)
    n: Mapped[int] = mapped_column(Integer)  # 1, 2, … in the order the transfers started
    from_agent: Mapped[str] = mapped_column(String(64))
    to_target: Mapped[str] = mapped_column(String(64))  # a login, or "queue"
    mode: Mapped[str] = mapped_column(String(8))
    started: Mapped[datetime] = mapped_column(UTCDateTime())
    ended: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    result: Mapped[str | None] = mapped_column(String(16), default=None)  # None while under way


def transfer_started(session: Session, call_sid: str, n: int, *, by: str, to: str, mode: str, now: Now) -> None:
    """Record transfer number `n` of the call (a repeat finds it). Flushes."""
    if mode not in TRANSFER_MODES:
        raise ValueError(f"mode: must be one of {', '.join(TRANSFER_MODES)}")
    records.ensure(session, call_sid)
    if session.scalar(select(CallTransfer).where(CallTransfer.call_sid == call_sid, CallTransfer.n == n)) is None:
        session.add(CallTransfer(call_sid=call_sid, n=n, from_agent=by, to_target=to, mode=mode,
                                 started=clock.canonical(now)))
        session.flush()


def transfer_ended(session: Session, call_sid: str, *, result: str, now: Now) -> None:
    """The call's transfer under way ended (`completed`, `cancelled`, `missed`); the first ending recorded wins."""
    if result not in TRANSFER_RESULTS:
        raise ValueError(f"result: must be one of {', '.join(TRANSFER_RESULTS)}")
    open_one = session.scalar(
        select(CallTransfer).where(CallTransfer.call_sid == call_sid, CallTransfer.result.is_(None))
        .order_by(CallTransfer.n.desc()).limit(1)
    )
    if open_one is not None:
        open_one.result, open_one.ended = result, clock.canonical(now)
        session.flush()


def transfers_of(session: Session, call_sid: str) -> list[CallTransfer]:
    """The call's transfers, first first."""
    return list(session.scalars(select(CallTransfer).where(CallTransfer.call_sid == call_sid)
                                .order_by(CallTransfer.n)))


def note_handling(session: Session, call_sid: str, *, agents: tuple[str, ...], hold_count: int, hold_s: float,
                  transfers: int) -> None:
    """Write the call's handling figures as Redis has them now (a later write with more replaces them). Flushes."""
    rec = records.ensure(session, call_sid)
    if agents:
        rec.agents = ",".join(agents)[:255]
    rec.hold_count, rec.hold_s, rec.transfers = hold_count, round(hold_s, 3), transfers
    session.flush()


def wrap_up_expired(session: Session, agent: str, call_sid: str | None = None) -> bool:
    """The agent's wrap-up of `call_sid` (else of their last answered call) ran out with no disposition saved: mark
    the call so (False when it had one, or there is none)."""
    rec = records.get(session, call_sid) if call_sid else records.last_answered_by(session, agent)
    if rec is None or rec.disposition is not None or rec.wrap_up_expired:
        return False
    rec.wrap_up_expired = True
    session.flush()
    return True
