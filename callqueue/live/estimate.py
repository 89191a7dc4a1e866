"""Estimated wait for a caller at position p, from the rate at which callers are being answered now.

rate = calls answered in the last 15 minutes ÷ the time over which they were answered (from the
start of the oldest minute that saw an answer, at least one minute); estimate = p ÷ rate. With
no answer in the window there is no measurement, and the estimate says so (seconds is None):
the waitUrl then announces the position without a time rather than inventing one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.settings import QueueSettings, queue_settings
from core import keys
from core.config import Config

WINDOW_MINUTES = clock.WINDOW_MINUTES


@dataclass(frozen=True)
class Estimate:
    """An estimated wait; `seconds` is None when it is unknown (nothing measured)."""

    seconds: float | None
    answered: int  # answers measured
    span_s: float  # over how long

    @property
    def known(self) -> bool:
        """True when there was data to estimate from."""
        return self.seconds is not None

    def minutes(self) -> int | None:
        """The estimate rounded up to whole minutes (at least 1), for announcing; None when unknown."""
        return None if self.seconds is None else max(1, math.ceil(self.seconds / 60))


def answer_rate(r: redis.Redis, now: Now, settings: Config | QueueSettings) -> tuple[int, float]:
    """(answers in the last 15 minutes, seconds they span), from the per-minute counters. 1 round trip."""
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    first_minute = ms // 60000 - (WINDOW_MINUTES - 1)
    fields = [keys.counter_field(t, "answered") for t in qs.tiers]
    pipe = r.pipeline(transaction=False)
    minutes = list(range(first_minute, ms // 60000 + 1))
    for m in minutes:
        pipe.hmget(keys.stats_minute(m), fields)
    total, oldest = 0, None
    for m, values in zip(minutes, pipe.execute(), strict=True):  # one HMGET reply per minute
        n = sum(int(v) for v in values if v is not None)
        if n and oldest is None:
            oldest = m
        total += n
    return total, span_s(oldest, ms)


def span_s(oldest_minute: int | None, now_ms: int) -> float:
    """Seconds the measured answers span: from the start of the oldest minute with one, at least a minute."""
    return 0.0 if oldest_minute is None else max(60.0, (now_ms - oldest_minute * 60000) / 1000)


def estimate_wait(r: redis.Redis, position: int, now: Now, settings: Config | QueueSettings) -> Estimate:
    """Seconds until the caller at `position` (1-based) is likely answered, at the measured rate. 1 round trip."""
    answered, span = answer_rate(r, now, settings)
    return from_rate(position, answered, span)


def from_rate(position: int, answered: int, span: float) -> Estimate:
    """The estimate for `position` from `answered` answers measured over `span` seconds."""
    if answered == 0:
        return Estimate(seconds=None, answered=0, span_s=0.0)
    per_answer = span / answered
    return Estimate(seconds=round(max(1, position) * per_answer, 1), answered=answered, span_s=span)
