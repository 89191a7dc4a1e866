"""`hotline serve|worker|cron|run`: the hotline's long-running processes."""
from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web app with gunicorn (the embedded Redis is started first when none is configured)."""
    from hotline.runner import serve_forever

    serve_forever(host, port, workers)


@click.command()
@click.option("--burst", is_flag=True, help="run the jobs that are due, then exit")
def worker(burst: bool) -> None:
    """Run an RQ worker for the hotline's jobs (callbacks, sweeps)."""
    from hotline.worker import run_worker

    run_worker(burst=burst)


@click.command()
def cron() -> None:
    """Run the scheduler that enqueues the periodic sweep job."""
    from hotline.worker import run_cron

    run_cron()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Set up and start everything locally: migrate, seed demo data, web, worker, offline Twilio."""
    from hotline.runner import run_all

    run_all(host, port)
