"""A past or current day's figures per 15-minute interval, and its call records as CSV rows.

The figures follow the rules of `stats.counters_from_records` (DESIGN "Statistics") over each
interval [start, next start), published through `stats.derive`, so a day's intervals add up to
the day's statistics. "waiting" and "longest_wait_s" of an interval are the callers still waiting
at its last millisecond (at `now` for today's current interval), computed from the timestamps: a
call answered after that instant was still waiting then.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, TypeGuard

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from callqueue import clock
from callqueue.records import IN_PROGRESS, CallRecord
from callqueue.reports import handling_day, stats
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config
from core.logs import mask_phone, scrub

INTERVAL_MINUTES = 15
_STEP_MS = INTERVAL_MINUTES * 60_000
# Twilio ends any call after 24 hours at most, so a caller waiting through a whole day joined
# within the 24 hours before it: this bounds the query's index range for such records.
_MAX_CALL_MS = 24 * 3600_000
_DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only, unlike \d
# OWASP "CSV injection": spreadsheets run a cell starting with these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("call_sid", "arrived", "queued", "offered", "answered", "left_queue", "ended", "tier",
               "category", "verified", "caller", "member_uid", "agent", "outcome", "waited_s", "talk_s",
               "queue_result", "dial_status", "disposition", "notes", "agents", "hold_count", "hold_s",
               "transfers", "transfer_log", "wrap_up_expired")


def day_bounds(day: date, tz: tzinfo) -> list[int]:
    """Epoch ms of each 15-minute interval's start on the local `day`, then of the next local midnight."""
    nxt = day + timedelta(days=1)
    start = clock.to_ms(datetime(day.year, day.month, day.day, tzinfo=tz))
    end = clock.to_ms(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz))
    # Equal absolute steps are local quarter hours: every zone offset and DST shift in the tz
    # database is a multiple of 15 minutes, so a DST day gets 92 or 100 intervals.
    return [*range(start, end, _STEP_MS), end]


def record_counts(queued: int | None, answered: int | None, left: int | None, outcome: str,
                  sl_ms: int, start: int, end: int) -> dict[str, int]:
    """Raw counters a call record (epoch ms) adds to the interval [start, end), by stats.counters_from_records' rule."""
    c: dict[str, int] = {}
    if queued is None:  # never queued: stats counts nothing for it either
        return c

    def inside(t: int | None) -> TypeGuard[int]:
        return t is not None and start <= t < end

    if inside(queued):
        c["offered"] = 1
    if inside(answered):
        wait = max(0, answered - queued)
        c.update(answered=1, wait_ms=wait, answered_sl=int(wait <= sl_ms))
    if inside(left):
        wait = max(0, left - queued)
        if outcome == "abandoned":
            c.update(abandoned=1, abandoned_sl=int(wait > sl_ms))
        elif outcome == "short_abandoned":
            c["short"] = 1
        elif outcome == "to_callback":
            c["callback"] = 1
    return c


def waiting_span(
    queued: int | None, answered: int | None, left: int | None, outcome: str
) -> tuple[int, int | None] | None:
    """[from, until) in epoch ms during which the caller was waiting (until None: still waiting), or None."""
    if queued is None:
        return None
    stops = [t for t in (answered, left) if t is not None]
    if stops:
        return queued, min(stops)
    # A final outcome without an answer or leave time (e.g. removed) tells us no end: like stats,
    # only an in-progress record counts as still waiting.
    return (queued, None) if outcome == IN_PROGRESS else None


@dataclass
class DayCounts:
    """Raw per-interval counters of a day, before `stats.derive`."""

    starts: list[int]  # epoch ms of each interval kept (those not after `now`)
    tiers: list[str]  # configured tiers in order, then others seen, sorted
    counters: list[dict[str, dict[str, int]]]  # per interval: tier → raw counters
    waiting: list[dict[str, tuple[int, int]]]  # per interval: tier → (waiting, longest wait ms) at its snapshot
    snapshots: list[int]  # epoch ms each interval's waiting is measured at


def _ms(t: datetime | None) -> int | None:
    return None if t is None else clock.to_ms(t)


