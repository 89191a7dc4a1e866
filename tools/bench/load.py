"""`hotline bench`: whole simulated calls through the hotline under gunicorn, timed per webhook step.

One run: start the stack (tools/bench/stack.py), let the agents log on through the JSON API, drive
`calls` callers (or, with `duration`, a steady load for that long) with `concurrency` at a time, wait
until every call and callback has ended, check the end state (tools/bench/check.py), then drive the
bench-mode constant endpoint with the same HTTP client at the same concurrency. Speed is reported,
never asserted.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from simulator import CallHandle, Script
from simulator.transport import HttpTransport
from tools.bench import probe
from tools.bench.check import end_state, settle
from tools.bench.report import summarize
from tools.bench.stack import PIN, Stack

TIERS = {"annual_premium": 0.10, "premium": 0.20, "standard": 0.45, "guest": 0.25}
PREFIX = {"annual_premium": "137", "premium": "138", "standard": "139", "guest": "136"}
PATIENCE = (None, None, None, 40.0, 400.0, 900.0)  # simulated seconds on hold before hanging up (None: waits)
CALLBACK_EVERY = 25  # one caller in 25 presses 1 on hold, confirms the number and is called back
CALL_DEADLINE_S = 300.0  # real seconds a call may take before the run counts it as stuck


@dataclass(frozen=True)
class Options:
    """What `hotline bench` was asked for."""

    calls: int = 500
    concurrency: int = 50
    workers: int = 2
    agents: int = 20
    redis_url: str = ""
    database_url: str = ""
    duration: float = 0.0
    quick: bool = False
    scale: float = 0.001
    rq_workers: int = 2
    seed: int = 7
    sample_every: float = 5.0


@dataclass(frozen=True)
class Caller:
    """One simulated caller: tier, number and what they do."""

    tier: str
    phone: str
    script: Script
    books_callback: bool


def plan(n: int, rng: random.Random) -> list[Caller]:
    """`n` callers: a mix of tiers, straight to an agent or through a menu category, some impatient, a few booking callbacks."""
    used = {t: 0 for t in TIERS}
    out = []
    for i in range(n):
        tier = rng.choices(list(TIERS), weights=list(TIERS.values()))[0]
        phone = f"+86{PREFIX[tier]}{used[tier]:08d}"  # a valid mainland mobile number, unique per caller
        used[tier] += 1
        category = (str(rng.randint(1, 6)),) if rng.random() < 0.5 else ()  # hear a self-service answer first
        keys = (
            (*category, "0", "*#") if tier == "guest" else (PIN + "#", *category, "0")
        )  # a guest skips the member number
        books = i % CALLBACK_EVERY == 7  # one in CALLBACK_EVERY, and one even in a --quick run
        out.append(
            Caller(
                tier,
                phone,
                Script(
                    answers=keys,
                    when_answers_run_out="hangup",
                    hangup_after_queue_seconds=None if books else rng.choice(PATIENCE),
                    hold_answers=("1", "1") if books else (),
                ),
                books,
            )
        )  # "1": call me back, "1": on this number
    return out


class Recorder:
    """The transport's observer: every webhook's step, seconds, status and the round trips its answer reports."""

    def __init__(self) -> None:
        self.phases: dict[str, list[tuple[Any, ...]]] = {}
        self._rows: list[tuple[Any, ...]] = []

    def begin(self, phase: str) -> None:
        """Record into a new phase from now on."""
        self._rows = self.phases.setdefault(phase, [])

    def __call__(self, path: str, seconds: float, status: int, headers: Any) -> None:
        step = path.split("?", 1)[0].removeprefix("/voice/")
        counts = tuple(int(headers.get(h, -1)) for h in ("X-Hotline-Redis-RT", "X-Hotline-SQL", "X-Hotline-SQL-Tx",
                                                           "X-Hotline-SQL-Conn"))
        self._rows.append((step, seconds, status, *counts, time.monotonic()))  # list.append is atomic: no lock


def set_available(url: str, logins: list[str]) -> None:
    """Each agent goes available through PUT /api/agents/me/status, as the console does."""
    for login in logins:
        auth = b64encode(f"{login}:{login}-pw".encode()).decode()
        req = urllib.request.Request(
            url + "/api/agents/me/status",
            data=json.dumps({"status": "available"}).encode(),
            method="PUT",
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 200:
                raise RuntimeError(f"agent {login}: PUT status answered {resp.status}")


def drive_calls(stack: Stack, callers: list[Caller], concurrency: int, count: int | None,
                until: float | None) -> tuple[list[tuple[Caller, CallHandle]], float]:
    """Keep `concurrency` calls running: a new one as soon as one ends, `count` in all or until `until` (monotonic).

    Returns every (caller, handle) and the moment the last call was started.
    """
    lock, started = threading.Lock(), []
    state = {"next": 0, "last_start": time.monotonic()}

    def driver() -> None:
        while True:
            with lock:
                i = state["next"]
                if (count is not None and i >= count) or (until is not None and time.monotonic() >= until):
                    return
                state["next"] = i + 1
            caller = callers[i % len(callers)]  # a soak longer than the plan reuses numbers of long-ended calls
            handle = stack.sim.start_call(caller.phone, caller.script)
            with lock:
                started.append((caller, handle))
                state["last_start"] = time.monotonic()
            handle.wait(CALL_DEADLINE_S)

    threads = [threading.Thread(target=driver, name=f"driver{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started, state["last_start"]


def drive_bare(url: str, token: str, concurrency: int, total: int, per_connection: int, recorder: Recorder) -> float:
    """POST the constant endpoint `total` times from `concurrency` threads, a new connection every `per_connection`
    requests (as a call opens one); returns the wall seconds."""
    transport = HttpTransport(token, observe=recorder)
    share = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]

    def worker(n: int) -> None:
        params = {
            "CallSid": "CA" + uuid.uuid4().hex,
            "AccountSid": "AC" + "0" * 32,
            "From": "+8613900000001",
            "To": "+864001234567",
            "CallStatus": "in-progress",
            "ApiVersion": "2010-04-01",
            "Direction": "inbound",
        }
        for j in range(n):
            if j and j % per_connection == 0:
                transport.close()
            transport.post(url + "/bench/twiml", params)
        transport.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in share]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0


def _local(url: str) -> bool:
    """True when a database URL names this host (its server's CPU can be read from /proc)."""
    from sqlalchemy import make_url

    return (make_url(url).host or "localhost") in ("localhost", "127.0.0.1", "::1")


class Sampler:
    """Every few seconds: RSS of each web worker and the Redis keyspace (the soak's growth figures)."""

    def __init__(self, stack: Stack, every_s: float) -> None:
        self.stack, self.every_s = stack, every_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._t0 = time.monotonic()

    def sample(self) -> dict[str, Any]:
        """One reading now."""
        workers = probe.children(self.stack.pids("web")[0])
        row = {"t_s": round(time.monotonic() - self._t0, 1), "web_rss_kb": [probe.rss_kb(p) for p in workers],
               **probe.keyspace(self.stack.svc.redis)}
        self.samples.append(row)
        return row

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def run(opts: Options, progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """One bench run; the report as a dict (see tools/bench/report.py), with `invariant.ok`."""
    os.environ["HOTLINE_TWIML_SCHEMA"] = os.devnull  # the tests validate TwiML; here it would only load the client
    rng = random.Random(opts.seed)
    soak = opts.duration > 0
    callers = plan(max(opts.calls, int(opts.duration * 40)) if soak else opts.calls, rng)
    recorder = Recorder()
    stack = Stack(workers=opts.workers, rq_workers=opts.rq_workers, redis_url=opts.redis_url,
                  database_url=opts.database_url, scale=opts.scale, observe=recorder)
    logins = [f"agent{i:03d}" for i in range(opts.agents)]
    ok = False
    try:
        progress("starting the stack")
        stack.start()
        stack.add_members({t: [c.phone for c in callers if c.tier == t] for t in TIERS if t != "guest"})
        stack.add_agents(logins)
        for login in logins:
            stack.sim.add_agent(login, answer_after=rng.uniform(1, 3), talk_seconds=rng.choice([20, 30, 40]))
        for c in callers:
            if c.books_callback:
                stack.sim.add_phone(c.phone, "answer", answer_after=2)
        set_available(stack.url, logins)
        r = stack.svc.redis
        web_master = stack.pids("web")[0]
        keys_before, stats_before, jobs_before = (
            probe.snapshot(r),
            probe.command_stats(r),
            probe.rq_jobs(stack.redis_url),
        )
        rss_start = [probe.rss_kb(p) for p in probe.children(web_master)]
        meter = probe.CpuMeter(
            web=[web_master, *probe.children(web_master)],
            rq=stack.pids("rq"),
            other=stack.pids("cron"),
            postgres=stack.svc.engine.dialect.name == "postgresql" and _local(opts.database_url),
        )

        progress(f"calls: {'for %gs' % opts.duration if soak else opts.calls} at concurrency {opts.concurrency}")
        recorder.begin("flow")
        meter.begin(r)
        t0 = time.monotonic()
        with Sampler(stack, opts.sample_every if soak else max(1.0, opts.sample_every)) as sampler:
            pairs, last_start = drive_calls(stack, callers, opts.concurrency, None if soak else opts.calls,
                                            t0 + opts.duration if soak else None)
            calls_done = time.monotonic()
            drained = settle(stack, logins, progress)
        flow_s = time.monotonic() - t0
        flow_cpu = meter.since(r)
        stack.check_alive()
        rss_end = [probe.rss_kb(p) for p in probe.children(web_master)]
        stats_after, jobs_after = probe.command_stats(r), probe.rq_jobs(stack.redis_url)
        keys_after = probe.snapshot(r)
        check = end_state(stack, pairs, logins, keys_before, keys_after, drained)

        flow_rows = recorder.phases["flow"]
        per_conn = max(1, round(len(flow_rows) / max(1, len(pairs))))
        bare_total = 200 if opts.quick else max(2000, min(len(flow_rows), 20 * opts.concurrency))
        progress(f"bare endpoint: {bare_total} requests at concurrency {opts.concurrency}")
        recorder.begin("bare")
        meter.begin(r)
        bare_s = drive_bare(stack.url, stack.sim.auth_token, opts.concurrency, bare_total, per_conn, recorder)
        bare_cpu = meter.since(r)

        report = summarize(
            options=asdict(opts),
            stack=stack,
            recorder=recorder,
            pairs=pairs,
            check=check,
            flow={
                "seconds": flow_s,
                "calls_seconds": calls_done - t0,
                "steady_seconds": last_start - t0,
                "cpu_s": flow_cpu,
                "t0": t0,
            },
            bare={"seconds": bare_s, "cpu_s": bare_cpu},
            commands=(stats_before, stats_after),
            rss=(rss_start, rss_end),
            samples=sampler.samples,
            jobs={k: jobs_after[k] - jobs_before[k] for k in jobs_after},
        )
        ok = report["invariant"]["ok"]
        if not ok:
            report["logs"] = str(stack.tmp)  # kept for the post-mortem
        return report
    finally:
        progress("stopping")
        stack.stop(keep_files=not ok and bool(stack.procs))
