"""Opening hours: weekly spans per tier, public holidays, make-up working days and closed dates.

Pure domain code (no SQL, Flask, Twilio or RQ): the webhooks ask `Calendar.is_open` on every call.

Semantics:
- A local date is closed if listed in `closed_dates`, else if a public holiday of `holiday_calendar`
  (in calendars with make-up working days, such as CN, a weekend day joined to a holiday through
  weekend days is part of the holiday block, as such holidays are announced).
  A make-up working day (调休, `weekend_workdays` of the `holidays` package) gets the spans of the
  first of mon..fri that has any (Monday's with the defaults); a line closed every weekday keeps
  the day's own spans, since it evidently does not follow the work calendar. Other days use `weekly`.
- Spans are wall-clock times in the schedule's zone, turned into real instants per date:
  * spring-forward gap: a wall time that does not exist means the first valid instant after the
    gap (the transition itself), so "02:30-05:00" on a gap day opens at 03:00 new time;
  * fall-back overlap: a repeated wall time means its first occurrence (fold=0, the earlier
    offset), so "01:30-03:00" runs from the first 01:30 to 03:00 (2.5 real hours), and a span
    ending at 01:30 closes at the first 01:30.
  * "24:00" is the next local midnight (resolved by the same rules).
  Results are aware datetimes in the schedule's zone (fold set right); compare them with `==` in
  one zone or via `.astimezone(timezone.utc)`: by PEP 495, `==` across zones is False in a fold.
- Touching or overlapping spans, also across midnight, form one open period.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from core.schema import deep_merge

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 2 * 366 + 2  # "never open" = no opening within about two years
_CACHE_MAX = 5000  # dates kept per schedule; a long-running process only asks about a few
_UTC = UTC
_SECOND = timedelta(seconds=1)

Interval = tuple[datetime, datetime]  # [start, end) as UTC instants


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def _parse_spans(spans: list[str] | None) -> tuple[tuple[int, int], ...]:
    out = []
    for span in spans or ():
        start, end = span.split("-")
        out.append((_minutes(start), _minutes(end)))
    return tuple(sorted(out))


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `minute` (0..1440) on local `day`, per the module's DST rules."""
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    early = wall.replace(tzinfo=zone).astimezone(_UTC)  # fold=0: first occurrence in an overlap
    if early.astimezone(zone).replace(tzinfo=None) == wall:
        return early
    # In a gap: fold=1 reads it with the later offset, so the transition lies in (late, early].
    lo, hi = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC), early
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > _SECOND:  # bisect: gaps are at most a day, so ~17 steps
        mid = lo + (hi - lo) // 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi


