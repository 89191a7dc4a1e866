"""What `hotline bench` reads from outside the hotline: process RSS and CPU from /proc, Redis INFO and keys."""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

_TICK = os.sysconf("SC_CLK_TCK")
_SID = re.compile(r"CA[0-9a-f]{32}")
_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{32}")
_NUM = re.compile(r"\d+")


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (gunicorn's workers under its master)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in kB (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int, reaped: bool = False) -> float:
    """User + system CPU seconds of `pid`; with `reaped`, plus its children that have exited (rq's work horses)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if reaped else 0)
    return ticks / _TICK


def postgres_cpu_s() -> float:
    """CPU seconds of the local PostgreSQL server's processes, exited backends included (0 when none runs here).

    Every postgres process on this host counts, the bench's or not: on a shared server it is an upper bound.
    """
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        fields = _stat(int(entry))
        if fields is not None:  # backends exit and are reaped by the postmaster: count its reaped children too
            total += cpu_s(int(entry), reaped=not _is_postgres(int(fields[1])))
    return total


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "postgres"
    except OSError:
        return False


@dataclass
class CpuMeter:
    """CPU seconds spent by each part of the stack between two readings."""

    web: list[int]  # gunicorn's master and workers
    rq: list[int]  # rq workers (their forked work horses are counted once reaped)
    other: list[int]  # cron
    postgres: bool = False  # the database is a PostgreSQL server on this host
    start: dict[str, float] = field(default_factory=dict)

    def read(self, r: redis.Redis) -> dict[str, float]:
        """Cumulative CPU seconds per part now."""
        info = r.info("cpu")
        times = os.times()
        pg = {"postgres_host": postgres_cpu_s()} if self.postgres else {}
        return {**pg,
            "web": sum(cpu_s(p) for p in self.web),
            "rq_workers": sum(cpu_s(p, reaped=True) for p in self.rq),
            "cron": sum(cpu_s(p) for p in self.other),
            "redis": float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0)),
            "bench_client": times.user + times.system,  # this process: the simulated callers and Twilio's REST API
        }

    def begin(self, r: redis.Redis) -> None:
        """Start a measurement."""
        self.start = self.read(r)

    def since(self, r: redis.Redis) -> dict[str, float]:
        """CPU seconds per part since `begin`."""
        now = self.read(r)
        return {k: round(now[k] - self.start.get(k, 0.0), 3) for k in now}


def rq_jobs(redis_url: str) -> dict[str, float]:
    """Jobs the rq workers have run (done or failed) and the seconds spent inside them, from rq's worker records."""
    from rq import Worker

    from core.redisconn import make_redis

    conn = make_redis(redis_url, decode=False)
    try:
        workers = Worker.all(connection=conn)
        return {"jobs": sum(w.successful_job_count + w.failed_job_count for w in workers),
                "working_s": sum(w.total_working_time for w in workers)}
    finally:
        conn.close()


def command_stats(r: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats; every client, workers included)."""
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in r.info("commandstats").items()}


def keyspace(r: redis.Redis) -> dict[str, int]:
    """Keys of this database, those with an expiry, and the server's used memory: cheap enough to sample."""
    db = r.connection_pool.connection_kwargs.get("db", 0)
    space = r.info("keyspace").get(f"db{db}", {})
    return {"keys": int(space.get("keys", 0)), "expiring": int(space.get("expires", 0)),
            "used_memory": int(r.info("memory")["used_memory"])}


def pattern(key: str) -> str:
    """A key with its CallSid, ids and numbers replaced, to group keys of one kind."""
    return _NUM.sub("{n}", _ID.sub("{id}", _SID.sub("{sid}", key)))


def snapshot(r: redis.Redis) -> dict[str, tuple[int, int]]:
    """Every key with its TTL (-1: none) and, for keys without one, its size (members of a set, zset, list, hash)."""
    names = list(r.scan_iter(count=1000))
    out: dict[str, tuple[int, int]] = {}
    for i in range(0, len(names), 500):
        chunk = names[i:i + 500]
        pipe = r.pipeline(transaction=False)
        for k in chunk:
            pipe.ttl(k)
            pipe.type(k)
        replies = pipe.execute()
        sized = r.pipeline(transaction=False)
        persistent = []
        for k, ttl, kind in zip(chunk, replies[::2], replies[1::2], strict=True):
            out[k] = (int(ttl), 0)
            size = {"zset": sized.zcard, "set": sized.scard, "list": sized.llen, "hash": sized.hlen}.get(kind)
            if int(ttl) == -1 and size is not None:
                size(k)
                persistent.append(k)
        for k, n in zip(persistent, sized.execute() if persistent else [], strict=True):
            out[k] = (-1, int(n))
    return out


def growth(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], fixed: frozenset[str],
    records: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """How the keys changed, by kind.

    `rq:*` keys are rq's bookkeeping (worker registrations and heartbeats, queue registries, the cron
    scheduler); the hotline's jobs keep no result (result_ttl=0) and a failed one is counted apart, so rq's
    keys are reported but not held against the hotline. Hotline keys with a TTL (a call's session and state,
    the per-minute and per-day counters) expire by design and are reported per kind. `fixed` names the
    hotline's structural keys (the queue order, the pen, per-tier and per-agent keys): made on first use,
    one each whatever the number of calls. What must not happen: any other new hotline key without a TTL,
    or a persistent collection holding more members than before. `records` are hashes of named fields (an agent's
    presence: state, since, the last call…) rather than collections: a field may first appear during the run, so
    their size is not compared; `data_fields` finds a field named by data instead.
    """
    new = {k: v for k, v in after.items() if k not in before}
    structural_new = sorted(k for k, (ttl, _) in new.items() if ttl == -1 and k in fixed)
    persistent_new = sorted(
        k for k, (ttl, _) in new.items() if ttl == -1 and not k.startswith("rq:") and k not in fixed
    )
    grown = {k: [before[k][1], size] for k, (ttl, size) in after.items()
             if k in before and ttl == -1 and before[k][0] == -1 and size > before[k][1] and not k.startswith("rq:")
             and k not in records}
    expiring = Counter(pattern(k) for k, (ttl, _) in new.items() if ttl >= 0 and not k.startswith("rq:"))
    max_ttl = {p: 0 for p in expiring}
    for k, (ttl, _) in new.items():
        if ttl >= 0 and not k.startswith("rq:"):
            max_ttl[pattern(k)] = max(max_ttl[pattern(k)], ttl)
    rq_new = Counter(pattern(k) for k in new if k.startswith("rq:"))
    return {
        "before": len(before),
        "after": len(after),
        "persistent_new": persistent_new[:20],
        "persistent_new_count": len(persistent_new),
        "structural_new": structural_new,
        "collections_grown": dict(list(grown.items())[:20]),
        "expiring_new": {p: {"keys": n, "max_ttl_s": max_ttl[p]} for p, n in expiring.most_common()},
        "rq_new": dict(rq_new.most_common()),
        "gone": len([k for k in before if k not in after]),
    }


def data_fields(r: redis.Redis, hashes: frozenset[str]) -> dict[str, list[str]]:
    """Per hash, its fields named by data (a CallSid, an id, a number) rather than by the hotline: a record that
    grows with the calls."""
    pipe = r.pipeline(transaction=False)
    names = sorted(hashes)
    for k in names:
        pipe.hkeys(k)
    found = {}
    for k, fields in zip(names, pipe.execute(), strict=True):
        named = [f.decode() if isinstance(f, bytes) else str(f) for f in fields]
        odd = [f for f in named if pattern(f) != f]
        if odd:
            found[k] = odd[:5]
    return found
