"""Process supervision for `hotline serve` and `hotline run`: children started together, stopped together."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from core.redisconn import EmbeddedRedis, ensure_redis_url
from core.settings import Settings


@dataclass
class Supervisor:
    """Starts child processes and stops all of them (and the embedded Redis) on Ctrl-C or SIGTERM."""

    embedded: EmbeddedRedis | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a child that shares our terminal's output."""
        proc = subprocess.Popen(args, env=env, start_new_session=True)
        self.children.append(proc)
        return proc

    def wait(self) -> int:
        """Block until a child exits or we are told to stop; then stop everything."""
        stop = {"signal": 0}

        def handle(signum: int, _frame: object) -> None:
            stop["signal"] = signum
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handle)
        code = 0
        try:
            while self.children:
                pid, status = os.wait()
                child = next((c for c in self.children if c.pid == pid), None)
                if child is not None:
                    code = os.waitstatus_to_exitcode(status)
                    click.echo(f"hotline: {' '.join(child.args[:3])} exited with {code}; stopping", err=True)
                    child.returncode = code
                    break
        except KeyboardInterrupt:
            click.echo("\nhotline: stopping…", err=True)
        finally:
            self.stop()
        return code

    def stop(self) -> None:
        """Terminate children (SIGTERM, then SIGKILL after 10 s) and the embedded Redis."""
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fn in self.on_stop:
            fn()
        if self.embedded is not None:
            self.embedded.stop()


def gunicorn_args(host: str, port: int, workers: int) -> list[str]:
    """The gunicorn command line for the app factory."""
    return [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}",
        "--worker-class", "gthread", "--threads", "4", "--graceful-timeout", "5",
        "--log-level", "warning", "hotline.app:create_app()",
    ]


