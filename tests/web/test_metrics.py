"""Prometheus /metrics: figures read from the real stores at scrape time, webhook latency, access, outages,
gunicorn's workers. (A little over 300 lines: one scrape format, its access rules and its outages together.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from redis.connection import AbstractConnection
from sqlalchemy import event

from callqueue.agents.accounts import add_agent
from callqueue.callbacks import tickets
from callqueue.live import calls, presence
from callqueue.settings import queue_settings
from console.metrics import from_allowed_network
from core.db import make_engine, make_session_factory
from core.redisconn import make_redis
from core.services import Services
from hotline.app import create_app
from hotline.runner import metrics_env
from tests.support.common import ALWAYS_OPEN, PUBLIC_URL, ROOT, sign
from tests.support.flow import write_config
from tests.support.people import basic, password
from tests.support.processes import hotline_env

NOW = datetime(2026, 3, 2, 2, 20, tzinfo=UTC)  # 10:20 in Asia/Shanghai: "today" began 10 h 20 min ago
OUTSIDE = {"REMOTE_ADDR": "10.1.2.3"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Any, **kw: Any) -> Samples:
    """GET /metrics (expecting 200) and every sample, keyed by (sample name, sorted labels)."""
    resp = client.get("/metrics", **kw)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.content_type == CONTENT_TYPE_LATEST
    out: Samples = {}
    for fam in text_string_to_metric_families(resp.get_data(as_text=True)):
        if fam.name.startswith("hotline_"):
            assert fam.documentation, f"{fam.name} has no HELP text"
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None when absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


def at(seconds_before: float) -> datetime:
    return NOW - timedelta(seconds=seconds_before)


@pytest.fixture
def fixed_app(services: Services) -> Any:
    """An app on the test stores whose clock stands at NOW."""
    return create_app(services=replace(services, clock=lambda: NOW, extras={}))


def play(db: Any, r: Any, config: Any) -> None:
    """Agents, callers and callback tickets around NOW, through the domain functions the webhooks use."""
    qs = queue_settings(config)

    def join(sid: str, tier: str, seconds_before: float) -> None:
        calls.arrived(db, sid, from_number="+8613800000001", now=at(seconds_before + 20))
        calls.join_queue(db, r, sid, tier=tier, now=at(seconds_before), settings=qs)
        db.commit()

    presence.set_state(r, "ann", "available", at(900), endpoint="client:ann")
    presence.set_state(r, "bob", "away", at(900))
    join("CA00", "standard", 86400)  # yesterday: not today's
    calls.queue_result(db, r, "CA00", "hangup", at(86400 - 60), qs)
    join("CA01", "premium", 300)
    offer = calls.dispatch(db, r, at(290))
    assert offer is not None and offer.agent == "ann"
    calls.agent_answered(db, r, "CA01", "ann", at(280), qs)       # answered; ann on a call
    presence.set_state(r, "cat", "available", at(270), endpoint="client:cat")
    join("CA02", "standard", 200)
    calls.queue_result(db, r, "CA02", "hangup", at(100), qs)       # abandoned after 100 s
    join("CA03", "standard", 50)
    calls.queue_result(db, r, "CA03", "hangup", at(48), qs)        # short abandon (2 s)
    join("CA07", "standard", 90)
    calls.left_for_callback(db, r, "CA07", at(80), qs)             # to a callback
    join("CA04", "premium", 120)                                   # these three wait now
    join("CA05", "premium", 60)
    join("CA06", "guest", 30)
    db.commit()

    overdue = config["callbacks"]["overdue_after_s"]
    for i, due in enumerate((NOW + timedelta(hours=1), at(60), at(overdue + 60))):  # scheduled, due, overdue
        tickets.create(db, phone=f"+861390000000{i}", tier="premium", lang="zh", reason="after_hours", score=float(i),
                       due=due, now=at(7200), max_attempts=3)
    db.commit()


def test_scrape_reads_queue_agents_calls_and_callbacks(fixed_app: Any, db: Any, redis: Any, services: Services) -> None:
    play(db, redis, services.config)
    s = scrape(fixed_app.test_client())
    waiting = {t: value(s, "hotline_queue_waiting", tier=t) for t in ("annual_premium", "premium", "standard", "guest")}
    assert waiting == {"annual_premium": 0, "premium": 2, "standard": 0, "guest": 1}
    assert value(s, "hotline_queue_longest_wait_seconds", tier="premium") == 120
    assert value(s, "hotline_queue_longest_wait_seconds", tier="guest") == 30
    agents = {st: value(s, "hotline_agents", state=st) for st in ("available", "on_call", "wrap_up", "away", "offline")}
    assert agents == {"available": 1, "on_call": 1, "wrap_up": 0, "away": 1, "offline": 0}
    std = {o: value(s, "hotline_calls_today", tier="standard", outcome=o)
           for o in ("offered", "answered", "abandoned", "short_abandoned", "to_callback")}
    assert std == {"offered": 3, "answered": 0, "abandoned": 1, "short_abandoned": 1, "to_callback": 1}
    assert value(s, "hotline_calls_today", tier="premium", outcome="offered") == 3
    assert value(s, "hotline_calls_today", tier="premium", outcome="answered") == 1
    cb = {st: value(s, "hotline_callbacks", status=st) for st in ("scheduled", "due", "overdue", "completed", "failed")}
    assert cb == {"scheduled": 1, "due": 1, "overdue": 1, "completed": 0, "failed": 0}
    assert value(s, "hotline_scrape_error", source="redis") == 0 and value(s, "hotline_scrape_error", source="sql") == 0


def test_a_scrape_costs_two_redis_round_trips_and_two_sql_statements(
    fixed_app: Any, db: Any, redis: Any, services: Services, monkeypatch: pytest.MonkeyPatch,
) -> None:
    play(db, redis, services.config)
    client = fixed_app.test_client()
    scrape(client)  # the first scrape after a Redis start may load the agents' Lua script: count the next one
    sent = {"redis": 0, "sql": 0}
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent["redis"] += 1  # one write per round trip: a pipeline packs all its commands into one
        return original(self, command, check_health)

    def on_sql(*_args: Any) -> None:
        sent["sql"] += 1

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    event.listen(services.engine, "before_cursor_execute", on_sql)
    try:
        s = scrape(client)
    finally:
        event.remove(services.engine, "before_cursor_execute", on_sql)
    assert value(s, "hotline_queue_waiting", tier="premium") == 2  # the counted scrape did read the figures
    assert sent == {"redis": 2, "sql": 2}


def test_webhook_latency_histogram_counts_by_url_rule(client: Any, voice: Any, app: Any) -> None:
    assert value(scrape(client), "hotline_webhook_duration_seconds_count", route="/voice/incoming") is None
    for i in range(3):
        assert voice("/voice/incoming", {"CallSid": f"CA{i:032d}"}).status_code == 200
    assert voice("/voice/incoming", signed=False).status_code == 403  # refused requests are timed too
    for step in ("no-such-step-1", "no-such-step-2"):
        voice(f"/voice/{step}")
    s = scrape(client)
    assert value(s, "hotline_webhook_duration_seconds_count", route="/voice/incoming") == 4
    assert value(s, "hotline_webhook_duration_seconds_bucket", route="/voice/incoming", le="+Inf") == 4
    assert value(s, "hotline_webhook_duration_seconds_sum", route="/voice/incoming") > 0
    assert value(s, "hotline_webhook_duration_seconds_count", route="/voice/<path:unknown>") == 2
    routes = {dict(labels)["route"] for name, labels in s if name == "hotline_webhook_duration_seconds_count"}
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert routes == {"/voice/incoming", "/voice/<path:unknown>"} and routes <= rules  # no raw paths as labels


def test_metrics_of_two_apps_in_one_process_are_apart(services: Services) -> None:
    first, second = create_app(services=services), create_app(services=services)
    params = {"CallSid": "CA" + "5" * 32}
    resp = first.test_client().post("/voice/fallback", data=params,
                                    headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/voice/fallback", params)})
    assert resp.status_code == 200
    assert value(scrape(first.test_client()), "hotline_webhook_duration_seconds_count", route="/voice/fallback") == 1
    assert (
        value(scrape(second.test_client()), "hotline_webhook_duration_seconds_count", route="/voice/fallback") is None
    )


@pytest.fixture
def people(db: Any) -> None:
    now = datetime.now(UTC)
    add_agent(
        db, login="ann", name="Ann", password=password("ann"), role="agent", client_identity="ann", phone=None, now=now
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password=password("sam"),
        role="supervisor",
        client_identity="sam",
        phone=None,
        now=now,
    )
    db.commit()


def test_allowed_network_needs_no_login_and_others_need_a_supervisor(client: Any, people: None) -> None:
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    resp = client.get("/metrics", environ_overrides=OUTSIDE)
    assert resp.status_code == 401 and "Basic" in resp.headers["WWW-Authenticate"]
    assert b"hotline_" not in resp.data
    assert client.get("/metrics", environ_overrides=OUTSIDE, headers=basic("ann")).status_code == 403
    assert (
        client.get("/metrics", environ_overrides=OUTSIDE, headers={"Authorization": "Basic c2FtOndyb25n"}).status_code
        == 401
    )
    s = scrape(client, environ_overrides=OUTSIDE, headers=basic("sam"))
    assert value(s, "hotline_scrape_error", source="sql") == 0


@pytest.mark.parametrize("addr, allowed", [
    ("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True), ("10.9.0.7", True),
    ("10.1.2.3", False), ("127.0.0.2", False), ("", False), (None, False), ("not-an-ip", False),
])
def test_allow_networks_matching(addr: str | None, allowed: bool) -> None:
    import ipaddress

    nets = tuple(ipaddress.ip_network(n, strict=False) for n in ("127.0.0.1/32", "::1/128", "10.9.0.0/16"))
    assert from_allowed_network(addr, nets) is allowed


def config_app(services: Services, folder: Path, metrics_toml: str) -> Any:
    """An app on the test stores whose configuration file carries this [metrics] section."""
    _, config = write_config(folder, ALWAYS_OPEN.read_text(encoding="utf-8") + "\n[metrics]\n" + metrics_toml)
    return create_app(services=replace(services, config=config, extras={}))


def test_disabled_metrics_answer_404_and_webhooks_still_work(services: Services, tmp_path: Path) -> None:
    app = config_app(services, tmp_path, "enabled = false\n")
    client = app.test_client()
    assert client.get("/metrics").status_code == 404
    params = {"CallSid": "CA" + "6" * 32}
    resp = client.post(
        "/voice/fallback", data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/voice/fallback", params)}
    )
    assert resp.status_code == 200 and b"<Say" in resp.data


def test_no_allowed_networks_means_even_localhost_logs_in(services: Services, tmp_path: Path, people: None) -> None:
    client = config_app(services, tmp_path, "allow_networks = []\n").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=basic("sam")).status_code == 200


@pytest.fixture
def dead_redis() -> Iterator[Any]:
    """A client of a Redis that is not there (nothing listens on port 1)."""
    client = make_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
    yield client
    client.close()


@pytest.fixture
def dead_sql(tmp_path: Path) -> Iterator[Any]:
    """An engine on a database file SQLite cannot open (its folder does not exist)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'hotline.db'}")
    yield engine
    engine.dispose()


