"""Today's forecast for the staffing plan: the quarters already over as measured, the rest from a baseline day."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from callqueue.planning.profile import DayProfile, load_day, load_tiers
from callqueue.settings import queue_settings
from core.config import Config


def forecast_today(measured: Sequence[Mapping[str, float]], now: datetime, config: Config,
                   baseline: DayProfile | None = None) -> DayProfile:
    """Today's calls per quarter: measured where the quarter is over, else the baseline scaled to today so far.

    `measured[i]` is {tier: calls offered} in local quarter i since midnight; the baseline (default: the
    shipped day) is scaled by how today's calls so far compare with its own over the same quarters.
    """
    qs = queue_settings(config)
    base = baseline or load_day(None, load_tiers(None, qs.tiers))
    local = now.astimezone(qs.tz)
    done = min(len(measured), (local.hour * 60 + local.minute) // 15)  # quarters fully over
    seen = sum(sum(measured[i].values()) for i in range(done))
    expected = sum(base.calls_in(i) for i in range(done))
    ratio = seen / expected if expected > 0 and seen > 0 else 1.0
    arrivals = {t: tuple(float(measured[i].get(t, 0.0)) if i < done else v[i] * ratio for i in range(len(v)))
                for t, v in base.arrivals.items()}
    return replace(base, arrivals=arrivals, roster=None, source="today")
