"""The bench's load: who calls and what they do, driven through the simulator, and the same number of requests on
the constant endpoint; every webhook's latency and round trips recorded."""
from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
import uuid
from base64 import b64encode
from dataclasses import dataclass
from typing import Any

from simulator import CallHandle, Script
from simulator.transport import HttpTransport
from tools.bench.stack import PIN, Stack

TIERS = {"annual_premium": 0.10, "premium": 0.20, "standard": 0.45, "guest": 0.25}
PREFIX = {"annual_premium": "137", "premium": "138", "standard": "139", "guest": "136"}
PATIENCE = (None, None, None, 40.0, 400.0, 900.0)  # simulated seconds on hold before hanging up (None: waits)
CALLBACK_EVERY = 25  # one caller in 25 presses 1 on hold, confirms the number and is called back
CALL_DEADLINE_S = 300.0  # real seconds a call may take before the run counts it as stuck
HEARTBEAT_S = 10.0  # the console's heartbeat period (console/static)


@dataclass(frozen=True)
class Caller:
    """One simulated caller: tier, number and what they do."""

    tier: str
    phone: str
    script: Script
    books_callback: bool


def plan(n: int, rng: random.Random) -> list[Caller]:
    """`n` callers: a mix of tiers, to an agent at once or through a menu category, some impatient, a few callbacks."""
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


def _agent_request(url: str, login: str, method: str, path: str, body: dict[str, str]) -> None:
    auth = b64encode(f"{login}:{login}-pw".encode()).decode()
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"agent {login}: {method} {path} answered {resp.status}")


def set_available(url: str, logins: list[str]) -> None:
    """Each agent goes available through PUT /api/agents/me/status, as the console does."""
    for login in logins:
        _agent_request(url, login, "PUT", "/api/agents/me/status", {"status": "available"})


class Heartbeats:
    """The agents' consoles saying they are there, every HEARTBEAT_S, as the console does (a silent agent goes
    offline by itself after presence.heartbeat_timeout_s): on a thread for as long as the `with` block runs."""

    def __init__(self, url: str, logins: list[str]) -> None:
        self.url, self.logins, self._stop = url, logins, threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            for login in self.logins:
                _agent_request(self.url, login, "POST", "/api/agents/me/heartbeat", {"device": "registered"})

    def __enter__(self) -> Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
