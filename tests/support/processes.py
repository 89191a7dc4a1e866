"""The hotline's own processes (rq workers, gunicorn, cron) started for a test and always stopped after it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rq import Worker

from core.redisconn import make_redis
from core.services import Services
from hotline.runner import gunicorn_args
from tests.support.common import AUTH_TOKEN, PUBLIC_URL, ROOT

SECRET_KEY = "test-secret-key"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hotline_env(services: Services, config_path: Path, api_url: str) -> dict[str, str]:
    """The environment of a worker or web process on the test's stores, offline Twilio = the simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
    env.update(
        HOTLINE_DATABASE_URL=services.settings.database_url,
        HOTLINE_REDIS_URL=services.redis_url,
        HOTLINE_DATA_DIR=str(services.settings.data_dir),
        HOTLINE_CONFIG=str(config_path),
        HOTLINE_PUBLIC_URL=PUBLIC_URL,
        HOTLINE_SECRET_KEY=SECRET_KEY,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=api_url,
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Processes:
    """Child processes of one test, each in its own session, output kept in files; `stop` ends every one."""

    log_dir: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  # pids a test killed on purpose: their exit is no failure

    def mark_killed(self, pid: int) -> None:
        """A test killed this child on purpose (a fault test): `check_alive` no longer counts it."""
        self.killed.add(pid)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(
                args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self.children.append((name, proc))
        return proc

    def workers(self, n: int, env: dict[str, str], redis_url: str, timeout: float = 30, wait: bool = True) -> None:
        """`hotline worker` × n; with `wait`, returns once rq has registered every one of them."""
        for i in range(n):
            self.start(f"worker{i + 1}", [sys.executable, "-m", "hotline.cli", "worker"], env)
        if wait:
            self.wait_workers(n, redis_url, timeout)

    def wait_workers(self, n: int, redis_url: str, timeout: float = 30) -> None:
        """Return once rq has registered `n` workers (their start-up has no other event)."""
        conn = make_redis(redis_url, decode=False)
        try:
            self.until(lambda: Worker.count(connection=conn) >= n, timeout, f"{n} rq workers registered")
        finally:
            conn.close()

    def web(self, env: dict[str, str], port: int, workers: int = 2, timeout: float = 30) -> str:
        """gunicorn (`hotline.runner.gunicorn_args`) on `port`; returns its base URL once /healthz answers 200."""
        self.start("web", gunicorn_args("127.0.0.1", port, workers), env)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        self.until(healthy, timeout, "the web server's /healthz")
        return url

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `predicate` until true (only for start-up, where no event exists); fail early if a child died."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:g} s\n{self.logs()}")
            time.sleep(0.05)  # a polling interval, not a synchronisation: the predicate decides

    def check_alive(self) -> None:
        dead = [(name, p.returncode) for name, p in self.children if p.poll() is not None and p.pid not in self.killed]
        if dead:
            raise AssertionError(f"hotline processes exited: {dead}\n{self.logs()}")

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for name, _ in self.children:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} ---\n{text[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM every child (rq finishes its job and stops, gunicorn its requests); SIGKILL its session after
        10 s."""
        for _, proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(
                    proc.pid, signal.SIGKILL
                )  # still running, so the group is still its own: its work horse goes too
                proc.wait()
        for _, proc in self.children:
            # A child killed outright (a fault test's SIGKILL) leaves its own children behind: rq's scheduler is a
            # process of its own and would go on touching the test Redis during later tests. Its session goes too.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
