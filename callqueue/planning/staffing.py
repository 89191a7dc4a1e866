"""Staffing planner: agents needed per 15-minute interval to meet each tier's service-level target.

First estimate: Erlang C per interval on the pooled load (all tiers, FCFS), the fewest agents meeting
the strictest tier's target. Erlang C knows neither priorities (premium is answered faster than pooled
FCFS, standard slower), abandonment (which relieves the queue), nor after-hours callbacks at opening,
so the estimate is then checked by the day simulation (callqueue/planning/daysim.py, our policy) and corrected
interval by interval: first quarters that miss a target get agents (more the further off they are) until
the whole day meets them; then every quarter is trimmed by ~4 % per round, and a quarter whose trim
broke a target goes back (with the two before it, whose queue it inherits) and stays. The plan
returned is always a roster that a simulation verified, or says which intervals still miss.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import redis

from callqueue import clock
from callqueue.hours import Calendar
from callqueue.planning import erlang
from callqueue.planning.daysim import SimOptions, SimResult, simulate
from callqueue.planning.forecast import forecast_today
from callqueue.planning.profile import INTERVAL_S, INTERVALS_PER_DAY, DayProfile, day_start_ms, draw_callers
from callqueue.settings import queue_settings
from core.config import Config

MIN_CALLS = 20  # a tier's quarter-hour service level is judged only on this many answered + abandoned calls
# (fewer is noise: one caller moves it by 5 % or more); the day's service level is always judged


@dataclass(frozen=True)
class Target:
    """A service-level target: `goal` of the calls answered within `within_s` seconds."""

    goal: float
    within_s: float


def targets_from_config(config: Config) -> dict[str, Target]:
    """Each tier's configured target (tiers.<t>.service_level_goal within service_level_s)."""
    return {t: Target(float(v["service_level_goal"]), float(v["service_level_s"])) for t, v in config.tiers.items()}


def parse_targets(text: str, tiers: Sequence[str]) -> dict[str, Target]:
    """Targets from "premium=0.9/15,standard=0.8/60" (goal as a fraction or a percentage, then seconds)."""
    out: dict[str, Target] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        tier, sep, spec = part.partition("=")
        goal_text, slash, secs = spec.partition("/")
        tier = tier.strip()
        if not sep or not slash:
            raise ValueError(f"target {part!r}: write tier=goal/seconds, e.g. premium=0.9/15")
        if tier not in tiers:
            raise ValueError(f"target {part!r}: {tier!r} is not one of {', '.join(tiers)}")
        try:
            goal = float(goal_text.strip().rstrip("%")) / (100 if goal_text.strip().endswith("%") else 1)
            within = float(secs)
        except ValueError:
            raise ValueError(f"target {part!r}: goal and seconds must be numbers") from None
        if not 0 < goal < 1 or within < 0:
            raise ValueError(f"target {part!r}: goal must be between 0 and 1 (or 0% and 100%), seconds >= 0")
        out[tier] = Target(goal, within)
    return out


@dataclass
class IntervalPlan:
    """One interval of a plan."""

    index: int
    start: str  # local HH:MM
    calls: float  # forecast
    load: float  # Erlangs
    erlang_agents: int
    agents: int
    service_level: dict[str, float | None] = field(default_factory=dict)  # simulated, per tier (None: too few calls)
    met: bool = True
    open: bool = True  # the line is open (closed: its callers book callbacks for the opening)


