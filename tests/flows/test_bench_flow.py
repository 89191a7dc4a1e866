"""`hotline bench`: the quick run's end-state invariant (never its speed), and bench mode's round-trip counting.

The quick run is a real subprocess: gunicorn, rq workers, cron and the simulator, on the embedded stores, or
on CI's PostgreSQL and Redis server when HOTLINE_TEST_DATABASE_URL / HOTLINE_TEST_REDIS_URL name them. On
PostgreSQL the bench keeps to a schema of its own, created and dropped by the run, so the session's tables
(public schema) survive it: the test checks that they still answer afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from callqueue.records import CallRecord
from core.redisconn import make_redis
from core.services import Services
from hotline.app import create_app, create_services
from hotline.benchmode import CONSTANT_TWIML, RoundTrips, count_redis, count_sql
from tests.support.common import PUBLIC_URL, ROOT, sign

OUTCOMES = {"answered", "abandoned", "called_back", "called_back_raced"}


def processes_with(marker: str) -> list[tuple[int, str]]:
    """Live processes whose environment holds `marker` (everything the bench started inherits it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker.encode() in env and int(pid) != os.getpid():
            found.append((int(pid), cmd[:120]))
    return found


def test_quick_bench_accounts_for_every_caller_exactly_once(services: Services) -> None:
    # `services` empties the test Redis first: the bench refuses a database that holds keys.
    marker = f"BENCH_TEST_MARK={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
    env[marker.split("=")[0]] = marker.split("=")[1]
    args = [sys.executable, "-m", "hotline.cli", "bench", "--quick", "--json"]
    if os.environ.get("HOTLINE_TEST_REDIS_URL"):
        args += ["--redis-url", os.environ["HOTLINE_TEST_REDIS_URL"]]
    if os.environ.get("HOTLINE_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["HOTLINE_TEST_DATABASE_URL"]]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    leftovers = processes_with(marker)
    assert not leftovers, f"the bench left processes running: {leftovers}"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    rep = json.loads(proc.stdout)

    inv = rep["invariant"]
    assert inv["ok"] and inv["failures"] == []
    assert inv["callers"] == rep["options"]["calls"] == 20
    assert inv["accounted_once"] == 20 and sum(inv["outcomes"].values()) == 20
    assert set(inv["outcomes"]) <= OUTCOMES and inv["outcomes"].get("answered", 0) > 0
    assert sum(sum(t.values()) for t in inv["per_tier"].values()) == 20

    flow = rep["flow"]
    steps = flow["steps"]
    assert steps["incoming"]["count"] == 20 and steps["status"]["count"] >= 20
    for name in ("incoming", "queue", "status") if "queue" in steps else ("incoming", "status"):
        assert steps[name]["count"] > 0
    for name, s in steps.items():
        assert s["count"] > 0 and s["not_200"] == 0, (name, s)
        assert s["p50_ms"] > 0 and s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"], (name, s)
        # -1 would mean a response without bench mode's headers
        assert min(s["redis_mean"], s["sql_mean"], s["sql_tx_mean"], s["sql_conn_mean"]) >= 0, (name, s)
    assert steps["incoming"]["redis_mean"] > 0 and steps["incoming"]["sql_mean"] > 0
    assert flow["requests"] == sum(s["count"] for s in steps.values()) and flow["rps"] > 0
    assert rep["bare"]["requests"] == 200 and rep["bare"]["not_200"] == 0 and rep["bare"]["rps"] > 0
    assert rep["ratio_flow_to_bare_rps"] > 0

    per_call = rep["per_call"]
    assert per_call["webhooks"] > 0 and per_call["redis_from_webhooks"] > 0 and per_call["sql_from_webhooks"] > 0
    assert per_call["redis_commands_all_clients"] >= per_call["redis_from_webhooks"]
    rss = rep["memory"]["web_worker_rss_kb"]
    assert (
        len(rss["start"]) == len(rss["end"]) == rep["stack"]["gunicorn_workers"] and min(rss["start"] + rss["end"]) > 0
    )
    keys = rep["end_state"]["redis_keys"]
    assert keys["persistent_new_count"] == 0 and keys["collections_grown"] == {}
    assert rep["end_state"]["rq_failed_jobs"] == 0 and rep["end_state"]["drained"]["idle"]

    # The session's own tables (and Redis database) are still usable: the bench kept to its schema.
    with services.sessions() as db:
        assert db.scalar(select(func.count()).select_from(CallRecord)) == 0
    if os.environ.get("HOTLINE_TEST_DATABASE_URL"):
        engine = create_engine(os.environ["HOTLINE_TEST_DATABASE_URL"])
        with engine.connect() as conn:
            left = conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hlbench_%'")).all()
        engine.dispose()
        assert left == [], f"bench schemas left behind: {left}"
    assert services.redis.dbsize() == 0  # a given Redis database is left as empty as it was found


def test_a_pipeline_and_a_script_each_count_as_one_redis_round_trip(services: Services) -> None:
    counts = RoundTrips()
    r = count_redis(make_redis(services.redis_url), counts)
    try:
        r.ping()  # a new connection's handshake (HELLO, CLIENT SETINFO…) is round trips of its own: done once
        counts.reset()
        r.set("bench:test:a", 1)
        assert counts.redis == 1
        counts.reset()
        pipe = r.pipeline(transaction=False)
        for i in range(10):
            pipe.incr(f"bench:test:{i}")
        pipe.execute()
        assert counts.redis == 1
        counts.reset()
        with r.pipeline() as tx:  # MULTI … EXEC is one write too
            tx.incr("bench:test:a").incr("bench:test:b").execute()
        assert counts.redis == 1
        script = r.register_script("redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])")
        script(keys=["bench:test:a", "bench:test:b"])  # the first call may load the script (NOSCRIPT, then SCRIPT LOAD)
        counts.reset()
        script(keys=["bench:test:a", "bench:test:b"])
        assert counts.redis == 1
        counts.reset()
        r.eval("return redis.call('GET', KEYS[1])", 1, "bench:test:a")
        assert counts.redis == 1
    finally:
        r.close()


def test_sql_statements_transactions_and_checkouts_are_counted() -> None:
    counts = RoundTrips()
    engine = create_engine("sqlite://")
    count_sql(engine, counts)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
        conn.execute(text("SELECT 2"))
    assert (counts.sql, counts.sql_tx, counts.sql_conn) == (2, 1, 1)
    engine.dispose()


def test_the_constant_endpoint_exists_only_in_bench_mode(client: Any, overrides: dict[str, Any],
                                                          twiml_check: Callable[[str], None]) -> None:
    assert client.post("/bench/twiml").status_code == 404
    assert "X-Hotline-Redis-RT" not in client.post("/voice/fallback").headers  # no bench hooks either
    svc = create_services({**overrides, "bench": True})
    try:
        bench = create_app(services=svc).test_client()
        resp = bench.post("/bench/twiml")
        assert resp.status_code == 200 and resp.get_data(as_text=True) == CONSTANT_TWIML
        twiml_check(CONSTANT_TWIML)
        assert (resp.headers["X-Hotline-Redis-RT"], resp.headers["X-Hotline-SQL"]) == ("0", "0")
        params = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "0" * 32, "From": "+8613900000009",
                  "To": "+864001234567", "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
        call = bench.post(
            "/voice/incoming", data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/voice/incoming", params)}
        )
        assert call.status_code == 200
        # README: /voice/incoming is one SELECT and one INSERT, and a handful of Redis round trips
        assert int(call.headers["X-Hotline-SQL"]) == 2 and int(call.headers["X-Hotline-Redis-RT"]) >= 1
    finally:
        svc.close()


def test_a_terminated_bench_stops_everything_it_started(services: Services) -> None:
    """SIGTERM mid-run (a CI timeout, `kill`) unwinds: gunicorn, workers, cron and Redis go with the bench."""
    import select as io_select
    import signal
    import time

    marker = f"BENCH_TEST_MARK={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))}
    env[marker.split("=")[0]] = marker.split("=")[1]
    proc = subprocess.Popen([sys.executable, "-m", "hotline.cli", "bench", "--calls", "100000", "--concurrency", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.monotonic() + 120, ""
        while "bench: calls:" not in seen:  # the stack is up and calls are running
            assert time.monotonic() < deadline and proc.poll() is None, f"the bench did not start calls: {seen[-2000:]}"
            if io_select.select([proc.stderr], [], [], 1)[0]:
                seen += proc.stderr.readline()
        assert len(processes_with(marker)) > 3  # gunicorn, rq workers, cron, Redis
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert processes_with(marker) == []
