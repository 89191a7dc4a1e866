"""The stack `hotline bench` runs on: stores, gunicorn, rq workers, cron and the simulator as Twilio.

Everything lives in a temporary data directory and is stopped (and, for given servers, cleaned up)
by `Stack.stop`, whatever happened. Given servers are borrowed carefully:
- PostgreSQL: the bench works in a schema of its own (`hlbench_<random>`, selected through the
  connection's search_path), created here and dropped at the end; the database's other tables are
  never touched.
- Redis: the hotline's key names are fixed, so the bench needs an EMPTY database (e.g. `/14`), which
  it empties again at the end; a database holding keys is refused.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from core.redisconn import EmbeddedRedis, make_redis
from hotline.runner import gunicorn_args, metrics_env

PIN = "2468"
# Open around the clock with no holidays (a bench must not depend on when it runs), no wrap-up (the server
# times it in real seconds, which would idle agents for ever at the simulator's speed), announcements
# as shipped (the hold loop's <Pause> is simulated time).
BENCH_TOML = """[hours]
holiday_calendar = ""
closed_dates = []
[hours.weekly]
""" + "".join(f'{d} = ["00:00-24:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")) + """[queue]
wrap_up_s = 0
ring_timeout_s = 15
"""


class BenchError(RuntimeError):
    """The bench cannot run (a store refused, a process died during start-up)."""


@dataclass
class Stack:
    """Stores, hotline processes and the simulator for one bench run."""

    workers: int = 2
    rq_workers: int = 2
    redis_url: str = ""
    database_url: str = ""
    scale: float = 0.001
    observe: Callable[..., None] | None = None
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hlb")))  # short: holds a unix socket
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    svc: Any = None
    sim: Any = None
    url: str = ""
    _embedded: EmbeddedRedis | None = None
    _schema: str = ""

    # -- start --

    def start(self) -> None:
        """Stores, migrations, simulator, gunicorn, rq workers and cron; returns once all are ready."""
        from hotline.app import create_services
        from hotline.migrate import upgrade
        from simulator import Simulator

        if not self.redis_url:
            self._embedded = EmbeddedRedis(self.tmp)
            self.redis_url = self._embedded.start()
        else:
            self._check_empty_redis()
        db_url = self._database()
        (self.tmp / "bench.toml").write_text(BENCH_TOML, encoding="utf-8")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        token, secret = secrets.token_hex(16), secrets.token_hex(16)
        self.svc = create_services({"data_dir": self.tmp, "database_url": db_url, "redis_url": self.redis_url,
                                    "config_path": str(self.tmp / "bench.toml"), "public_url": self.url,
                                    "twilio_auth_token": token, "secret_key": secret, "twilio_account_sid": ""})
        logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration is noise in a bench's output
        upgrade(self.svc.engine)
        # Loop guards sized for a saturated server: a patient caller may hold for many waitUrl rounds.
        self.sim = Simulator.over_http(self.url, token, scale=self.scale, max_requests=20_000,
                                       max_call_seconds=30 * 86400.0)
        self.sim.net.transport.observe = self.observe
        env = self._env(db_url, token, secret, self.sim.start())
        self._spawn("web", gunicorn_args("127.0.0.1", port, self.workers), {**env, **metrics_env(self.tmp)})
        for i in range(self.rq_workers):
            self._spawn(f"rq{i + 1}", [sys.executable, "-m", "hotline.cli", "worker"], env)
        self._spawn("cron", [sys.executable, "-m", "hotline.cli", "cron"], env)
        self._until(self._healthy, 60, "the web server's /healthz")
        self._until(lambda: self._rq_count() >= self.rq_workers, 60, f"{self.rq_workers} rq workers registered")

    def _check_empty_redis(self) -> None:
        r = make_redis(self.redis_url)
        try:
            if r.dbsize():
                raise BenchError(f"{self.redis_url} holds {r.dbsize()} keys: the bench needs an EMPTY Redis database "
                                 "(the hotline's key names are fixed), e.g. redis://host:6379/14")
        finally:
            r.close()

    def _database(self) -> str:
        """The URL the hotline uses: SQLite in the temp dir, or a fresh schema of the given PostgreSQL database."""
        if not self.database_url:
            return f"sqlite:///{self.tmp / 'bench.db'}"
        url = make_url(self.database_url)
        if not url.drivername.startswith("postgresql"):
            raise BenchError("--database-url: only PostgreSQL is supported (SQLite is the default)")
        if "options" in url.query:
            raise BenchError("--database-url: leave out ?options= (the bench sets search_path to its own schema)")
        schema = f"hlbench_{secrets.token_hex(4)}"
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            engine.dispose()
        self._schema = schema
        return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

    def _env(self, db_url: str, token: str, secret: str, api_url: str) -> dict[str, str]:
        # The operator's own HOTLINE_*/TWILIO_* must not leak in: a real TWILIO_ACCOUNT_SID would dial real phones.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
        env.update(HOTLINE_DATA_DIR=str(self.tmp), HOTLINE_DATABASE_URL=db_url, HOTLINE_REDIS_URL=self.redis_url,
                   HOTLINE_CONFIG=str(self.tmp / "bench.toml"), HOTLINE_PUBLIC_URL=self.url, HOTLINE_SECRET_KEY=secret,
                   TWILIO_AUTH_TOKEN=token, TWILIO_API_URL=api_url, HOTLINE_BENCH="1", PYTHONUNBUFFERED="1")
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with open(self.tmp / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def _rq_count(self) -> int:
        from rq import Worker

        conn = make_redis(self.redis_url, decode=False)
        try:
            return Worker.count(connection=conn)
        finally:
            conn.close()

    def _until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"no {what} within {timeout:g} s; logs in {self.tmp}")
            time.sleep(0.05)  # start-up gives no event to wait on: poll

    def check_alive(self) -> None:
        """BenchError naming any hotline process that has exited."""
        dead = [(name, p.returncode) for name, p in self.procs if p.poll() is not None]
        if dead:
            raise BenchError(f"hotline processes exited: {dead}\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every process's log."""
        return "\n".join(f"--- {name} ({self.tmp / (name + '.log')}) ---\n"
                         + (self.tmp / f"{name}.log").read_text(errors="replace")[-chars:] for name, _ in self.procs)

    # -- people --

    def add_members(self, numbers: dict[str, list[str]]) -> None:
        """Members of each tier with these phones and the PIN `PIN`, hashed once (the import's fast path)."""
        from core.passwords import hash_pin
        from members.importer import PinHasher, import_members, read_csv

        key = self.svc.settings.pin_key_bytes  # the web server's too: same data dir, same local `pin_key` file
        pin_hash, out = hash_pin(PIN, key), io.StringIO()
        w = csv.writer(out)
        w.writerow(["uid", "name", "tier", "phone", "pin_hash"])
        uid = 10_000_000
        for tier, phones in numbers.items():
            for p in phones:
                uid += 1
                w.writerow([str(uid), f"bench {uid}", tier, p, pin_hash])
        session = self.svc.sessions()
        try:
            with PinHasher(1) as hasher:
                for chunk in import_members(session, read_csv(out.getvalue().encode()), config=self.svc.config,
                                            now=datetime.now(UTC), hasher=hasher, pin_key=key):
                    if chunk.rejected:
                        raise BenchError(f"member import rejected rows: {chunk.rejected[:3]}")
                    session.commit()
        finally:
            session.close()

    def add_agents(self, logins: list[str]) -> None:
        """Agents whose Twilio Client identity is their login (password `<login>-pw`), offline until they say."""
        from callqueue.agents.accounts import add_agent

        now = datetime.now(UTC)
        with self.svc.unit_of_work() as session:
            for login in logins:
                add_agent(session, login=login, name=login, password=f"{login}-pw", role="agent",
                          client_identity=login, phone=None, now=now)

    # -- what the report says about the stack --

    @property
    def redis_label(self) -> str:
        """"embedded" or the given URL."""
        return "embedded" if self._embedded is not None else self.redis_url

    @property
    def database_label(self) -> str:
        """The SQL dialect, and the bench's schema on PostgreSQL."""
        name = self.svc.engine.dialect.name if self.svc is not None else "?"
        return name + (f" (schema {self._schema}, dropped at the end)" if self._schema else "")

    # -- processes, for measurements --

    def pids(self, name: str) -> list[int]:
        """The pid of each process started under `name` ("web", "rq", "cron": prefixes)."""
        return [p.pid for n, p in self.procs if n.startswith(name)]

    # -- stop --

    def stop(self, keep_files: bool = False) -> None:
        """Stop everything started, drop the bench's schema or empty the given Redis, remove the temp dir."""
        if self.sim is not None:
            self.sim.stop()
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: an rq work horse goes too
                proc.wait()
        if self.svc is not None:
            if self._embedded is None:
                self.svc.redis.flushdb()  # the given database was empty when we started: leave it so
            self.svc.close()
        if self._embedded is not None:
            self._embedded.stop()
        if self._schema:
            engine = create_engine(make_url(self.database_url))
            try:
                with engine.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{self._schema}" CASCADE'))
            finally:
                engine.dispose()
        if not keep_files:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
