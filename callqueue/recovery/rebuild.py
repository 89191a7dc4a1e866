"""After a store outage, each store is rebuilt from the other: idempotently, so running it twice changes nothing.

Redis from SQL (Redis came back, possibly empty): every call the SQL records show as queued and still
in progress, with no call hash in Redis, goes back into our order with its recorded score and queue
time (`restore_calls`); a caller Redis still holds but SQL has closed (they hung up while Redis was
down) is taken out (`drop_ended`); today's counters are recomputed from the records when Redis lost
them (callqueue/recovery/counters.py). Callback tickets live in SQL already: the callback sweep dials
the due ones whatever happened to their rq jobs.

SQL from Redis (the database came back): what Redis kept for it while it was down is written
(callqueue/recovery/capture.py). Tickets booked while Redis was down are parked while their caller holds
and settled against the call's record (callqueue/recovery/outage_tickets.py).

Trigger: `run` on every periodic sweep (cheap when there is nothing to do). The full Redis rebuild
runs when the marker key `hl:rebuilt` (core/keys.py) is missing: a restarted empty Redis has none, a web process that
saw Redis fail deletes it when Redis answers again (a Redis restored from disk keeps the marker), and it
expires after MARKER_TTL_S. Today's counters are added back only when Redis lost its data (`hl:kept`).
Functions take a session and flush; `run` takes a unit-of-work factory and commits between steps, so
a captured request is deleted from Redis only after its ticket is committed. A caller put back needs the IVR
session of their call too (what the whisper and the hold loop read): the IVR owns that hash, so the caller of
`run` passes the function that writes it (`restore_session`, ivr/session.py), as a plain `Rejoined` value.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from callqueue import clock
from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import Ticket
from callqueue.live import dispatch, ordering
from callqueue.live.scripts import member_range
from callqueue.records import IN_PROGRESS, CallRecord
from callqueue.recovery.capture import UnitOfWork, drain, outbox_sizes
from callqueue.recovery.counters import restore_day_counters
from callqueue.recovery.outage_tickets import MAX_CALL_S, settle_outage_tickets
from callqueue.settings import queue_settings
from core import keys
from core.config import Config
from core.logs import log_event

log = logging.getLogger("hotline.rebuild")

MARKER_TTL_S = 6 * 3600                     # a full rebuild at least this often anyway (cheap, idempotent)
LOCK_S = 120
RING_GRACE_S = 30      # a caller offered to an agent this recently may be talking: not restored yet


@dataclass(frozen=True)
class Rejoined:
    """A caller put back in our order: what the IVR session of their call must say (tier, verification,
    category, language, callback ticket), for the whisper and the hold loop."""

    call_sid: str
    caller: str
    lang: str
    tier: str
    verified: bool
    uid: str
    category: str
    cb_ticket: str
    started_at: str


RestoreSession = Callable[[redis.Redis, Rejoined], object]  # writes the IVR session (ivr.session.restore_session)


# --- Redis from SQL --------------------------------------------------------------------------------

def needed(r: redis.Redis) -> bool:
    """True when Redis has no record of a complete rebuild (restarted empty, or flagged after an outage)."""
    return not r.exists(keys.REBUILT)


def flag(r: redis.Redis) -> None:
    """Ask for a full rebuild at the next sweep (Redis answered again after failing)."""
    r.delete(keys.REBUILT)


def queued_in_sql(session: Session, now: datetime, limit: int = 10000) -> list[CallRecord]:
    """Calls SQL shows waiting for an agent: queued, not answered, not ended, queued within a call's longest life."""
    R = CallRecord
    since = clock.canonical(now) - timedelta(seconds=MAX_CALL_S)
    return list(session.scalars(
        select(R).where(R.outcome == IN_PROGRESS, R.queued.is_not(None), R.queued >= since,
                        R.answered.is_(None), R.ended.is_(None))
        .order_by(R.score, R.id).limit(limit)
    ))


def restore_call(session: Session, r: redis.Redis, rec: CallRecord, config: Config,
                 restore_session: RestoreSession) -> bool:
    """Put one recorded caller back in our order (score and queue time as recorded) with an IVR session.

    True if the call was not in Redis before. The session carries what the whisper and the hold loop
    read: tier, verification, category, language (the ticket's, when the call has one), callback ticket.
    """
    qs = queue_settings(config)
    tier = rec.tier if rec.tier in qs.boost_s else "guest"
    queued = rec.queued or rec.arrived or clock.canonical(0)
    score = rec.score if rec.score is not None else ordering.score_for(tier, queued, qs)
    callback = tickets.by_call(session, rec.call_sid)     # a callback call keeps its ticket number
    booked = tickets.booked_by(session, rec.call_sid)     # a ticket the call booked: the caller's language
    ticket = callback or booked
    lang = ticket.lang if ticket else config["hotline"]["default_language"]
    e = ordering.enqueue(r, rec.call_sid, tier=tier, now=queued, settings=qs, category=rec.category or "",
                         verified=bool(rec.verified), member_uid=rec.member_uid, score=score)
    restore_session(r, Rejoined(
        call_sid=rec.call_sid, caller=rec.from_number or "", lang=lang, tier=tier, verified=bool(rec.verified),
        uid=rec.member_uid or "", category=rec.category or "", cb_ticket=callback.number if callback else "",
        started_at=(rec.arrived or queued).isoformat(),
    ))
    return e.new


