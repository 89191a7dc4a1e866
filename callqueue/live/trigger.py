"""The dispatch trigger: a dispatch run is asked for only when it could pair someone, and one at a time.

The edges ask after every commit that made a caller wait or an agent free. A run is queued only while an
agent is available (with none, it could neither pair a caller nor ring a callback: the agent who becomes
available asks) and no run is pending; the pending mark expires after `ttl_s`, so a lost job does not
stop every later request. The run clears the mark as it starts: a request made during a run queues the next.
"""
from __future__ import annotations

from collections.abc import Callable

import redis

from callqueue.live.scripts import Lua
from core import keys

_WANT_RUN = Lua("""
if redis.call('ZCARD', AVAIL) == 0 then return 0 end
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 1 end
return 0
""")


def request_run(r: redis.Redis, enqueue: Callable[[], object], ttl_s: int = 60) -> bool:
    """Ask for a dispatch run (`enqueue` queues the job) when one is worth it; True if one was. 1 round trip.

    Worth it: an agent is available and no run is pending (this request then marks one pending for `ttl_s`).
    Call after the commit that made a caller wait or an agent free.
    """
    if not _WANT_RUN(r, [keys.DISPATCH_PENDING], [ttl_s]):
        return False
    enqueue()
    return True


def run_started(r: redis.Redis) -> None:
    """A dispatch run begins: a request from now on queues another run, so none is lost."""
    r.delete(keys.DISPATCH_PENDING)