def count_day(session: Session, day: date, settings: Config | QueueSettings, now: datetime | None = None) -> DayCounts:
    """The local `day`'s raw counters and waiting per 15-minute interval, from one SQL query."""
    qs = queue_settings(settings)
    bounds = day_bounds(day, qs.tz)
    lo, hi = bounds[0], bounds[-1]
    now_ms = None if now is None else clock.to_ms(now)
    kept = len(bounds) - 1 if now_ms is None else bisect_right(bounds, now_ms, 0, len(bounds) - 1)
    # Waiting is measured at an interval's last millisecond (so it is the same set of calls as
    # counters_from_records at that instant), or at `now` when that is earlier: no future guesses.
    snapshots = [b - 1 if now_ms is None else min(b - 1, now_ms) for b in bounds[1:kept + 1]]
    R = CallRecord
    lo_dt, hi_dt = clock.from_ms(lo), clock.from_ms(hi)
    rows = session.execute(select(R.tier, R.queued, R.answered, R.left_queue, R.outcome).where(or_(
        and_(R.queued >= lo_dt, R.queued < hi_dt),
        and_(R.answered >= lo_dt, R.answered < hi_dt),
        and_(R.left_queue >= lo_dt, R.left_queue < hi_dt),
        # Waiting at the day's start and still waiting (stats' own clause; few rows by the outcome index).
        and_(R.queued < lo_dt, R.answered.is_(None), R.left_queue.is_(None), R.outcome == IN_PROGRESS),
        # Waited through the whole day: joined at most a call's length before it (bounded index range).
        and_(R.queued >= clock.from_ms(lo - _MAX_CALL_MS), R.queued < lo_dt,
             or_(R.answered >= hi_dt, R.left_queue >= hi_dt)),
    )))
    counters: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(kept)]
    waiting: list[dict[str, list[int]]] = [{} for _ in range(kept)]  # tier → [count, earliest queued]
    seen: set[str] = set()
    for tier, queued, answered, left, outcome in rows:
        tier = tier or "guest"
        seen.add(tier)
        q, a, lq = _ms(queued), _ms(answered), _ms(left)
        sl = qs.service_level_ms(tier)
        # Each record touches at most the intervals of its three timestamps: apply the rule to those only.
        for i in {bisect_right(bounds, t) - 1 for t in (q, a, lq) if t is not None and lo <= t < hi}:
            if i < kept:
                for k, v in record_counts(q, a, lq, outcome, sl, bounds[i], bounds[i + 1]).items():
                    counters[i][tier][k] += v
        span = waiting_span(q, a, lq, outcome)
        if span is None:
            continue
        first = bisect_left(snapshots, span[0])
        last = kept if span[1] is None else bisect_left(snapshots, span[1])
        for i in range(first, last):
            w = waiting[i].setdefault(tier, [0, span[0]])
            w[0] += 1
            w[1] = min(w[1], span[0])
    names = qs.tiers + sorted(seen - set(qs.tiers))
    return DayCounts(
        starts=bounds[:kept], tiers=names, counters=counters, snapshots=snapshots,
        waiting=[{t: (n, snapshots[i] - q0) for t, (n, q0) in w.items()} for i, w in enumerate(waiting)],
    )