def child_env(settings: Settings, redis_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: the same stores and secrets as ours."""
    env = dict(os.environ)
    env.update(
        HOTLINE_DATA_DIR=str(settings.data_dir),
        HOTLINE_DATABASE_URL=settings.database_url,
        HOTLINE_REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


def metrics_env(data_dir: Path) -> dict[str, str]:
    """PROMETHEUS_MULTIPROC_DIR for gunicorn: `<data_dir>/prometheus`, emptied.

    Each gunicorn worker keeps its webhook histogram in a file there and /metrics sums the files
    (prometheus_client's multiprocess mode), so a scrape sees every worker, not just the one answering.
    Files left by an earlier run would be summed in too: start from an empty folder.
    """
    folder = Path(data_dir) / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return {"PROMETHEUS_MULTIPROC_DIR": str(folder)}


def prepare(overrides: dict[str, object] | None = None) -> tuple[Settings, str, EmbeddedRedis | None]:
    """Load and check settings, start the embedded Redis if needed; exit with one line on failure."""
    from core.schema import ConfigError
    from hotline.app import load_settings
    from hotline.startup import fail

    try:
        settings = load_settings(overrides)
        url, embedded = ensure_redis_url(settings.redis_url, settings.data_dir)
    except ConfigError as exc:
        fail("invalid configuration:\n  " + "\n  ".join(exc.errors))
    except RuntimeError as exc:
        fail(str(exc))
    return settings, url, embedded


def serve_forever(host: str, port: int, workers: int) -> None:
    """`hotline serve`: gunicorn over the app factory, on the configured stores."""
    from hotline.startup import open_services

    settings, url, embedded = prepare()
    sup = Supervisor(embedded=embedded)
    try:
        open_services(redis_url=url).close()  # refuse to start on an unreachable database, with one line
    except SystemExit:
        sup.stop()
        raise
    sup.spawn(gunicorn_args(host, port, workers), child_env(settings, url, metrics_env(settings.data_dir)))
    sys.exit(sup.wait())


def wait_ready(url: str, sup: Supervisor, timeout_s: float = 60.0) -> None:
    """Return once `url` answers 200 (the web server is up); fail if a child dies or time runs out."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [c for c in sup.children if c.poll() is not None]
        if dead:
            raise RuntimeError(f"{' '.join(dead[0].args[:4])} exited with {dead[0].returncode} during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)  # a listening socket gives no event to wait on; poll it
    raise RuntimeError(f"the web server did not answer {url} within {timeout_s:.0f} s")


def sim_scale(env: dict[str, str] | None = None) -> float:
    """HOTLINE_SIM_SCALE: real seconds per simulated second (default 1.0, real time; tests run faster)."""
    raw = (os.environ if env is None else env).get("HOTLINE_SIM_SCALE", "1.0")
    try:
        scale = float(raw)
    except ValueError:
        scale = -1.0
    if not 0 < scale <= 10:
        raise RuntimeError(f"HOTLINE_SIM_SCALE: must be a number above 0 and at most 10, not {raw!r}")
    return scale


def start_offline_twilio(settings: Settings, public_url: str) -> Any:
    """The simulator's REST API on 127.0.0.1, with the demo agents' devices as Twilio Client identities.

    Each device is "manual": a call rings it until someone accepts or declines it, in the agent console (the app
    drives the device through the simulator's control API) or with `hotline agent`; unanswered, it rings out after
    the call's Timeout (queue.ring_timeout_s) as no-answer. Time runs at HOTLINE_SIM_SCALE (1.0: real time).
    """
    from hotline.demo import DEMO_AGENTS
    from simulator import Simulator

    sim = Simulator.over_http(public_url, settings.twilio_auth_token, account_sid=settings.twilio_account_sid,
                              number=settings.twilio_number, scale=sim_scale())
    for _login, _name, _role, identity, _password in DEMO_AGENTS:
        sim.add_agent(identity, behaviour="manual", answer_after=0, talk_seconds=None)  # as the console registers it
    sim.start()
    return sim


def run_all(host: str, port: int) -> None:
    """`hotline run`: embedded stores, migrations, demo data, web + worker + cron, offline Twilio; Ctrl-C stops all."""
    from datetime import datetime

    from hotline.demo import seed_demo
    from hotline.migrate import upgrade
    from hotline.startup import fail, open_services
    from simulator.discovery import remove_discovery, write_discovery

    public_url = f"http://{host}:{port}"
    settings, url, embedded = prepare({"public_url": public_url})
    sup = Supervisor(embedded=embedded)
    try:
        svc = open_services(redis_url=url, public_url=public_url)
        try:
            upgrade(svc.engine)
            with svc.unit_of_work() as session:
                lines = seed_demo(session, svc.config, now=datetime.now(UTC), pin_key=svc.settings.pin_key_bytes)
        finally:
            svc.close()
        extra = {"HOTLINE_PUBLIC_URL": public_url}
        if settings.offline:
            sim = start_offline_twilio(settings, public_url)
            sup.on_stop.append(sim.stop)
            extra["TWILIO_API_URL"] = sim.api_url
            # `hotline call` / `hotline agent` find this simulator (the one the worker dispatches through) here.
            found = write_discovery(settings.data_dir, sim.api_url, sim.account_sid, public_url)
            sup.on_stop.append(lambda: remove_discovery(found))
        env = child_env(settings, url, extra)
        sup.spawn(gunicorn_args(host, port, 2), {**env, **metrics_env(settings.data_dir)})
        sup.spawn([sys.executable, "-m", "hotline.cli", "worker"], env)
        sup.spawn([sys.executable, "-m", "hotline.cli", "cron"], env)
        wait_ready(f"{public_url}/healthz", sup)
    except RuntimeError as exc:
        sup.stop()
        fail(str(exc))
    except BaseException:
        sup.stop()
        raise
    for line in lines:
        click.echo(line)
    phone = (
        "\n  Terminal phone         hotline call   (answer it in the agent console, or in another terminal: "
        "hotline agent --login agent1 --password agent1-pass)"
        if settings.offline
        else ""
    )
    twilio = (f"offline: the simulator answers REST at {extra['TWILIO_API_URL']}" if settings.offline
              else settings.twilio_api_url)
    click.echo(f"""
Hotline is running (Ctrl-C stops everything):
  Twilio voice webhook   POST {public_url}/voice/incoming   (status: /voice/status, fallback: /voice/fallback)
  Agent console          {public_url}/agent   (log in at {public_url}/login with a login printed above)
  Supervisor dashboard   {public_url}/supervisor   (history and CSV: {public_url}/supervisor/history)
  Agent/supervisor API   {public_url}/api   (OpenAPI: {public_url}/api/openapi.json)
  Prometheus metrics     {public_url}/metrics
  Health                 {public_url}/healthz
  Twilio                 {twilio}{phone}
  Stores                 {settings.database_url} and redis at {url}
""")
    sys.exit(sup.wait())
