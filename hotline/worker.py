"""RQ worker start-up: one queue for the hotline's jobs, with rq's scheduler for delayed jobs.

The worker runs jobs in its own process (rq's SimpleWorker) with the services it built at start-up.
The hotline's jobs are short store-and-REST steps; a forked work horse per job rebuilt the
services and re-imported half the project each time (~280 ms of CPU per job under load).
"""
from __future__ import annotations

from redis import Redis
from rq import Queue, SimpleWorker

from hotline.redisconn import make_redis
from hotline.services import JOB_QUEUE, Services


def build_worker(svc: Services, name: str | None = None) -> SimpleWorker:
    """A worker on the hotline queue, connected to the same Redis as the web app; its jobs use `svc`."""
    from hotline import jobs

    jobs.adopt(svc)
    conn: Redis = make_redis(svc.redis_url, timeout_s=30.0, decode=False)
    return SimpleWorker([Queue(JOB_QUEUE, connection=conn)], connection=conn, name=name)


def run_worker(burst: bool = False) -> None:
    """Start a worker from the environment (the embedded Redis must already run, e.g. under `hotline run`)."""
    from hotline.cli import open_services

    svc = open_services()
    try:
        build_worker(svc).work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        svc.close()


SWEEP_EVERY_S = 5


def run_cron() -> None:
    """Enqueue the periodic sweep (wrap-ups, stale offers, dispatch, due callbacks) every few seconds."""
    from rq.cron import CronScheduler

    from hotline import jobs
    from hotline.cli import open_services

    svc = open_services()
    try:
        scheduler = CronScheduler(connection=make_redis(svc.redis_url, timeout_s=30.0, decode=False))
        scheduler.register(jobs.sweep, JOB_QUEUE, interval=SWEEP_EVERY_S, job_timeout=120, result_ttl=0)
        scheduler.start()
    finally:
        svc.close()