def _figures(tiers: list[str], counters: dict[str, dict[str, int]],
             waiting: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Per tier and overall published figures, totalled as stats._assemble does."""
    total: dict[str, int] = defaultdict(int)
    for tier in tiers:
        for k, v in counters.get(tier, {}).items():
            total[k] += v
    return {
        "tiers": {t: stats.derive(counters.get(t, {}), *waiting.get(t, (0, 0))) for t in tiers},
        "overall": stats.derive(total, sum(n for n, _ in waiting.values()),
                                max((lg for _, lg in waiting.values()), default=0)),
    }


def intervals(
    session: Session, day: date, settings: Config | QueueSettings, now: datetime | None = None
) -> dict[str, Any]:
    """The local `day`'s figures per 15-minute interval and for the whole day (intervals after `now` left out)."""
    qs = queue_settings(settings)
    d = count_day(session, day, qs, now)
    day_total: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for per_tier in d.counters:
        for tier, c in per_tier.items():
            for k, v in c.items():
                day_total[tier][k] += v
    return {
        "date": day.isoformat(),
        "timezone": qs.timezone,
        "interval_minutes": INTERVAL_MINUTES,
        "tiers": d.tiers,
        "intervals": [
            {"start": clock.from_ms(s).astimezone(qs.tz).isoformat(), **_figures(d.tiers, d.counters[i], d.waiting[i])}
            for i, s in enumerate(d.starts)
        ],
        # The day's waiting is its last kept interval's: at the day's end, or now.
        "day": _figures(d.tiers, day_total, d.waiting[-1] if d.waiting else {}),
        "handling": handling_day.day_handling(session, *_day_range(day, qs.tz)),
    }


def _day_range(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The local `day` as [midnight, next midnight) in UTC datetimes."""
    bounds = day_bounds(day, tz)
    return clock.from_ms(bounds[0]), clock.from_ms(bounds[-1])


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


def export_rows(session: Session, day: date, settings: Config | QueueSettings) -> Iterator[list[str]]:
    """The header, then one CSV row per call record that arrived (else queued) on the local `day`, in time order."""
    qs = queue_settings(settings)
    lo, hi = _day_range(day, qs.tz)
    yield list(CSV_COLUMNS)
    moves = handling_day.transfer_logs(session, lo, hi + timedelta(days=1))  # a call may be passed on past midnight
    R = CallRecord
    when = func.coalesce(R.arrived, R.queued)
    stmt = (
        select(R.call_sid, R.arrived, R.queued, R.offered, R.answered, R.left_queue, R.ended, R.tier,
               R.category, R.verified, R.from_number, R.member_uid, R.agent_login, R.outcome, R.waited_s,
               R.queue_result, R.dial_status, R.disposition, R.notes, R.agents, R.hold_count, R.hold_s,
               R.transfers, R.wrap_up_expired)
        # Written as two ranges rather than on coalesce() so each can use its column's index.
        .where(or_(and_(R.arrived >= lo, R.arrived < hi),
                   and_(R.arrived.is_(None), R.queued >= lo, R.queued < hi)))
        .order_by(when, R.id)
        .execution_options(yield_per=500)  # a big day streams in batches (server-side cursor on PostgreSQL)
    )

    def local(t: datetime | None) -> str:
        return "" if t is None else t.astimezone(qs.tz).isoformat(timespec="milliseconds")

    for r in session.execute(stmt):
        talk = (
            ""
            if r.answered is None or r.ended is None
            else _seconds(max(0, clock.to_ms(r.ended) - clock.to_ms(r.answered)))
        )
        row = [r.call_sid, local(r.arrived), local(r.queued), local(r.offered), local(r.answered),
               local(r.left_queue), local(r.ended), r.tier or "", r.category or "", "yes" if r.verified else "no",
               mask_phone(r.from_number), r.member_uid or "", r.agent_login or "", r.outcome or "",
               "" if r.waited_s is None else _seconds(round(r.waited_s * 1000)), talk, r.queue_result or "",
               r.dial_status or "", r.disposition or "", scrub(r.notes or ""),  # notes may hold a number: masked
               r.agents or "", str(r.hold_count or 0), _seconds(round((r.hold_s or 0.0) * 1000)),
               str(r.transfers or 0), moves.get(r.call_sid, ""), "yes" if r.wrap_up_expired else "no"]
        yield [_cell(v) for v in row]


def parse_day(text: str | None, settings: Config | QueueSettings, now: datetime) -> date:
    """A `YYYY-MM-DD` query value as a date (empty: today in the hotline's zone); at most a day ahead."""
    tz = queue_settings(settings).tz
    today = date.fromisoformat(clock.local_day(clock.to_ms(now), tz))
    if not text:
        return today
    # fullmatch first: date.fromisoformat also takes forms like "20260310" that we do not promise.
    if not _DAY_TEXT.fullmatch(text):
        raise ValueError("date: must be YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date: must be YYYY-MM-DD (a real date), not {text!r}") from None
    if day > today + timedelta(days=1):
        raise ValueError(f"date: {text} is more than a day in the future")
    return day