class _Holidays:
    """The `holidays` objects of one Calendar, built lazily once per code (construction is slow)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the objects load years on demand, i.e. they mutate
        self._by_code: dict[str, Any] = {}

    def kind(self, code: str, day: date) -> str:
        """"holiday", "workday" (a weekend make-up working day) or "" for an ordinary day."""
        with self._lock:
            obj = self._by_code.get(code)
            if obj is None:
                import holidays  # imported here: importing it is slow and most processes never need it

                obj = self._by_code[code] = holidays.country_holidays(code, years=day.year)
            if day in obj:  # also loads the year, which fills weekend_workdays for it
                return "holiday"
            workdays = getattr(obj, "weekend_workdays", ())
            if day in workdays:
                return "workday"
            # Where the calendar moves working days (调休), holidays are announced as whole blocks that take
            # in the weekend days between them (National Day 2026: Oct 1-7, with Sunday the 4th): a weekend
            # day joined to a holiday through weekend days is part of it. Not elsewhere: a weekend before a
            # Monday holiday in the US is an ordinary weekend.
            if workdays and day.weekday() in obj.weekend and (self._joined(obj, day, -1) or self._joined(obj, day, 1)):
                return "holiday"
            return ""

    @staticmethod
    def _joined(obj: Any, day: date, step: int) -> bool:
        """True if walking from `day` over ordinary weekend days in direction `step` reaches a holiday."""
        d = day + timedelta(days=step)
        for _ in range(7):
            if d in obj:
                return True
            if d.weekday() not in obj.weekend or d in obj.weekend_workdays:
                return False
            d += timedelta(days=step)
        return False


@dataclass(frozen=True, eq=False)
class Schedule:
    """One effective `[hours]` table (global, or a tier's merged over it)."""

    zone: ZoneInfo
    holiday_calendar: str
    closed_dates: frozenset[date]
    weekly: tuple[tuple[tuple[int, int], ...], ...]  # 7 days, spans in minutes after midnight
    _holidays: _Holidays = field(repr=False)
    _days: dict[date, tuple[Interval, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], shared: _Holidays) -> Schedule:
        """Build from a validated `[hours]` table."""
        weekly = table.get("weekly") or {}
        return cls(
            zone=ZoneInfo(table.get("timezone") or "UTC"),
            holiday_calendar=table.get("holiday_calendar") or "",
            closed_dates=frozenset(date.fromisoformat(d) for d in table.get("closed_dates") or ()),
            weekly=tuple(_parse_spans(weekly.get(d)) for d in DAYS),
            _holidays=shared,
        )

    def spans(self, day: date) -> tuple[tuple[int, int], ...]:
        """The wall-clock spans of a local date after closed dates, holidays and make-up days."""
        if day in self.closed_dates:
            return ()
        own = self.weekly[day.weekday()]
        if not self.holiday_calendar:
            return own
        kind = self._holidays.kind(self.holiday_calendar, day)
        if kind == "holiday":
            return ()
        if kind == "workday":
            return next((s for s in self.weekly[:5] if s), own)
        return own

    def intervals(self, day: date) -> tuple[Interval, ...]:
        """The open intervals (UTC, merged, ascending) that come from local date `day`; cached."""
        found = self._days.get(day)
        if found is None:
            merged: list[list[datetime]] = []
            for a, b in self.spans(day):
                s, e = _instant(day, a, self.zone), _instant(day, b, self.zone)
                if s >= e:
                    continue  # wholly inside a spring-forward gap: never happens in real time
                if merged and s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            found = tuple((s, e) for s, e in merged)
            if len(self._days) >= _CACHE_MAX:
                self._days.clear()  # bounded memory; dict ops are atomic, so threads may race harmlessly
            self._days[day] = found
        return found

    def walk(self, now_utc: datetime, days: int) -> Iterator[Interval]:
        """Intervals from the day before `now`'s local date on, ascending in time, for `days` dates."""
        # Wall-to-instant resolution is monotone, so dates in order give intervals in order;
        # starting a day early catches a previous date's interval reached through an overlap.
        day = now_utc.astimezone(self.zone).date() - timedelta(days=1)
        for i in range(days):
            yield from self.intervals(day + timedelta(days=i))


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: opening hours need an aware datetime")
    return now.astimezone(_UTC)


@dataclass(frozen=True)
class Calendar:
    """The opening hours of every tier; immutable apart from internal caches."""

    default: Schedule
    tiers: Mapping[str, Schedule]

    @classmethod
    def from_config(cls, config: Any) -> Calendar:
        """One schedule per tier (its `hours` deep-merged over the global `[hours]`) plus the global one."""
        shared = _Holidays()
        base = config.data.get("hours") or {}
        default = Schedule.from_table(base, shared)
        tiers: dict[str, Schedule] = {}
        for name, tier in (config.data.get("tiers") or {}).items():
            own = (tier or {}).get("hours")
            # Tiers without their own hours share the global schedule, and so its cache.
            tiers[name] = Schedule.from_table(deep_merge(base, own), shared) if own else default
        return cls(default=default, tiers=MappingProxyType(tiers))

    def schedule(self, tier: str | None = None) -> Schedule:
        """The schedule of `tier`; the global one for None or a tier the config does not name."""
        return self.tiers.get(tier, self.default) if tier is not None else self.default

    def is_open(self, now: datetime, tier: str | None = None) -> bool:
        """Whether the line is open for `tier` at the instant `now`."""
        now_utc = _utc(now)
        for s, e in self.schedule(tier).walk(now_utc, 3):
            if e > now_utc:
                return s <= now_utc
        return False

    def next_opening(self, now: datetime, tier: str | None = None) -> datetime | None:
        """The first open instant >= now (now if open), in the schedule's zone; None if none in ~2 years."""
        now_utc = _utc(now)
        sched = self.schedule(tier)
        for s, e in sched.walk(now_utc, HORIZON_DAYS):
            if e > now_utc:
                return max(s, now_utc).astimezone(sched.zone)
        return None



def check_hours(data: dict[str, Any]) -> list[str]:
    """Config check: every schedule (global and per tier) is open on some weekday and names real dates."""
    errors: list[str] = []
    base = data.get("hours") or {}
    tables = [("hours", base, True)]
    for name, tier in (data.get("tiers") or {}).items():
        own = (tier or {}).get("hours")
        if own:
            # A tier that leaves `weekly` alone inherits the global verdict; don't report it twice.
            tables.append((f"tiers.{name}.hours", deep_merge(base, own), "weekly" in own))
        for i, d in enumerate((own or {}).get("closed_dates") or ()):
            errors += _bad_date(f"tiers.{name}.hours.closed_dates[{i}]", d)
    for i, d in enumerate(base.get("closed_dates") or ()):
        errors += _bad_date(f"hours.closed_dates[{i}]", d)
    for path, table, own_weekly in tables:
        weekly = table.get("weekly") or {}
        if own_weekly and not any(weekly.get(d) for d in DAYS):
            errors.append(f"{path}.weekly: the hotline is never open")
    return errors


def _bad_date(path: str, text: str) -> list[str]:
    try:
        date.fromisoformat(text)
    except (TypeError, ValueError):
        return [f"{path}: {text!r} is not a real date"]
    return []
