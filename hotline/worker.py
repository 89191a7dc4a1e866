"""RQ worker start-up: one queue for the hotline's jobs, with rq's scheduler for delayed jobs."""
from __future__ import annotations

from redis import Redis
from rq import Queue, Worker

from hotline.redisconn import make_redis
from hotline.services import Services

QUEUE_NAME = "hotline"


def job_queue(redis_url: str, timeout_s: float = 5.0) -> Queue:
    """The RQ queue the hotline enqueues on (rq needs a bytes client, not a decoding one)."""
    return Queue(QUEUE_NAME, connection=make_redis(redis_url, timeout_s=timeout_s, decode=False))


def build_worker(svc: Services, name: str | None = None) -> Worker:
    """A worker on the hotline queue, connected to the same Redis as the web app."""
    conn: Redis = make_redis(svc.redis_url, timeout_s=30.0, decode=False)
    return Worker([Queue(QUEUE_NAME, connection=conn)], connection=conn, name=name)


def run_worker(burst: bool = False) -> None:
    """Start a worker from the environment (the embedded Redis must already run, e.g. under `hotline run`)."""
    from hotline.cli import open_services

    svc = open_services()
    try:
        build_worker(svc).work(burst=burst, with_scheduler=True)
    finally:
        svc.close()
