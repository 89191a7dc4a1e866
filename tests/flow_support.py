"""Support for the queue-flow tests: a controllable clock, the flow configuration, people, and the
hotline's own processes (rq workers, gunicorn) started for a test and always stopped after it."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from rq import Worker
from sqlalchemy import select

from callqueue.agents.accounts import add_agent
from callqueue.records import CallRecord
from callqueue.reports import stats
from core.config import Config
from core.passwords import hash_pin
from core.redisconn import make_redis
from core.services import Services
from hotline.app import create_app
from hotline.configuration import full_config
from hotline.runner import gunicorn_args
from members.importer import PinHasher, import_members, read_csv
from simulator import CallHandle, Event, Script, Simulator
from tests.conftest import ALWAYS_OPEN, AUTH_TOKEN, PUBLIC_URL
from webhooks.outbound.gateway import TwilioGateway

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "test-secret-key"
SUPERVISOR = "sam"
PIN = "2468"
FINAL = ("answered", "abandoned", "short_abandoned")


# --- time ---------------------------------------------------------------------------------------

class RunningClock:
    """A clock that starts at a fixed instant and runs with real time; `advance` jumps it (opening hours, retries)."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._base, self._t0 = start, time.monotonic()

    def __call__(self) -> datetime:
        with self._lock:
            return self._base + timedelta(seconds=time.monotonic() - self._t0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._base += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        """Jump to `at` (never backwards in a test: it only moves on)."""
        with self._lock:
            self._base, self._t0 = at, time.monotonic()


class FakeClock:
    """The wall clock plus an offset the test moves forward: time still flows (arrivals stay distinct),
    and `advance` jumps it (waits longer than a boost or a service level without sleeping).

    Starts at least half an hour before the hotline's local midnight, so that "today" cannot change
    during a test.
    """

    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self._lock = threading.Lock()
        now = datetime.now(UTC)
        local = now.astimezone(ZoneInfo(tz))
        midnight = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz)) + timedelta(days=1)
        self._offset = min(timedelta(0), midnight - timedelta(minutes=30) - now)

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


# --- configuration ------------------------------------------------------------------------------

def write_config(folder: Path, extra: str = "", **queue: Any) -> tuple[Path, Config]:
    """A HOTLINE_CONFIG file with a [queue] section: no wrap-up (agents free at once), a long hold
    between announcements (few waitUrl requests at the simulator's fast time), and `queue` overrides."""
    values = {"wrap_up_s": 0, "announce_every_s": 120, "ring_timeout_s": 15, **queue}
    lines = [extra or ALWAYS_OPEN.read_text(encoding="utf-8"), "[queue]"] + [
        f"{k} = {json.dumps(v)}" for k, v in values.items()
    ]
    path = folder / "flow.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, full_config(path)


# --- people -------------------------------------------------------------------------------------

def password(login: str) -> str:
    return f"{login}-pass-1"


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password(login)}".encode()).decode()}


def add_people(services: Services, agents: Sequence[str]) -> None:
    """Agents (Twilio Client identity = login) and the supervisor `sam`, all offline in Redis until they say otherwise."""
    now = datetime.now(UTC)
    with services.unit_of_work() as db:
        for login in agents:
            add_agent(db, login=login, name=login.title(), password=password(login), role="agent",
                      client_identity=login, phone=None, now=now)
        add_agent(db, login=SUPERVISOR, name="Sam", password=password(SUPERVISOR), role="supervisor",
                  client_identity=SUPERVISOR, phone=None, now=now)


def phone(tier: str, i: int) -> str:
    """A valid mainland mobile number per tier and index (guests' numbers belong to nobody)."""
    prefix = {"annual_premium": "137", "premium": "138", "standard": "139", "guest": "136"}[tier]
    return f"+86{prefix}{i:08d}"