@dataclass
class StaffingPlan:
    """Agents per interval with the simulated service levels that justify them."""

    intervals: list[IntervalPlan]
    targets: dict[str, Target]
    day_service_level: dict[str, float | None]
    met: bool
    rounds: int  # simulations run
    simulated: bool
    runtime_s: float
    calls_simulated: int = 0

    def roster(self) -> list[int]:
        """Agents per interval, from local midnight."""
        return [p.agents for p in self.intervals]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready view (targets as {goal, within_s})."""
        return {
            "met": self.met, "simulated": self.simulated, "rounds": self.rounds, "runtime_s": round(self.runtime_s, 2),
            "calls_simulated": self.calls_simulated,
            "targets": {t: {"goal": v.goal, "within_s": v.within_s} for t, v in self.targets.items()},
            "day_service_level": self.day_service_level,
            "intervals": [{"start": p.start, "calls": round(p.calls, 1), "load_erlangs": round(p.load, 2),
                           "erlang_agents": p.erlang_agents, "agents": p.agents, "service_level": p.service_level,
                           "met": p.met, "open": p.open} for p in self.intervals],
        }


def erlang_plan(
    profile: DayProfile, targets: Mapping[str, Target], is_open: Callable[[int], bool]
) -> list[IntervalPlan]:
    """Erlang C per interval: the pooled load, the most agents any tier's target needs; 0 while closed.

    The quarter after an open one keeps its agents, so that callers queued at closing are answered.
    """
    rows: list[IntervalPlan] = []
    for i in range(max(profile.intervals, INTERVALS_PER_DAY)):  # a whole day, at least: room to finish the queue
        calls, aht = profile.calls_in(i), profile.mean_handle_s(i)
        load = erlang.offered_load(calls, INTERVAL_S, aht) if calls > 0 else 0.0
        need = 0
        if is_open(i) and load > 0:
            need = max(erlang.agents_needed(load, aht, tg.within_s, tg.goal)
                       for t, tg in targets.items() if t in profile.arrivals and profile.arrivals[t][i] > 0)
        elif i > 0 and is_open(i - 1) and not is_open(i):
            need = rows[-1].erlang_agents
        rows.append(IntervalPlan(i, f"{i // 4:02d}:{i % 4 * 15:02d}", calls, load, need, need, open=is_open(i)))
    return rows


def _judge(result: SimResult, rows: list[IntervalPlan], targets: Mapping[str, Target], checked: set[int]) -> bool:
    """Fill each row's simulated service levels from the statistics snapshots; True when every target is met."""
    ok = True
    for p in rows:
        p.met, p.service_level = True, {}
        snap = result.interval_stats[p.index] if p.index < len(result.interval_stats) else None
        for tier, tg in targets.items():
            f = snap["tiers"].get(tier) if snap else None
            # Judged on enough calls only (None otherwise, as when the statistics have no service level).
            sl = f["service_level"] if f is not None and f["answered"] + f["abandoned"] >= MIN_CALLS else None
            p.service_level[tier] = sl
            if sl is not None and p.index in checked and sl < tg.goal:
                p.met = False
        ok = ok and p.met
    for tier, tg in targets.items():
        sl = result.day_stats["tiers"].get(tier, {}).get("service_level")
        ok = ok and (sl is None or sl >= tg.goal)
    return ok


def _why(ok: bool, rows: list[IntervalPlan], result: SimResult, tg: Mapping[str, Target]) -> str:
    """A progress line's reason: where the targets were missed."""
    if ok:
        return "meets the targets"
    missed = []
    for p in rows:
        if not p.met:
            short = ", ".join(f"{t} {v:.0%}" for t, v in p.service_level.items() if v is not None and v < tg[t].goal)
            missed.append(f"{p.start} ({short})")
    day = [f"day {t}" for t in tg if (result.day_stats["tiers"].get(t, {}).get("service_level") or 1) < tg[t].goal]
    return "misses " + "; ".join(missed[:4] + (["…"] if len(missed) > 4 else []) + day)


def _drain(agents: list[int], rows: list[IntervalPlan], checked: set[int], is_open: Callable[[int], bool]) -> None:
    """A quarter just after closing keeps the agents of the last open one (they finish the queue)."""
    for p in rows:
        if p.index not in checked and p.index > 0 and p.erlang_agents and not is_open(p.index):
            agents[p.index] = agents[p.index - 1]


