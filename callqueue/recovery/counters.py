"""Today's live counters, added back from the call records once Redis lost its data.

The marker key `hl:kept` is present while Redis has kept its data since the last full rebuild: a
restarted empty Redis has none, so its absence says the day's counters must be added back.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from callqueue import clock
from callqueue.records import CallRecord
from callqueue.reports import stats
from callqueue.settings import queue_settings
from core import keys
from core.config import Config

KEPT_TTL_S = 7 * 86400       # refreshed by every full rebuild; it expires: nothing stays for ever


def restore_day_counters(session: Session, r: redis.Redis, now: datetime, config: Config) -> int:
    """Today's live counters after Redis lost its data (the KEPT key is gone); returns the fields added.

    Race-free, without overwriting: everything Redis counts happened after its server started (it came back
    empty), so the events of today before that instant are added from the call records, less the `offered`
    that putting waiting callers back counted again (any call from before the start that Redis knows was
    put back). Counters and KEPT change in one transaction, so a crash cannot add twice. Only the day's
    hash: the 15-minute window's minute buckets are whole again 15 minutes after the restart.
    """
    qs = queue_settings(config)
    ms = clock.to_ms(now)
    day_key, _ = clock.bucket_keys(ms, qs.tz)
    day_start = clock.from_ms(clock.day_start_ms(ms, qs.tz))
    # The app's clock and Redis's must agree (both the wall clock in production): a clock that runs ahead of
    # Redis's would place its start later and add events Redis had already counted.
    started = clock.canonical(now) - timedelta(seconds=int(r.info("server")["uptime_in_seconds"]))
    added: dict[str, int] = {}
    if started > day_start:
        counters, _ = stats.counters_from_records(session, started, qs, "today")
        R = CallRecord
        before = session.execute(select(R.call_sid, R.tier).where(R.queued >= day_start, R.queued <= started)).all()
        pipe = r.pipeline(transaction=False)
        for sid, _tier in before:
            pipe.exists(keys.call(sid))
        for (_sid, tier), known in zip(before, pipe.execute() if before else [], strict=True):  # an EXISTS each
            if known:
                counters[tier if tier in qs.boost_s else "guest"]["offered"] -= 1
        added = {keys.counter_field(tier, name): n for tier, c in counters.items() for name, n in c.items() if n}
    pipe = r.pipeline(transaction=True)
    for name, n in added.items():
        pipe.hincrby(day_key, name, n)
    if added:
        pipe.expire(day_key, keys.DAY_TTL_S)
    pipe.set(keys.KEPT, "1", ex=KEPT_TTL_S)
    pipe.execute()
    return len(added)