def add_members(services: Services, config: Config, counts: dict[str, int]) -> dict[str, list[str]]:
    """Members per tier, one phone each and the PIN `PIN`, imported in bulk (the PIN hashed once)."""
    pin_hash = hash_pin(
        PIN, services.settings.pin_key_bytes
    )  # the web and worker processes (hotline_env) read this key from the same data dir
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["uid", "name", "tier", "phone", "pin_hash"])
    phones: dict[str, list[str]] = {}
    uid = 50000
    for tier, n in counts.items():
        for i in range(n):
            uid += 1
            phones.setdefault(tier, []).append(phone(tier, i))
            w.writerow([str(uid), f"member {uid}", tier, phone(tier, i), pin_hash])
    with services.unit_of_work() as db, PinHasher(1) as hasher:
        for chunk in import_members(
            db,
            read_csv(out.getvalue().encode()),
            config=config,
            now=datetime.now(UTC),
            hasher=hasher,
            pin_key=services.settings.pin_key_bytes,
        ):
            assert not chunk.rejected, chunk.rejected
    return phones


def script(tier: str, patience: float | None = None) -> Script:
    """The keys that take a caller of `tier` to the agent queue: a member's PIN then 0; a guest 0 then * (no member number).

    `patience`: simulated seconds the caller holds in a queue before hanging up.
    """
    answers = ("0", "*#") if tier == "guest" else (PIN + "#", "0")
    return Script(answers=answers, when_answers_run_out="hangup", hangup_after_queue_seconds=patience)


# --- the JSON API, in-process or over HTTP ------------------------------------------------------

