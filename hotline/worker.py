"""RQ worker start-up: one queue for the hotline's jobs, with rq's scheduler for delayed jobs.

The worker runs jobs in its own process (rq's SimpleWorker) with the services it built at start-up.
The hotline's jobs are short store-and-REST steps; a forked work horse per job rebuilt the
services and re-imported half the project each time (~280 ms of CPU per job under load).
"""
from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import redis
from redis import Redis
from rq import Queue, SimpleWorker

from core.jobqueue import QUEUE
from core.logs import log_event
from core.redisconn import make_redis
from core.services import Services

log = logging.getLogger("hotline.worker")

# What rq lets escape (or quits on) when Redis stops or restarts under it.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RETRY_MAX_S = 5.0


class HotlineWorker(SimpleWorker):
    """rq's in-process worker, remembering whether a signal asked it to stop (rq's own flag is set only mid-job)."""

    stop_asked = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True
        try:
            super().request_stop(signum, frame)
        except REDIS_DOWN:
            # rq asks Redis whether a job runs before it stops; with Redis away its retry loop would swallow
            # the error, and the stop with it: stop now (a job's SQL work is rolled back).
            raise SystemExit(0) from None


def build_worker(svc: Services, name: str | None = None) -> HotlineWorker:
    """A worker on the hotline queue, connected to the same Redis as the web app; its jobs use `svc`."""
    from hotline import jobs

    jobs.adopt(svc)
    conn: Redis = make_redis(svc.redis_url, timeout_s=30.0, decode=False)
    return HotlineWorker([Queue(QUEUE, connection=conn)], connection=conn, name=name)


def wait_for_redis(url: str, what: str) -> None:
    """Return once Redis answers at `url` (retrying with a capped backoff); SIGTERM or Ctrl-C ends the process."""

    def stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    conn = make_redis(url, timeout_s=2.0)
    delay, since = 0.2, time.monotonic()
    try:
        while True:
            try:
                if conn.ping():
                    log_event(log, "redis answers again", logging.WARNING, process=what,
                              down_s=round(time.monotonic() - since, 1))
                    return
            except REDIS_DOWN:
                pass
            time.sleep(delay)  # a retry backoff while Redis is away: there is no event to wait on
            delay = min(delay * 2, RETRY_MAX_S)
    finally:
        conn.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _answers(url: str) -> bool:
    conn = make_redis(url, timeout_s=2.0)
    try:
        return bool(conn.ping())
    except REDIS_DOWN:
        return False
    finally:
        conn.close()


def _survive_redis(what: str, url: str, run_once: Callable[[], bool]) -> None:
    """Run `run_once` (True: it stopped on request) again each time Redis stops under it and comes back.

    rq's worker and cron scheduler quit (or let the error escape) when Redis goes away; without this,
    a Redis restart would leave no worker to dispatch or dial callbacks and no sweep to rebuild the queue.
    A quit with Redis still answering is retried a few times, then the process exits (not a Redis outage).
    """
    quick = 0
    while True:
        started = time.monotonic()
        try:
            if run_once():
                return
        except REDIS_DOWN as exc:
            log_event(log, "redis lost", logging.WARNING, process=what, error=type(exc).__name__)
        if _answers(url):
            quick = quick + 1 if time.monotonic() - started < 30 else 0
            if quick > 5:
                raise SystemExit(f"{what}: quit repeatedly while Redis answers; see the log")
        wait_for_redis(url, what)


def run_worker(burst: bool = False) -> None:
    """Start a worker from the environment (the embedded Redis must already run, e.g. under `hotline run`).

    When Redis stops, the worker waits for it and starts again (rq alone would quit).
    """
    from hotline.startup import open_services

    svc = open_services()

    def once() -> bool:
        worker = build_worker(svc)
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
        except REDIS_DOWN:
            if worker.stop_asked:
                return True  # stopping while Redis is away: rq's goodbye to Redis failed, the stop stands
            raise
        return burst or worker.stop_asked

    try:
        _survive_redis("worker", svc.redis_url, once)
    finally:
        svc.close()


SWEEP_EVERY_S = 5


def run_cron() -> None:
    """Enqueue the periodic sweep (wrap-ups, stale offers, rebuild after an outage, dispatch, due callbacks) every
    few seconds; when Redis stops, wait for it and start again."""
    from rq.cron import CronScheduler

    from hotline import jobs
    from hotline.startup import open_services

    class HotlineCron(CronScheduler):
        """rq's cron scheduler, remembering whether a signal asked it to stop."""

        stop_asked = False

        def _request_stop(self, signum: Any, frame: Any) -> None:
            self.stop_asked = True
            super()._request_stop(signum, frame)

    svc = open_services()

    def once() -> bool:
        scheduler = HotlineCron(connection=make_redis(svc.redis_url, timeout_s=30.0, decode=False))
        scheduler.register(jobs.sweep, QUEUE, interval=SWEEP_EVERY_S, job_timeout=120, result_ttl=0)
        try:
            scheduler.start()  # returns when asked to stop; a Redis failure escapes from it
        except REDIS_DOWN:
            if scheduler.stop_asked:
                return True
            raise
        return True

    try:
        _survive_redis("cron", svc.redis_url, once)
    finally:
        svc.close()
