"""`hotline bench`: whole calls through the hotline under gunicorn (hotline/loadbench.py); `bench queue` lives in cli.py."""
from __future__ import annotations

import json
import signal
import sys

import click


@click.group(invoke_without_command=True)
@click.option("--calls", default=500, show_default=True, type=click.IntRange(1), help="callers to run (without --duration)")
@click.option("--concurrency", default=50, show_default=True, type=click.IntRange(1), help="calls in progress at once")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1), help="gunicorn worker processes")
@click.option("--rq-workers", default=2, show_default=True, type=click.IntRange(1), help="`hotline worker` processes")
@click.option("--agents", default=20, show_default=True, type=click.IntRange(1), help="simulated agents, set available through the API")
@click.option("--redis-url", default="", help="an EMPTY Redis database (e.g. redis://host:6379/14), emptied again at the end; "
              "default: an embedded server in a temporary directory")
@click.option("--database-url", default="", help="a PostgreSQL database: the bench creates its tables in a new schema "
              "hlbench_<random> there and drops that schema at the end (no other table is touched); default: SQLite in a temporary directory")
@click.option("--duration", default=0.0, type=click.FloatRange(0), help="soak: keep --concurrency calls going for this many "
              "seconds (new calls as others end), sampling web RSS and Redis keys")
@click.option("--scale", default=0.001, show_default=True, type=click.FloatRange(0), help="real seconds per simulated second "
              "(prompts, holds, rings, talk)")
@click.option("--sample-every", default=5.0, show_default=True, type=click.FloatRange(0.2), help="seconds between samples")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--quick", is_flag=True, help="a few seconds for CI (20 calls, concurrency 5, 4 agents): only the end state matters")
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
    from hotline.benchreport import render
    from hotline.benchstack import BenchError
    from hotline.loadbench import Options, run

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
