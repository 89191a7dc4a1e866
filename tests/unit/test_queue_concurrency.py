"""Many threads and several processes claiming at once: no caller or agent is ever claimed twice."""
from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib

from callqueue.live import agent_leg, conference, dispatch, ordering, presence
from callqueue.settings import QueueSettings
from core import keys

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BUSY = "test:busy_agents"  # agents a worker holds right now, kept in Redis so processes share it
CALLERS, AGENTS = 400, 12


def settings() -> QueueSettings:
    """No wrap-up: a freed agent is at once claimable by another worker, the hardest case."""
    return QueueSettings(
        boost_s={"premium": 600, "standard": 0}, max_wait_s={"premium": 420, "standard": 900},
        service_level_s={"premium": 20, "standard": 60}, wrap_up_s=0,
    )


def fill(r: redis_lib.Redis) -> None:
    qs = settings()
    for i in range(CALLERS):
        ordering.enqueue(r, f"CA{i:05d}", tier="premium" if i % 3 == 0 else "standard",
                         now=T0 + timedelta(milliseconds=i), settings=qs)
    for i in range(AGENTS):
        presence.set_state(r, f"agent{i:02d}", "available", T0, endpoint=f"client:agent{i:02d}")


def work(url: str, barrier_wait=None) -> list[tuple[str, str]]:
    """Claim until the queue is empty; every claim is checked against the shared busy set, then released."""
    r = redis_lib.Redis.from_url(url, decode_responses=True)
    qs = settings()
    now = T0 + timedelta(minutes=5)
    claims: list[tuple[str, str]] = []
    if barrier_wait is not None:
        barrier_wait()
    try:
        while True:
            offer = dispatch.claim_next(r, now)
            if offer is None:
                if r.zcard(keys.ORDER) == 0:
                    return claims
                continue  # every agent is held by another worker for a moment
            if not r.sadd(BUSY, offer.agent):
                raise AssertionError(f"{offer.agent} was given two callers at once")
            claims.append((offer.call_sid, offer.agent))
            dispatch.answered(r, offer.call_sid, offer.agent, now, qs)
            conference.caller_moved(r, offer.call_sid, offer.agent)
            r.srem(BUSY, offer.agent)  # before the agent is freed: after it, another worker may rightly claim them
            agent_leg.completed(r, offer.call_sid, offer.agent, now, qs)
    finally:
        r.close()


def check(claims: list[tuple[str, str]], r: redis_lib.Redis) -> None:
    sids = [sid for sid, _ in claims]
    assert len(sids) == len(set(sids)), "a caller was claimed twice"
    assert set(sids) == {f"CA{i:05d}" for i in range(CALLERS)}, "a caller was never claimed"
    assert r.zcard(keys.ORDER) == 0
    assert presence.counts(r, T0 + timedelta(minutes=6))["available"] == AGENTS
    assert r.zcard(keys.AVAILABLE) == AGENTS


def test_many_threads_claiming_at_once(services, redis):
    fill(redis)
    results: list[list[tuple[str, str]]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def run() -> None:
        try:
            results.append(work(services.redis_url, barrier.wait))
        except BaseException as exc:  # noqa: BLE001 (whatever a thread raises is handed to the test thread, which fails)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 16
    check([c for part in results for c in part], redis)
    assert sum(1 for part in results if part) > 1  # the work really was shared


def test_several_processes_claiming_at_once(services, redis):
    fill(redis)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no client or lock inherited by fork
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        # All four start claiming together: interpreters start at different speeds on a busy machine.
        barrier = manager.Barrier(4)
        parts = pool.starmap(work, [(services.redis_url, barrier.wait)] * 4)
    check([c for part in parts for c in part], redis)
    assert sum(1 for part in parts if part) > 1


@pytest.mark.parametrize("agents", [1, 3])
def test_premium_callers_are_served_first_under_concurrency(services, redis, agents):
    """Whatever the interleaving, claims come out in score order (one claim at a time is atomic)."""
    qs = settings()
    for i in range(60):
        ordering.enqueue(redis, f"CA{i:03d}", tier="premium" if i >= 30 else "standard",
                         now=T0 + timedelta(seconds=i), settings=qs)
    for i in range(agents):
        presence.set_state(redis, f"agent{i}", "available", T0, endpoint=f"client:agent{i}")
    claimed: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        r = redis_lib.Redis.from_url(services.redis_url, decode_responses=True)
        while True:
            with lock:  # serialise to observe the order; atomicity itself is tested above
                offer = dispatch.claim_next(r, T0 + timedelta(minutes=2))
                if offer is None:
                    if r.zcard(keys.ORDER) == 0:
                        return
                    continue
                claimed.append(offer.call_sid)
            dispatch.answered(r, offer.call_sid, offer.agent, T0, qs)
            conference.caller_moved(r, offer.call_sid, offer.agent)
            agent_leg.completed(r, offer.call_sid, offer.agent, T0, qs)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert claimed[:30] == [f"CA{i:03d}" for i in range(30, 60)]
    assert claimed[30:] == [f"CA{i:03d}" for i in range(30)]
