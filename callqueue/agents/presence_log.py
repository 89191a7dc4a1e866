"""Agents' state changes in SQL: who went from which state to which, when and why, for the agent's day and for
supervisors.

Every change happens in a Redis script (callqueue/live/scripts.py `agent_to`), which appends it to a log in Redis;
the periodic sweep moves that log here (`drain`), so no web request pays for a SQL write per change and a change
made while the database is down is written when it returns. A change whose reason is `wrap_up_due` (the wrap-up
ran out) marks the agent's last call as wrapped up by no one when no disposition was saved.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua
from core import keys
from core.db import Base, UTCDateTime


class PresenceEvent(Base):
    """One change of an agent's state."""

    __tablename__ = "presence_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))  # agent, supervisor, offered, call_ended, wrap_up_due, …


DRAIN_LOCK_S = 60

_RELEASE = Lua("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


def claim_drain(r: redis.Redis) -> str | None:
    """Become the one process writing the log to SQL: a token to release with, or None when another one is."""
    token = uuid.uuid4().hex
    return token if r.set(keys.PRESENCE_DRAIN_LOCK, token, nx=True, ex=DRAIN_LOCK_S) else None


def release_drain(r: redis.Redis, token: str) -> None:
    """Let go of the drain (only if `token` still holds it: a lock that expired meanwhile is someone else's)."""
    _RELEASE(r, [keys.PRESENCE_DRAIN_LOCK], [token])


def pending(r: redis.Redis, limit: int = 1000) -> list[dict[str, Any]]:
    """The oldest changes not yet written to SQL (they stay in Redis until `written`). 1 round trip."""
    return [json.loads(raw) for raw in r.lrange(keys.PRESENCE_LOG, 0, limit - 1)]


def written(r: redis.Redis, count: int) -> None:
    """Forget the `count` oldest changes: they are in SQL now. 1 round trip."""
    if count:
        r.ltrim(keys.PRESENCE_LOG, count, -1)


def record(session: Session, changes: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Write `changes` (as `pending` returns them); return (login, call) of the wrap-ups that ran out. Flushes."""
    expired = []
    for c in changes:
        session.add(PresenceEvent(login=str(c["login"]), at=clock.from_ms(int(c["at"])),
                                  from_state=str(c.get("from") or "")[:16], to_state=str(c["to"])[:16],
                                  reason=str(c.get("why") or "")[:32]))
        if c.get("why") == "wrap_up_due" and c.get("from") == "wrap_up":
            expired.append((str(c["login"]), str(c["call"]) if c.get("call") else None))
    session.flush()
    return expired


def day_of(session: Session, login: str, start: Now, end: Now) -> list[PresenceEvent]:
    """An agent's changes between `start` and `end`, first first."""
    E = PresenceEvent
    return list(session.scalars(select(E).where(E.login == login, E.at >= clock.canonical(start),
                                                E.at < clock.canonical(end)).order_by(E.at, E.id)))


def recent(session: Session, since: Now, limit: int = 200) -> list[PresenceEvent]:
    """Every agent's changes since `since`, newest first (what supervisors see)."""
    E = PresenceEvent
    return list(session.scalars(select(E).where(E.at >= clock.canonical(since)).order_by(E.at.desc(), E.id.desc())
                                .limit(limit)))