def test_redis_down_still_answers_200_with_sql_figures(services: Services, db: Any, dead_redis: Any) -> None:
    tickets.create(db, phone="+8613900000001", tier="premium", lang="zh", reason="after_hours", score=1.0,
                   due=NOW + timedelta(hours=1), now=NOW, max_attempts=3)
    db.commit()
    app = create_app(services=replace(services, redis=dead_redis, clock=lambda: NOW, extras={}))
    s = scrape(app.test_client())
    assert value(s, "hotline_scrape_error", source="redis") == 1 and value(s, "hotline_scrape_error", source="sql") == 0
    assert value(s, "hotline_callbacks", status="scheduled") == 1
    assert not any(name.startswith(("hotline_queue_", "hotline_agents")) for name, _ in s)


def test_sql_down_still_answers_200_with_redis_figures(services: Services, redis: Any, dead_sql: Any) -> None:
    presence.set_state(redis, "ann", "available", NOW, endpoint="client:ann")
    app = create_app(
        services=replace(
            services, engine=dead_sql, sessions=make_session_factory(dead_sql), clock=lambda: NOW, extras={}
        )
    )
    s = scrape(app.test_client())
    assert value(s, "hotline_scrape_error", source="sql") == 1 and value(s, "hotline_scrape_error", source="redis") == 0
    assert value(s, "hotline_agents", state="available") == 1
    assert not any(name.startswith("hotline_callbacks") for name, _ in s)


