"""What RQ jobs run with: the worker process's services, rebuilt after a fork."""
from __future__ import annotations

import os

from hotline.services import Services

_cache: dict[int, Services] = {}


def job_services() -> Services:
    """The services for the current process (RQ forks a work horse per job: never share a pool across a fork)."""
    pid = os.getpid()
    svc = _cache.get(pid)
    if svc is None:
        from hotline.app import create_services

        for other_pid, other in list(_cache.items()):
            # Inherited from the parent: drop the pooled connections without closing the parent's sockets.
            other.engine.dispose(close=False)
            del _cache[other_pid]
        svc = create_services()
        _cache[pid] = svc
    return svc


def dispatch() -> int:
    """RQ job: pair waiting callers with available agents and move them (see webhooks.dispatcher)."""
    from webhooks.dispatcher import dispatch_all

    return dispatch_all(job_services())


def sweep() -> dict[str, int]:
    """RQ job: end due wrap-ups, return stale offers, then dispatch whoever can be paired now."""
    from callqueue.dispatch import sweep as sweep_queue
    from webhooks.dispatcher import dispatch_all

    svc = job_services()
    result = sweep_queue(svc.redis, svc.clock(), svc.config)
    result["moved"] = dispatch_all(svc)
    return result
