"""The queue policies the day simulation compares, each as plain QueueSettings for the real ordering code.

The order is always one sorted set scored arrival − boost(tier) (callqueue/live/ordering.py); a policy is
only a choice of boosts, so every policy runs through the same scripts:
- ours: the configured boosts (priority with a ceiling, DESIGN "Queue order");
- fcfs: every boost 0, first come first served;
- strict: boosts so far apart that a better class always wins, whatever the waits (premium always
  first). Classes are the distinct configured boosts, best first, so tiers that share a boost
  (standard and guest by default) share a class, as they do under our policy.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from callqueue.planning.daysim import SimResult
from callqueue.planning.profile import INTERVAL_S
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

POLICIES = ("ours", "fcfs", "strict")
LABELS = {"ours": "ours (arrival − boost)", "fcfs": "first come first served", "strict": "strict priority"}
# Further apart than any wait: 1e9 s is ~32 years. Scores stay below 2^53 ms, so they keep millisecond
# precision in a double (epoch ~1.8e9 s + 4 classes × 1e9 s).
STRICT_STEP_S = 1e9


def policy_settings(settings: Config | QueueSettings, policy: str) -> QueueSettings:
    """The queue settings that make the real ordering code follow `policy` (ours | fcfs | strict)."""
    qs = queue_settings(settings)
    if policy == "ours":
        return qs
    if policy == "fcfs":
        return replace(qs, boost_s={t: 0.0 for t in qs.boost_s})
    if policy == "strict":
        classes = sorted({float(b) for b in qs.boost_s.values()})  # worst class first: rank 0
        return replace(qs, boost_s={t: classes.index(float(b)) * STRICT_STEP_S for t, b in qs.boost_s.items()})
    raise ValueError(f"policy: must be one of {', '.join(POLICIES)}, not {policy!r}")


def max_overtake_s(settings: Config | QueueSettings, tier: str) -> float:
    """How much later than a `tier` caller another caller can arrive and still be served first (the ceiling)."""
    qs = queue_settings(settings)
    return max(qs.boost(t) for t in qs.tiers) - qs.boost(tier)


# --- reading a simulated day (callqueue/planning/daysim.py) ------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile (0 < q <= 1) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def answered_waits(result: SimResult, tier: str | None = None) -> list[float]:
    """Waits (s) of the answered queue entries, as dispatch recorded them, of one tier or all."""
    return [r.wait_s for r in result.records
            if r.outcome == "answered" and r.wait_s is not None and (tier is None or r.tier == tier)]


def overtaken(result: SimResult, ceiling: Config | QueueSettings) -> dict[str, int]:
    """Per tier: callers served after someone who arrived more than the ceiling (boost gap) later.

    Under our policy this is 0 by construction of the score; strict priority breaks it whenever a
    premium caller arrives while a standard caller has waited longer than the boost. The arrival a
    score stands for is score + boost (a callback's is the opening it was booked for). Callbacks
    are not checked as the overtaken one: they keep an earlier place by design.
    """
    qs = queue_settings(ceiling)
    own = result.settings
    served = sorted((r for r in result.records if r.claimed_ms is not None and r.score is not None),
                    key=lambda r: r.claimed_ms or 0)
    out = {t: 0 for t in qs.tiers}
    latest = -math.inf  # the latest arrival among those served so far
    for r in served:
        arrived = (r.score or 0.0) + own.boost(r.tier)
        # Whoever was served before r queued arrived before that too, so cannot beat r by the gap: the running
        # maximum over everyone served before r is as good as the maximum over those served during r's wait.
        if not r.via_callback and latest > arrived + max_overtake_s(qs, r.tier) + 0.001:
            out[r.tier] = out.get(r.tier, 0) + 1
        latest = max(latest, arrived)
    return out


def tier_rows(result: SimResult, policy: str, ceiling: Config | QueueSettings) -> list[dict[str, Any]]:
    """One row per tier: offered, answered, abandoned, ASA and service level from the statistics code
    (stats.live for the simulated day), p95 and maximum answered wait from the records."""
    over = overtaken(result, ceiling)
    rows = []
    for tier, f in result.day_stats["tiers"].items():
        waits = answered_waits(result, tier)
        rows.append({
            "policy": policy, "tier": tier, "offered": f["offered"], "answered": f["answered"],
            "abandoned": f["abandoned"], "short_abandoned": f["short_abandoned"], "asa_s": f["asa_s"],
            "service_level": f["service_level"], "p95_wait_s": percentile(waits, 0.95),
            "max_wait_s": max(waits, default=None), "overtaken": over.get(tier, 0),
        })
    return rows


def wait_series(result: SimResult, tier: str, intervals: int) -> tuple[list[float | None], list[float | None]]:
    """Mean and maximum answered wait per 15-minute interval of queueing, for one tier (None: no calls)."""
    buckets: list[list[float]] = [[] for _ in range(intervals)]
    for r in result.records:
        if r.tier == tier and r.outcome == "answered" and r.wait_s is not None and r.queued_ms is not None:
            i = (r.queued_ms - result.start_ms) // (INTERVAL_S * 1000)
            if 0 <= i < intervals:
                buckets[i].append(r.wait_s)
    return ([sum(b) / len(b) if b else None for b in buckets], [max(b) if b else None for b in buckets])


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """The policy comparison as a fixed-width text table."""
    head = f"{'policy':<8} {'tier':<15} {'offered':>7} {'answered':>8} {'abandon':>7} {'ASA s':>7} {'SL':>6} " \
           f"{'p95 s':>7} {'max s':>7} {'overtaken':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        def num(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)
        sl = "-" if r["service_level"] is None else f"{r['service_level']:.1%}"
        lines.append(f"{r['policy']:<8} {r['tier']:<15} {r['offered']:>7} {r['answered']:>8} {r['abandoned']:>7} "
                     f"{num(r['asa_s'], '.1f'):>7} {sl:>6} {num(r['p95_wait_s'], '.0f'):>7} "
                     f"{num(r['max_wait_s'], '.0f'):>7} {r['overtaken']:>9}")
    return "\n".join(lines)
