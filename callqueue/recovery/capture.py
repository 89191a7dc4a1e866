"""What Redis keeps for SQL while the database is down, and writing it to SQL once it answers again.

Callbacks asked for while it was down (`capture_callback`) become tickets, once per call (the ticket's
unique source CallSid), and the call-record events Redis saw meanwhile (`capture_event`) are applied in
order (every records function is idempotent). `drain` commits each batch before deleting it from Redis,
so a captured request is deleted only after its ticket is committed.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import redis
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from callqueue import clock, records
from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import Ticket
from callqueue.live.scripts import text
from callqueue.recovery.outage_tickets import OUTAGE
from callqueue.settings import queue_settings
from core import keys
from core.config import Config
from core.logs import log_event

log = logging.getLogger("hotline.rebuild")  # the rebuild's logger: draining is one step of its pass


UnitOfWork = Callable[[], AbstractContextManager[Session]]


def capture_callback(
    r: redis.Redis, call_sid: str, *, phone: str, tier: str, lang: str, score: float, due: datetime, now: datetime,
    category: str | None = None, member_uid: str | None = None,
) -> bool:
    """The database is down: keep this call's callback request in Redis (once per call). 1 round trip."""
    value = json.dumps({"phone": phone, "tier": tier, "lang": lang, "score": score, "due": clock.to_ms(due),
                        "created": clock.to_ms(now), "category": category, "member_uid": member_uid})
    return bool(r.hsetnx(keys.OUTBOX_CALLBACKS, call_sid, value))


def capture_event(r: redis.Redis, kind: str, call_sid: str, at: datetime | float, **fields: Any) -> None:
    """The database is down: keep a call-record event to apply when it returns. 1 round trip."""
    if kind not in _APPLY:
        raise ValueError(f"kind: must be one of {', '.join(_APPLY)}")
    r.rpush(keys.OUTBOX_RECORDS, json.dumps({"kind": kind, "sid": call_sid, "at": clock.to_ms(at), **fields}))


def outbox_sizes(r: redis.Redis) -> tuple[int, int]:
    """(callbacks captured, record events waiting) in Redis for the database. 1 round trip."""
    pipe = r.pipeline(transaction=False)
    pipe.hlen(keys.OUTBOX_CALLBACKS)
    pipe.llen(keys.OUTBOX_RECORDS)
    a, b = pipe.execute()
    return int(a), int(b)


def write_captured(session: Session, call_sid: str, data: dict[str, Any], max_attempts: int) -> tickets.Created:
    """One captured callback as a ticket (the same ticket however often this runs: its source CallSid is unique)."""
    return tickets.create(
        session, phone=data["phone"], tier=data["tier"], lang=data["lang"], reason=OUTAGE, score=float(data["score"]),
        due=clock.from_ms(data["due"]), now=clock.from_ms(data["created"]), max_attempts=max_attempts,
        category=data.get("category"), member_uid=data.get("member_uid"), source_call_sid=call_sid,
    )


def _apply(session: Session, e: dict[str, Any], config: Config) -> None:
    _APPLY[e["kind"]](session, e, config)


def _at(e: dict[str, Any]) -> datetime:
    return clock.from_ms(e["at"])


_APPLY: dict[str, Callable[[Session, dict[str, Any], Config], Any]] = {
    "arrival": lambda s, e, c: records.open_call(s, e["sid"], from_number=e.get("from_number"), now=_at(e)),
    "queued": lambda s, e, c: records.note_queued(
        s,
        e["sid"],
        tier=e["tier"],
        category=e.get("category"),
        verified=bool(e.get("verified")),
        member_uid=e.get("member_uid"),
        score=float(e["score"]),
        queued_at=_at(e),
        from_number=e.get("from_number"),
    ),
    "answered": lambda s, e, c: records.note_answered(s, e["sid"], agent=e["agent"], now=_at(e)),
    "left": lambda s, e, c: records.note_left(
        s, e["sid"], outcome=e["outcome"], now=_at(e), waited_s=e.get("waited_s"), unheard=bool(e.get("unheard"))
    ),
    "queue_result": lambda s, e, c: records.note_queue_result(s, e["sid"], e["result"]),
    "dial_status": lambda s, e, c: records.note_dial_status(s, e["sid"], e["status"]),
    "closed": lambda s, e, c: records.close_call(
        s, e["sid"], call_status=e["status"], now=_at(e), short_abandon_s=queue_settings(c).short_abandon_s
    ),
}


def drain(uow: UnitOfWork, r: redis.Redis, config: Config, limit: int = 500) -> tuple[list[Ticket], int]:
    """Write what Redis kept for the database: captured callbacks as tickets, then record events in order.

    Each batch is committed before it is deleted from Redis: a crash in between repeats it, which
    changes nothing. An event that cannot be applied (not an outage: a bad value) is logged and skipped.
    Returns the tickets booked now (their jobs are for the caller to schedule) and the events applied.
    """
    new: list[Ticket] = []
    captured = sorted(((text(sid), json.loads(text(raw))) for sid, raw in r.hgetall(keys.OUTBOX_CALLBACKS).items()),
                      key=lambda item: (item[1]["created"], item[0]))  # in the order callers asked
    max_attempts = config["callbacks"]["max_attempts"]
    for sid, data in captured[:limit]:
        with uow() as session:
            created = write_captured(session, sid, data, max_attempts)
        if created.new:
            new.append(created.ticket)
        r.hdel(keys.OUTBOX_CALLBACKS, sid)
        log_event(log, "captured callback written", call_sid=sid, ticket=created.ticket.number, new=created.new)
    applied = 0
    batch = [json.loads(text(x)) for x in r.lrange(keys.OUTBOX_RECORDS, 0, limit - 1)]
    if batch:
        with uow() as session:
            for e in batch:
                try:
                    with session.begin_nested():
                        _apply(session, e, config)
                    applied += 1
                except OperationalError:
                    raise  # the database failed again: the batch stays in Redis for the next pass
                except Exception as exc:  # noqa: BLE001 (one bad event must not block every later one: logged, skipped)
                    log_event(log, "record event skipped", logging.ERROR, kind=e.get("kind"), call_sid=e.get("sid"),
                              error=f"{type(exc).__name__}: {exc}")
        r.ltrim(keys.OUTBOX_RECORDS, len(batch), -1)
    return new, applied
