"""`hotline bench queue`: enqueue and claim latency with many callers waiting, and memory per caller.

Plain functions on a Redis client, returning dicts; the CLI prints them. They fill and flush the
database they are given, so they refuse one that is not empty: point them at a scratch database
(e.g. `redis://host:6379/15`), never at the hotline's live one.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from callqueue.clock import to_ms
from callqueue.live import dispatch, ordering
from callqueue.live.scripts import Lua
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

SIZES = (1_000, 10_000, 100_000)
START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # a fixed clock: results do not depend on today

_AGENTS = Lua("""
local now = ARGV[1]
for i = 2, #ARGV do
  redis.call('HSET', agentkey(ARGV[i]), 'endpoint', 'client:' .. ARGV[i])
  agent_to(ARGV[i], 'available', now)
end
return #ARGV - 1
""")


class BenchError(RuntimeError):
    """The bench cannot run on this database."""


def _summary(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in samples_s)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return {"median_ms": round(statistics.median(ms), 4), "p99_ms": round(p99, 4), "samples": len(ms)}


def _timed(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def _used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def _tiers(qs: QueueSettings) -> list[str]:
    return qs.tiers or ["standard"]


def bench_size(r: redis.Redis, waiting: int, settings: Config | QueueSettings, samples: int = 1000) -> dict[str, Any]:
    """With `waiting` callers in the queue: enqueue and claim-best latency, and memory per waiting caller."""
    qs = queue_settings(settings)
    tiers = _tiers(qs)
    r.flushdb()
    before = _used_memory(r)
    t0 = time.perf_counter()
    ordering.enqueue_many(r, ((f"CAfill{i:08d}", tiers[i % len(tiers)]) for i in range(waiting)), START, qs)
    fill_s = time.perf_counter() - t0
    per_caller = (_used_memory(r) - before) / waiting if waiting else 0.0
    later = START + timedelta(hours=1)

    def enqueue_one(i: int) -> None:
        ordering.enqueue(
            r, f"CAbench{i:08d}", tier=tiers[i % len(tiers)], now=later + timedelta(milliseconds=i), settings=qs
        )

    enqueue = _timed(enqueue_one, samples)
    _AGENTS(r, [], [to_ms(later), *(f"bench{i:06d}" for i in range(samples))])
    claim_at = later + timedelta(minutes=5)
    claim = _timed(lambda _i: dispatch.claim_next(r, claim_at), samples)
    return {
        "waiting": waiting,
        "fill_s": round(fill_s, 3),
        "enqueue": _summary(enqueue),
        "claim_best": _summary(claim),
        "memory_per_waiting_caller_bytes": round(per_caller, 1),
    }


def bench_queue(
    r: redis.Redis, settings: Config | QueueSettings, sizes: tuple[int, ...] = SIZES, samples: int = 1000,
) -> dict[str, Any]:
    """Run `bench_size` for each size on an empty scratch database, which is emptied again afterwards."""
    if r.dbsize() != 0:
        raise BenchError("the bench fills and flushes its database: give it an empty one (e.g. redis://…/15)")
    try:
        runs = [bench_size(r, n, settings, samples) for n in sizes]
    finally:
        r.flushdb()
    info = r.info("server")
    return {
        "redis_version": info.get("redis_version"),
        "round_trips": {"enqueue": 1, "claim_best": 1},
        "runs": runs,
    }
