"""Live queue figures per tier and overall, from Redis counters, and the same figures from SQL records.

Definitions (DESIGN "Statistics"), for a window (today in the hotline's time zone, or the last
15 minutes = the current minute and the 14 before it):
- offered: calls that joined the queue in the window; answered / abandoned / to_callback: calls
  that were answered / hung up while waiting / left for a callback in the window;
- short_abandoned: abandoned after waiting less than queue.short_abandon_s; left out of every rate;
- asa_s: mean wait of the answered calls;
- service_level: answered within T ÷ (answered + abandoned after T), T = tiers.<t>.service_level_s;
- abandon_rate: abandoned ÷ (answered + abandoned); callbacks are neither;
- waiting, longest_wait_s: now (callers not yet answered, including those ringing an agent).
The events' scripts (ordering, dispatch) count into per-day and per-minute hashes, so a live read
is O(1) in history; `from_records` recomputes every figure from the call records to check them.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, TypeGuard

import redis
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from callqueue import clock
from callqueue.clock import Now
from callqueue.live import ordering, presence
from callqueue.live.scripts import text
from callqueue.records import IN_PROGRESS, CallRecord
from callqueue.settings import QueueSettings, queue_settings
from core import keys
from core.config import Config

WINDOWS = ("today", "15m")


def _ratio(num: int, den: int, digits: int) -> float | None:
    return round(num / den, digits) if den else None


def derive(c: dict[str, int], waiting: int, longest_ms: int) -> dict[str, Any]:
    """The published figures from raw counters (shared by the live and the SQL path, so both agree)."""
    answered, abandoned = c.get("answered", 0), c.get("abandoned", 0)
    return {
        "waiting": waiting,
        "longest_wait_s": longest_ms / 1000,
        "offered": c.get("offered", 0),
        "answered": answered,
        "abandoned": abandoned,
        "short_abandoned": c.get("short", 0),
        "asa_s": round(c.get("wait_ms", 0) / answered / 1000, 3) if answered else None,
        "service_level": _ratio(c.get("answered_sl", 0), answered + c.get("abandoned_sl", 0), 4),
        "abandon_rate": _ratio(abandoned, answered + abandoned, 4),
        "to_callback": c.get("callback", 0),
    }


def _assemble(window: str, ms: int, tiers: list[str], counters: dict[str, dict[str, int]],
              waiting: dict[str, tuple[int, int]], agents: Mapping[str, int]) -> dict[str, Any]:
    names = tiers + sorted((set(counters) | set(waiting)) - set(tiers))
    total: dict[str, int] = defaultdict(int)
    for tier in names:
        for k, v in counters.get(tier, {}).items():
            total[k] += v
    all_waiting = sum(w for w, _ in waiting.values())
    all_longest = max((lg for _, lg in waiting.values()), default=0)
    return {
        "window": window,
        "as_of": clock.from_ms(ms).isoformat(),
        "tiers": {t: derive(counters.get(t, {}), *waiting.get(t, (0, 0))) for t in names},
        "overall": derive(total, all_waiting, all_longest),
        "agents": {s: agents.get(s) for s in keys.AGENT_STATES},
    }


def bucket_keys_for(ms: int, window: str, settings: QueueSettings) -> list[str]:
    """The counter hashes whose sum is the window ending at `ms`."""
    if window == "today":
        return [keys.stats_day(clock.local_day(ms, settings.tz))]
    start = clock.window_start_ms(ms, window, settings.tz)
    return [keys.stats_minute(m) for m in range(start // 60000, ms // 60000 + 1)]


def live(r: redis.Redis, now: Now, settings: Config | QueueSettings, window: str = "today") -> dict[str, Any]:
    """The figures from Redis counters: O(1) in history. 2 round trips (agents' script, one pipeline)."""
    if window not in WINDOWS:
        raise ValueError(f"window: must be one of {', '.join(WINDOWS)}")
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    agents = presence.counts(r, ms / 1000)
    pipe = r.pipeline(transaction=False)
    buckets = bucket_keys_for(ms, window, qs)
    for key in buckets:
        pipe.hgetall(key)
    for tier in qs.tiers:
        pipe.zcard(keys.tier_waiting(tier))
        pipe.zrange(keys.tier_waiting(tier), 0, 0, withscores=True)
    replies = pipe.execute()
    counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for h in replies[: len(buckets)]:
        for field, value in h.items():
            tier, _, counter = text(field).rpartition(":")
            counters[tier][counter] += int(value)
    waiting: dict[str, tuple[int, int]] = {}
    rest = replies[len(buckets):]
    for i, tier in enumerate(qs.tiers):
        count, first = rest[2 * i], rest[2 * i + 1]
        waiting[tier] = (int(count), max(0, ms - int(first[0][1])) if first else 0)
    return _assemble(window, ms, qs.tiers, counters, waiting, agents)


def counters_from_records(
    session: Session, now: Now, settings: Config | QueueSettings, window: str = "today",
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[int, int]]]:
    """Raw counters and (waiting, longest wait ms) per tier, recomputed from the call records."""
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    start = clock.window_start_ms(ms, window, qs.tz)
    lo, hi = clock.from_ms(start), clock.from_ms(ms)
    R = CallRecord
    rows = session.execute(select(R.tier, R.queued, R.answered, R.left_queue, R.outcome).where(or_(
        and_(R.queued >= lo, R.queued <= hi),
        and_(R.answered >= lo, R.answered <= hi),
        and_(R.left_queue >= lo, R.left_queue <= hi),
        and_(R.queued.is_not(None), R.answered.is_(None), R.left_queue.is_(None), R.outcome == IN_PROGRESS),
    )))
    counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    waiting: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def inside(t: int | None) -> TypeGuard[int]:
        return t is not None and start <= t <= ms

    for tier, queued, answered, left, outcome in rows:
        tier = tier or "guest"
        q, a, lq = (clock.to_ms(x) if x is not None else None for x in (queued, answered, left))
        c, sl = counters[tier], qs.service_level_ms(tier)
        if inside(q):
            c["offered"] += 1
        if inside(a) and q is not None:
            wait = max(0, a - q)
            c["answered"] += 1
            c["wait_ms"] += wait
            c["answered_sl"] += wait <= sl
        if inside(lq) and q is not None:
            wait = max(0, lq - q)
            if outcome == "abandoned":
                c["abandoned"] += 1
                c["abandoned_sl"] += wait > sl
            elif outcome == "short_abandoned":
                c["short"] += 1
            elif outcome == "to_callback":
                c["callback"] += 1
        if q is not None and q <= ms and a is None and lq is None and outcome == IN_PROGRESS:
            w = waiting[tier]
            w[0] += 1
            w[1] = max(w[1], ms - q)
    return counters, {t: (w[0], w[1]) for t, w in waiting.items()}


def from_records(
    session: Session, now: Now, settings: Config | QueueSettings, window: str = "today",
    agents: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The same figures recomputed from SQL call records (agents' states are not in SQL: pass them)."""
    if window not in WINDOWS:
        raise ValueError(f"window: must be one of {', '.join(WINDOWS)}")
    qs = queue_settings(settings)
    counters, waiting = counters_from_records(session, now, qs, window)
    return _assemble(window, clock.to_ms(now), qs.tiers, counters, waiting, dict(agents or {}))


def tier_waiting(r: redis.Redis, now: Now, settings: Config | QueueSettings) -> dict[str, ordering.TierWaiting]:
    """Just waiting and longest wait per tier (a cheap read for the wallboard). 1 round trip."""
    return ordering.tier_summary(r, queue_settings(settings).tiers, now)
