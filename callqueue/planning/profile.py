"""A day of calls as data: expected arrivals per 15-minute interval per tier, the tiers' handle times
and patience, and the roster (agents on duty per interval).

Two CSV files describe a day (the shipped default is callqueue/planning/profiles/default_day.csv and
default_tiers.csv):
- the day: a `start` column (local "HH:MM", on the quarter hour, increasing; intervals not listed
  have no calls and no agents), then either a `calls` column (split by the tiers' `share`) or one
  column per tier name (expected calls of that tier), and optionally `agents` (the roster);
- the tiers: `tier,share,handle_mean_s,handle_sigma,patience_mean_s` and optionally `handle_dist`.
  Handle times are log-normal with that mean and shape sigma (`handle_dist = exponential` for the
  M/M/c check); patience is exponential with that mean, empty = the caller never hangs up.
profile_csv.py reads the files and checks the cells; every error names the file and line.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from callqueue import clock

# Raised by the CSV reading (profile_csv.py) and by DayProfile.scaled; importable from here, as it always was.
from callqueue.planning.profile_csv import ProfileError, number, quarter_index, read_file, records, shipped_file

INTERVAL_S = 900
INTERVALS_PER_DAY = 96
HANDLE_DISTS = ("lognormal", "exponential")
TIER_COLUMNS = ("tier", "share", "handle_mean_s", "handle_sigma", "patience_mean_s")


@dataclass(frozen=True)
class TierModel:
    """How callers of one tier behave: share of the calls, handle time, patience."""

    name: str
    share: float
    handle_mean_s: float
    handle_sigma: float = 0.6
    patience_mean_s: float | None = None  # None: never abandons
    handle_dist: str = "lognormal"


@dataclass(frozen=True)
class DayProfile:
    """Expected arrivals per tier and interval (index 0 = local midnight), tier models and roster."""

    arrivals: Mapping[str, tuple[float, ...]]
    tiers: Mapping[str, TierModel]
    roster: tuple[int, ...] | None = None
    source: str = "default"

    @property
    def intervals(self) -> int:
        """Number of 15-minute intervals described (96 for a whole day)."""
        return max((len(v) for v in self.arrivals.values()), default=0)

    def calls_in(self, i: int) -> float:
        """Expected calls of all tiers in interval i."""
        return sum(v[i] for v in self.arrivals.values() if i < len(v))

    def total_calls(self) -> float:
        """Expected calls over the whole profile."""
        return sum(sum(v) for v in self.arrivals.values())

    def agents(self, i: int) -> int:
        """Agents on duty in interval i (0 past the roster's end or without one)."""
        return self.roster[i] if self.roster is not None and i < len(self.roster) else 0

    def scaled(self, calls: float) -> DayProfile:
        """The same day shape with `calls` expected calls in total (the roster is kept as it is)."""
        total = self.total_calls()
        if total <= 0:
            raise ProfileError(f"{self.source}: has no calls to scale")
        k = calls / total
        return replace(self, arrivals={t: tuple(x * k for x in v) for t, v in self.arrivals.items()})

    def mean_handle_s(self, i: int) -> float:
        """Mean handle time of the calls expected in interval i (weighted by tier); 0 with no calls."""
        calls = self.calls_in(i)
        if calls <= 0:
            return 0.0
        return sum(v[i] * self.tiers[t].handle_mean_s for t, v in self.arrivals.items() if i < len(v)) / calls


def parse_tiers(text: str, name: str = "tiers.csv", known: Iterable[str] | None = None) -> dict[str, TierModel]:
    """Tier models from CSV text; `known` (the configured tiers) restricts the names."""
    header, rows = records(text, name)
    missing = [c for c in TIER_COLUMNS if c not in header]
    if missing:
        raise ProfileError(
            f"{name}, line 1: missing column(s) {', '.join(missing)}; expected {','.join(TIER_COLUMNS)}[,handle_dist]"
        )
    allowed = set(known) if known is not None else None
    out: dict[str, TierModel] = {}
    for n, row in rows:
        where = f"{name}, line {n}"
        tier = row["tier"].strip()
        if allowed is not None and tier not in allowed:
            raise ProfileError(f"{where}: tier {tier!r} is not one of {', '.join(sorted(allowed))}")
        if tier in out:
            raise ProfileError(f"{where}: tier {tier!r} is listed twice")
        dist = (row.get("handle_dist") or "lognormal").strip() or "lognormal"
        if dist not in HANDLE_DISTS:
            raise ProfileError(f"{where}: handle_dist must be one of {', '.join(HANDLE_DISTS)}, not {dist!r}")
        mean = number(row["handle_mean_s"], where, "handle_mean_s")
        if not mean:
            raise ProfileError(f"{where}: handle_mean_s must be more than 0")
        patience = number(row["patience_mean_s"], where, "patience_mean_s", allow_empty=True)
        out[tier] = TierModel(
            name=tier, share=float(number(row["share"], where, "share") or 0.0), handle_mean_s=float(mean),
            handle_sigma=float(number(row["handle_sigma"], where, "handle_sigma") or 0.0),
            patience_mean_s=None if patience is None or patience == 0 else patience, handle_dist=dist,
        )
    if not out:
        raise ProfileError(f"{name}: lists no tier")
    return out


def parse_day(
    text: str, tiers: Mapping[str, TierModel], name: str = "day.csv", *, need_roster: bool = False
) -> DayProfile:
    """A day profile from CSV text (see the module docstring for the columns)."""
    header, rows = records(text, name)
    if "start" not in header:
        raise ProfileError(f"{name}, line 1: no start column (columns: {','.join(header)})")
    tier_cols = [h for h in header if h in tiers]
    unknown = [h for h in header if h not in ("start", "calls", "agents") and h not in tiers]
    if unknown:
        raise ProfileError(f"{name}, line 1: unknown column(s) {', '.join(unknown)}; "
                           f"expected start, calls or tier columns ({', '.join(tiers)}), agents")
    if ("calls" in header) == bool(tier_cols):
        raise ProfileError(f"{name}, line 1: give either a calls column or one column per tier, "
                           f"not {'both' if tier_cols else 'neither'}")
    if need_roster and "agents" not in header:
        raise ProfileError(f"{name}, line 1: no agents column (the simulation needs a roster)")
    if "calls" in header:
        share = sum(t.share for t in tiers.values())
        if share <= 0:
            raise ProfileError(f"{name}: a calls column needs tier shares that add up to more than 0")
        split = {t: m.share / share for t, m in tiers.items()}
    arrivals = {t: [0.0] * INTERVALS_PER_DAY for t in (tiers if "calls" in header else tier_cols)}
    roster = [0] * INTERVALS_PER_DAY
    last = -1
    for n, row in rows:
        where = f"{name}, line {n}"
        i = quarter_index(row["start"], where)
        if i <= last:
            raise ProfileError(f"{where}: start {row['start'].strip()} is not after the previous line's")
        last = i
        if "calls" in header:
            calls = float(number(row["calls"], where, "calls") or 0.0)
            for t, k in split.items():
                arrivals[t][i] = calls * k
        for t in tier_cols:
            arrivals[t][i] = float(number(row[t], where, t) or 0.0)
        if "agents" in header:
            roster[i] = int(number(row["agents"], where, "agents", integer=True) or 0)
    if last < 0:
        raise ProfileError(f"{name}: has a header but no interval lines")
    return DayProfile(arrivals={t: tuple(v) for t, v in arrivals.items()}, tiers=dict(tiers),
                      roster=tuple(roster) if "agents" in header else None, source=name)


def load_tiers(path: str | Path | None = None, known: Iterable[str] | None = None) -> dict[str, TierModel]:
    """Tier models from a CSV file, or the shipped default (callqueue/planning/profiles/default_tiers.csv)."""
    if path is None:
        return parse_tiers(shipped_file("default_tiers.csv"), "default_tiers.csv", known)
    return parse_tiers(read_file(path), str(path), known)


def load_day(path: str | Path | None = None, tiers: Mapping[str, TierModel] | None = None, *,
             need_roster: bool = False) -> DayProfile:
    """A day profile from a CSV file, or the shipped default (callqueue/planning/profiles/default_day.csv)."""
    models = dict(tiers) if tiers is not None else load_tiers()
    if path is None:
        return parse_day(shipped_file("default_day.csv"), models, "default_day.csv", need_roster=need_roster)
    return parse_day(read_file(path), models, str(path), need_roster=need_roster)


# --- the day's callers, drawn from a profile ------------------------------------------------------

class _Antithetic(random.Random):
    """u → 1 − u: the mirror-image day of a seed (variance reduction for the closed-form checks)."""

    def random(self) -> float:
        return 1.0 - super().random()


@dataclass(frozen=True)
class Caller:
    """One caller drawn for the day: when, which tier, how long the call takes, how long they would wait."""

    sid: str
    tier: str
    arrival_ms: int
    handle_ms: int
    patience_ms: int | None  # None: never hangs up
    draws: tuple[float, ...]  # uniforms: book a callback when closed?, then each callback attempt answered?


def day_start_ms(day: date, tz: Any) -> int:
    """Epoch ms of local midnight starting `day` in the hotline's zone."""
    return clock.to_ms(datetime(day.year, day.month, day.day, tzinfo=tz))


def draw_callers(profile: DayProfile, start_ms: int, seed: int, *, antithetic: bool = False,
                 attempts: int = 3) -> list[Caller]:
    """The day's callers from the profile: Poisson arrivals per interval, tier by the interval's mix."""
    rng = _Antithetic if antithetic else random.Random
    # One stream per quantity: the arrivals stay the same whatever else a profile changes.
    arr, svc, pat, cb = (rng(f"{seed}:{name}") for name in ("arrivals", "handle", "patience", "callback"))
    tiers = list(profile.arrivals)
    out: list[Caller] = []
    for i in range(profile.intervals):
        weights = [profile.arrivals[t][i] if i < len(profile.arrivals[t]) else 0.0 for t in tiers]
        total = sum(weights)
        if total <= 0:
            continue
        t, end = 0.0, float(INTERVAL_S)
        while True:
            t += arr.expovariate(total / INTERVAL_S)  # memoryless: restarting per interval is exact
            if t >= end:
                break
            u, k = arr.random() * total, 0
            while k < len(tiers) - 1 and u >= weights[k]:
                u -= weights[k]
                k += 1
            m = profile.tiers[tiers[k]]
            if m.handle_dist == "exponential":
                handle = svc.expovariate(1.0 / m.handle_mean_s)
            elif m.handle_sigma > 0:
                handle = svc.lognormvariate(math.log(m.handle_mean_s) - m.handle_sigma ** 2 / 2, m.handle_sigma)
            else:
                handle = m.handle_mean_s
            p = pat.random()
            patience = None if m.patience_mean_s is None else -m.patience_mean_s * math.log(1.0 - p)
            out.append(
                Caller(
                    sid=f"S{len(out) + 1:06d}",
                    tier=tiers[k],
                    arrival_ms=start_ms + i * INTERVAL_S * 1000 + round(t * 1000),
                    handle_ms=max(1, round(handle * 1000)),
                    patience_ms=None if patience is None else round(patience * 1000),
                    draws=tuple(cb.random() for _ in range(attempts + 1)),
                )
            )
    return out