def plan_staffing(
    r: redis.Redis | None, profile: DayProfile, config: Config, *, targets: Mapping[str, Target] | None = None,
    seed: int = 1, day: datetime | None = None, calendar: Calendar | None = None, simulate_check: bool = True,
    max_rounds: int = 10, progress: Callable[[str], None] | None = None,
) -> StaffingPlan:
    """Agents per interval for `profile`'s forecast: Erlang C, then corrected by simulation on `r`.

    `r` must be an EMPTY scratch Redis database (each simulation flushes it); None with
    `simulate_check=False` (Erlang C only). `day` is any instant of
    the local day simulated (its opening hours apply; default 2026-03-02, a Monday);
    `calendar` None uses the configuration's opening hours.
    """
    t0 = time.perf_counter()
    qs = queue_settings(config)
    tg = dict(targets_from_config(config)) | dict(targets or {})
    # The statistics code measures service level against the tier's own T: make T the target's.
    sim_qs = replace(qs, service_level_s={t: tg[t].within_s if t in tg else s for t, s in qs.service_level_s.items()})
    cal = calendar or Calendar.from_config(config)
    when = day or datetime(2026, 3, 2, 12, tzinfo=qs.tz)
    start = day_start_ms(when.astimezone(qs.tz).date(), qs.tz)

    def is_open(i: int) -> bool:
        at = clock.from_ms(start + i * INTERVAL_S * 1000)
        return any(cal.is_open(at, t) for t in qs.tiers)

    rows = erlang_plan(profile, tg, is_open)
    plan = StaffingPlan(rows, tg, {}, met=False, rounds=0, simulated=False, runtime_s=0.0)
    if not simulate_check or r is None:
        plan.runtime_s = time.perf_counter() - t0
        return plan
    callers = draw_callers(profile, start, seed)
    plan.simulated, plan.calls_simulated = True, len(callers)
    checked = {p.index for p in rows if p.calls > 0 and is_open(p.index)}
    agents = [p.erlang_agents for p in rows]
    best: tuple[list[int], SimResult] | None = None
    locked: set[int] = set()  # intervals that failed when trimmed: kept at the best verified count
    result = None
    for rnd in range(1, max_rounds + 1):
        result = simulate(r, callers, agents, sim_qs, calendar=cal, start_ms=start, intervals=len(rows),
                          options=SimOptions(snapshots=True))
        probe = [replace(p, agents=agents[p.index]) for p in rows]
        ok = _judge(result, probe, tg, checked)
        plan.rounds = rnd
        if progress:
            progress(
                f"round {rnd}: {sum(agents)} agent-quarters, {_why(ok, probe, result, tg)} ({result.runtime_s:.1f} s)"
            )
        failed = [p for p in probe if not p.met]
        if not ok and not failed:  # every quarter passes but the day does not: treat them all as short
            failed = [p for p in probe if p.index in checked]
            for p in failed:
                p.service_level = {t: 0.0 for t in tg}
        if ok:
            best = (list(agents), result)
        elif best is None:
            # Not yet a roster that works: add agents where the target is missed, more the further off it is.
            for p in failed:
                short = max(
                    (tg[t].goal - v for t, v in p.service_level.items() if v is not None and t in tg), default=0.02
                )
                agents[p.index] += max(1, math.ceil(agents[p.index] * min(0.25, short)))
            continue
        else:
            # A trim went too far: those quarters (and the two before, whose queue they inherit) go back and
            # stay. If one that had gone back already fails again, stop trimming: the best roster stands.
            if any(p.index in locked for p in failed):
                break
            for p in failed:
                for i in (p.index - 2, p.index - 1, p.index):
                    if i in checked:
                        agents[i] = best[0][i]
                        locked.add(i)
            continue
        trimmable = [i for i in sorted(checked) if i not in locked and agents[i] > 1]
        if not trimmable:
            break
        for i in trimmable:  # fewer agents wherever the last verified roster met the targets
            agents[i] -= max(1, agents[i] // 25)
        _drain(agents, rows, checked, is_open)
    if best is not None:
        roster, result = best
        for p in rows:
            p.agents = roster[p.index]
        plan.met = _judge(result, rows, tg, checked)
    else:
        assert result is not None
        for p in rows:
            p.agents = agents[p.index]
        _judge(result, rows, tg, checked)
    plan.day_service_level = {t: result.day_stats["tiers"].get(t, {}).get("service_level") for t in tg}
    plan.runtime_s = time.perf_counter() - t0
    return plan


def staffing_for_today(
    measured: Sequence[Mapping[str, float]], now: datetime, config: Config, *,
    baseline: DayProfile | None = None, targets: Mapping[str, Target] | None = None,
    scratch: redis.Redis | None = None, seed: int = 1,
) -> StaffingPlan:
    """Agents needed per quarter of today, for the supervisor dashboard.

    `measured[i]` is {tier: calls offered} in the local quarter i since midnight (e.g. from
    callqueue.reports.history.intervals(...)["intervals"][i]["tiers"][tier]["offered"]); quarters not yet over
    are forecast from `baseline` (default: the shipped day), scaled by today's volume so far (forecast.py).
    Without `scratch`: Erlang C only (milliseconds; fine for a page). With `scratch`, an EMPTY Redis
    database that is NOT the live one (it is flushed): checked and corrected by simulation (seconds).
    """
    profile = forecast_today(measured, now, config, baseline)
    return plan_staffing(scratch, profile, config, targets=targets, day=now, seed=seed,
                         simulate_check=scratch is not None)