@dataclass(frozen=True)
class Restored:
    """What `restore_calls` did: the records of the calls put back, and how many were left for a later pass
    (maybe talking to an agent)."""

    records: list[CallRecord]
    uncertain: int


def restore_calls(session: Session, r: redis.Redis, now: datetime, config: Config,
                  restore_session: RestoreSession) -> Restored:
    """Every recorded waiting caller that Redis does not know, back in our order. 2 round trips + 1 per caller."""
    recs = queued_in_sql(session, now)
    if not recs:
        return Restored([], 0)
    pipe = r.pipeline(transaction=False)
    for rec in recs:
        pipe.exists(keys.call(rec.call_sid))
    known = pipe.execute()
    ringing_since = clock.canonical(now) - timedelta(seconds=queue_settings(config).ring_timeout_s + RING_GRACE_S)
    restored, uncertain = [], 0
    for rec, exists in zip(recs, known, strict=True):  # one EXISTS reply per record
        if exists:
            continue
        if rec.offered is not None and rec.offered > ringing_since:
            uncertain += 1  # an agent may be talking to them: putting them back could move a live conversation
            continue
        if restore_call(session, r, rec, config, restore_session):
            restored.append(rec)
    return Restored(restored, uncertain)


def drop_ended(session: Session, r: redis.Redis, now: datetime, config: Config, limit: int = 10000) -> list[str]:
    """Callers still in our order whose SQL record is closed (they left while Redis was down): out, counted as
    they were recorded (at the time SQL recorded)."""
    sids = member_range(r, keys.ORDER, 0, limit - 1)
    if not sids:
        return []
    R = CallRecord
    closed = session.execute(
        select(R.call_sid, R.outcome, R.left_queue, R.ended).where(R.call_sid.in_(sids), R.outcome != IN_PROGRESS)
    ).all()
    dropped = []
    for sid, outcome, left, ended in closed:
        at = left or ended or clock.canonical(now)
        if outcome in ("abandoned", "short_abandoned", "to_callback", "failed"):
            reason = {"to_callback": "callback", "failed": "failed"}.get(outcome, "hangup")
            gone = dispatch.caller_left(r, sid, at, reason, config).changed  # counted as SQL counted it
        else:
            gone = ordering.remove(r, sid, at)  # answered (while Redis was down) or never queued: nothing to count
        if gone:
            dropped.append(sid)
    return dropped


# --- the whole pass ------------------------------------------------------------------------------

def run(uow: UnitOfWork, r: redis.Redis, now: datetime, config: Config, restore_session: RestoreSession, *,
        full: bool | None = None, counters: bool = True) -> dict[str, Any]:
    """One rebuild pass: drain what Redis kept for SQL; if `full` (default: the marker is missing) restore Redis
    from SQL; with `counters`, add back today's counters once Redis lost them (after every caller is back);
    settle outage tickets. Returns counts, and "booked": the tickets written from captures."""
    if not r.set(keys.REBUILD_LOCK, "1", nx=True, ex=LOCK_S):  # the event list is trimmed after replay
        return {"rebuild": "busy"}
    try:
        out: dict[str, Any] = {}
        booked: list[Ticket] = []
        if any(outbox_sizes(r)):
            booked, applied = drain(uow, r, config)
            out.update(captured_written=len(booked), record_events_applied=applied)
        if full is None:
            full = needed(r)
        if full:
            with uow() as session:
                restored = restore_calls(session, r, now, config, restore_session)
                dropped = drop_ended(session, r, now, config)
            out.update(restored=len(restored.records), uncertain=restored.uncertain, dropped=len(dropped))
            if restored.uncertain == 0:
                r.set(keys.REBUILT, clock.canonical(now).isoformat(), ex=MARKER_TTL_S)
            log_event(log, "redis rebuilt from sql", logging.WARNING, **out)
        if counters and not needed(r) and not r.exists(keys.KEPT):  # Redis lost its data; every caller is back
            with uow() as session:
                out["counters_restored"] = restore_day_counters(session, r, now, config)
        with uow() as session:
            out.update(settle_outage_tickets(session, now))
        out["booked"] = booked
        return out
    finally:
        r.delete(keys.REBUILD_LOCK)
