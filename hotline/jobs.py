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
