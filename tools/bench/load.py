"""`hotline bench`: whole simulated calls through the hotline under gunicorn, timed per webhook step (the callers
and how they are driven: tools/bench/drive.py).

One run: start the stack (tools/bench/stack.py), let the agents log on through the JSON API, drive
`calls` callers (or, with `duration`, a steady load for that long) with `concurrency` at a time, wait
until every call and callback has ended, check the end state (tools/bench/check.py), then drive the
bench-mode constant endpoint with the same HTTP client at the same concurrency. Speed is reported,
never asserted.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tools.bench import probe
from tools.bench.check import end_state, settle
from tools.bench.drive import TIERS, Heartbeats, Recorder, drive_bare, drive_calls, plan, set_available
from tools.bench.report import summarize
from tools.bench.stack import Stack


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

        progress(f"calls: {f'for {opts.duration:g}s' if soak else opts.calls} at concurrency {opts.concurrency}")
        recorder.begin("flow")
        meter.begin(r)
        t0 = time.monotonic()
        every = opts.sample_every if soak else max(1.0, opts.sample_every)
        with Heartbeats(stack.url, logins), Sampler(stack, every) as sampler:
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
