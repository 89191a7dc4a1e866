"""Which store (Redis, the SQL database) is down, as one web process sees it, and the request hooks that use it.

A store that failed slowly (a hung server: it cost the request its timeout) is skipped for BREAK_S seconds,
so a hung Redis costs one request per process its timeout, not every request. A refused connection costs
nothing and is tried again by the next request, so recovery is noticed at once.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import redis
from flask import Response, g, request
from sqlalchemy import exc as sa_exc

from callqueue.recovery import rebuild
from core.context import services
from core.logs import log_event
from core.services import Services
from webhooks.routes.voice import bp

log = logging.getLogger("hotline.degraded")

REDIS, SQL = "redis", "sql"
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)
SQL_ERRORS: tuple[type[BaseException], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError)
SLOW_S = 1.0   # a store that took this long to fail is skipped for a while
BREAK_S = 2.0
# Routes that need neither store to start (each tries what it needs itself).
OWN = frozenset(
    {"voice.degraded_pin", "voice.degraded_offer", "voice.degraded_hold", "voice.fallback", "voice.unknown_step"}
)


class StoreDown(RuntimeError):
    """A store known to be down this instant (it failed slowly a moment ago): not tried."""

    def __init__(self, store: str) -> None:
        super().__init__(f"{store} is skipped for a moment after a slow failure")
        self.store = store


def failed_store(exc: BaseException) -> str | None:
    """"redis" or "sql" when `exc` (or what caused it) is a store being unreachable; None for anything else."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, StoreDown):
            return seen.store
        if isinstance(seen, REDIS_ERRORS):
            return REDIS
        if isinstance(seen, SQL_ERRORS):
            return SQL
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass
class Health:
    """One process's view of the stores: which to skip until when; whether Redis failed since the last rebuild."""

    skip_until: dict[str, float] = field(default_factory=lambda: {REDIS: 0.0, SQL: 0.0})
    redis_dirty: bool = False
    failures: dict[str, int] = field(default_factory=lambda: {REDIS: 0, SQL: 0})


def health(svc: Services) -> Health:
    """This process's Health (kept with its services)."""
    h = svc.extras.get("degraded.health")
    if h is None:
        h = svc.extras["degraded.health"] = Health()
    return h


def skipped(svc: Services, store: str) -> bool:
    """True while `store` is skipped after a slow failure."""
    return time.monotonic() < health(svc).skip_until[store]


def note_failure(svc: Services, store: str, exc: BaseException | None = None) -> None:
    """Remember that `store` failed in this request (and skip it a while if the failure was slow)."""
    h = health(svc)
    g.store_failed = True
    h.failures[store] += 1
    if store == REDIS:
        h.redis_dirty = True  # the queue may have changed in SQL only: rebuild Redis once it answers
    if isinstance(exc, StoreDown):
        return
    if time.perf_counter() - g.get("t0", time.perf_counter()) >= SLOW_S:
        h.skip_until[store] = time.monotonic() + BREAK_S


@bp.before_request
def skip_stores_known_down() -> None:
    """A store that failed slowly a moment ago is not tried again yet: straight to the answer without it."""
    if request.endpoint in OWN:
        return
    svc = services()
    for store in (REDIS, SQL):
        if skipped(svc, store):
            raise StoreDown(store)


@bp.after_request
def note_recovery(response: Response) -> Response:
    """After an outage, the first request that went through normally asks for a rebuild of Redis from SQL."""
    if g.get("store_failed") or request.endpoint in OWN or response.status_code != 200:
        return response
    svc = services()
    h = health(svc)
    if h.redis_dirty:
        try:
            rebuild.flag(svc.redis)
            h.redis_dirty = False
            log_event(log, "redis answers again: rebuild requested", logging.WARNING)
        except REDIS_ERRORS:
            pass
    return response