# A process of its own, as a gunicorn worker is: multiprocess mode is chosen when prometheus_client is imported.
WORKER = """
import sys
from hotline.app import create_app
from tests.support.common import PUBLIC_URL, sign
client = create_app().test_client()
for i in range(int(sys.argv[1])):
    params = {"CallSid": f"CA{i:032d}"}
    signed = {"X-Twilio-Signature": sign(PUBLIC_URL + "/voice/fallback", params)}
    resp = client.post("/voice/fallback", data=params, headers=signed)
    assert resp.status_code == 200, resp.status_code
"""


def test_multiprocess_scrape_sums_every_process(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mp_dir = tmp_path / "prometheus"
    mp_dir.mkdir()
    (mp_dir / "histogram_999999.db").write_bytes(b"stale")  # what a previous run could have left
    env = {**hotline_env(services, ALWAYS_OPEN, "http://127.0.0.1:9"), **metrics_env(tmp_path)}
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(mp_dir) and not (mp_dir / "histogram_999999.db").exists()
    for n in (3, 2):
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(n)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(mp_dir.glob("histogram_*.db"))) == 2  # one file per process
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(mp_dir))
    s = scrape(create_app(services=services).test_client())  # this process observed nothing itself
    assert value(s, "hotline_webhook_duration_seconds_count", route="/voice/fallback") == 5
    assert value(s, "hotline_webhook_duration_seconds_bucket", route="/voice/fallback", le="+Inf") == 5
    assert value(s, "hotline_scrape_error", source="redis") == 0  # the store gauges are there too