class Api:
    """The hotline's JSON API as a given person (HTTP Basic)."""

    def __init__(self, app: Flask | None = None, base_url: str | None = None) -> None:
        self.app, self.base_url = app, base_url

    def call(self, method: str, path: str, login: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        if self.app is not None:
            resp = self.app.test_client().open(path, method=method, json=body, headers=basic(login))
            return resp.status_code, resp.get_json(silent=True)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={**basic(login), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def status(self, login: str, status: str) -> dict[str, Any]:
        """The agent chooses a state through PUT /api/agents/me/status (the real dispatch trigger)."""
        code, body = self.call("PUT", "/api/agents/me/status", login, {"status": status})
        # An agent who becomes available while callers wait may be given one before the answer is read back:
        # "on_call" is then the right answer to "available" (the dispatch job runs beside the request).
        allowed = (status, "on_call") if status == "available" else (status,)
        assert code == 200 and body["status"] in allowed, (code, body)
        return body

    def me(self, login: str) -> dict[str, Any]:
        code, body = self.call("GET", "/api/agents/me", login)
        assert code == 200, (code, body)
        return body

    def queue(self) -> list[dict[str, Any]]:
        code, body = self.call("GET", "/api/queue", SUPERVISOR)
        assert code == 200, (code, body)
        return body

    def stats(self, window: str = "today") -> dict[str, Any]:
        code, body = self.call("GET", f"/api/stats?window={window}", SUPERVISOR)
        assert code == 200, (code, body)
        return body


def assert_stats_match_records(api: Api, services: Services, config: Config, window: str = "today") -> dict[str, Any]:
    """/api/stats (live, from Redis counters) equals the same figures recomputed from the SQL call records
    at the same instant (the live answer's as_of); returns the live figures."""
    live = api.stats(window)
    now = datetime.fromisoformat(live["as_of"])
    with services.sessions() as db:
        recomputed = stats.from_records(db, now, config, window, agents=live["agents"])
    recomputed = json.loads(json.dumps(recomputed))  # the same JSON shapes the API answers with
    for part in ("tiers", "overall"):
        assert live[part] == recomputed[part], f"{part}: live {live[part]}\n!= records {recomputed[part]}"
    assert live["window"] == recomputed["window"] == window
    return live


def records(services: Services) -> dict[str, CallRecord]:
    """Every call record by CallSid."""
    with services.sessions() as db:
        return {r.call_sid: r for r in db.scalars(select(CallRecord))}


# --- simulator helpers --------------------------------------------------------------------------

def ringing_order(sim: Simulator) -> list[str]:
    """The CallSids the hotline rang agents for, in order (a caller rung twice appears twice)."""
    return [e.call_sid for e in sim.events.all("dial.ringing")]


def join_queue(sim: Simulator, from_: str, sc: Script, timeout: float = 15) -> CallHandle:
    """Start a call and return once it holds in the Twilio queue (its queue.joined event)."""
    handle = sim.start_call(from_, sc)
    try:
        sim.events.wait("queue.joined", timeout=timeout, call_sid=handle.sid)
    except AssertionError:
        if handle.done():
            handle.join(0)  # re-raises the call's own failure, which explains more
        raise
    return handle


def busy_intervals(events: list[Event]) -> dict[str, list[tuple[int, int, str, str]]]:
    """Per agent endpoint: (start seq, end seq, caller CallSid, kind) of every ringing and every connected
    period, from dial.ringing / dial.connected to the dial.ended of the same leg."""
    open_: dict[tuple[str, str], tuple[int, str, str]] = {}
    out: dict[str, list[tuple[int, int, str, str]]] = {}
    for e in events:
        leg = e.data.get("dial_call_sid", "")
        if e.kind == "dial.ringing":
            open_[("ringing", leg)] = (e.seq, e.data["endpoint"], e.call_sid)
        elif e.kind == "dial.connected":
            open_[("connected", leg)] = (e.seq, e.data["endpoint"], e.call_sid)
        elif e.kind == "dial.ended":
            for kind in ("ringing", "connected"):
                started = open_.pop((kind, leg), None)
                if started is not None:
                    out.setdefault(started[1], []).append((started[0], e.seq, started[2], kind))
    for (kind, _), (seq, endpoint, sid) in open_.items():  # still open at the end: a leg that never ended
        out.setdefault(endpoint, []).append((seq, 10**12, sid, kind))
    return out


def overlaps(intervals: dict[str, list[tuple[int, int, str, str]]], kind: str) -> list[tuple[str, tuple, tuple]]:
    """Pairs of periods of `kind` on one endpoint that overlap."""
    found = []
    for endpoint, spans in intervals.items():
        spans = sorted(s for s in spans if s[3] == kind)
        for a, b in zip(spans, spans[1:]):
            if b[0] < a[1]:
                found.append((endpoint, a, b))
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes ----------------------------------------------------------------------------------

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
        """SIGTERM every child (rq finishes its job and stops, gunicorn its requests); SIGKILL its session after 10 s."""
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


# --- the in-process hotline, simulator and workers ----------------------------------------------

@dataclass
class Flow:
    """A hotline app on a copy of the test services (own clock and configuration), the simulator
    posting into it, and rq workers in their own processes dispatching through the simulator's REST API."""

    sim: Simulator
    app: Flask
    svc: Services
    clock: FakeClock
    config: Config
    api: Api
    procs: Processes


@contextmanager
def in_process_flow(services: Services, folder: Path, *, workers: int = 1, scale: float = 0.005, extra: str = "",
                    clock: Any = None, **queue: Any) -> Iterator[Flow]:
    """Everything a queue-flow test needs; on exit the workers are stopped, then the simulator.

    `extra`: TOML in place of the always-open hours (e.g. hours and [callbacks]); `clock`: the app's clock.
    """
    config_path, config = write_config(folder, extra, **queue)
    clock = clock or FakeClock(config["hotline"]["timezone"])
    svc = replace(services, config=config, clock=clock, extras={})
    app = create_app(services=svc)
    procs = Processes(folder)
    sim = Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=scale)
    try:
        api_url = sim.start()
        svc.gateway = TwilioGateway(sim.account_sid, AUTH_TOKEN, api_url, from_number=sim.number)
        procs.workers(workers, hotline_env(services, config_path, api_url), services.redis_url)
        yield Flow(sim, app, svc, clock, config, Api(app=app), procs)
    finally:
        procs.stop()
        sim.stop()
