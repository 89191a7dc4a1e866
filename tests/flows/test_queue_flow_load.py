"""200 callers and 10 agents at once, driven from several processes: the hotline under gunicorn (2 worker
processes) over real HTTP, 2 rq worker processes dispatching, the simulator's callers on their own
threads. Every caller ends answered or abandoned exactly once, and no agent is ever given two calls."""
from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callqueue.records import IN_PROGRESS
from core import keys
from simulator import CallHandle, Simulator
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.flow import FINAL, busy_intervals, overlaps, write_config
from tests.support.hotline_api import Api, assert_stats_match_records, records
from tests.support.people import add_members, add_people, phone, script
from tests.support.processes import Processes, free_port, hotline_env
from tests.support.redis_state import foreign_keys

CALLERS = {"annual_premium": 20, "premium": 40, "standard": 90, "guest": 50}
AGENTS = [f"agent{i:02d}" for i in range(10)]
SCALE = 0.01  # real seconds per simulated second: a 30 s conversation lasts 0.3 s
PATIENCE = (None, None, None, 40, 400, 900)  # simulated seconds in the queue before hanging up (None: waits)
DEADLINE_S = 120


@pytest.fixture
def stack(services: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """gunicorn + 2 rq workers on the test stores and the simulator (REST API, callers over HTTP); all stopped after."""
    config_path, config = write_config(tmp_path, wrap_up_s=0, announce_every_s=300, ring_timeout_s=15)
    procs = Processes(tmp_path)
    port = free_port()
    sim = Simulator.over_http(PUBLIC_URL, AUTH_TOKEN, connect_to=f"http://127.0.0.1:{port}", scale=SCALE)
    try:
        env = hotline_env(services, config_path, sim.start())
        procs.workers(2, env, services.redis_url, wait=False)
        web_url = procs.web(env, port, workers=2)
        procs.wait_workers(2, services.redis_url)
        yield {"procs": procs, "config": config, "sim": sim, "api": Api(base_url=web_url)}
    finally:
        procs.stop()
        sim.stop()


def diagnose(services: Any, procs: Processes, stuck: list[CallHandle]) -> str:
    r = services.redis
    agents = {a: r.hget(keys.agent(a), "state") for a in AGENTS}
    return (f"{len(stuck)} calls still running, e.g. {[h.sid for h in stuck[:5]]}; waiting in our order: "
            f"{r.zcard(keys.ORDER)}; agents: {agents}\n{procs.logs()}")


def test_200_callers_and_10_agents_end_answered_or_abandoned_exactly_once(stack: dict[str, Any], services: Any) -> None:
    sim, api, procs, config = stack["sim"], stack["api"], stack["procs"], stack["config"]
    rng = random.Random(4)
    add_people(services, AGENTS)
    phones = add_members(services, config, {t: n for t, n in CALLERS.items() if t != "guest"})
    phones["guest"] = [phone("guest", i) for i in range(CALLERS["guest"])]
    for login in AGENTS:
        sim.add_agent(login, answer_after=rng.uniform(1, 3), talk_seconds=rng.choice([20, 30, 40]))
    callers = [(tier, p) for tier, numbers in phones.items() for p in numbers]
    rng.shuffle(callers)
    patience = {p: rng.choice(PATIENCE) for _, p in callers}

    started = time.monotonic()
    for login in AGENTS[:5]:
        api.status(login, "available")
    handles = {sim.start_call(p, script(tier, patience[p])).sid: (tier, p) for tier, p in callers}
    last = 0
    for _ in range(20):  # the other half of the agents log on while the callers pour in
        last = sim.events.wait("queue.joined", timeout=30, after=last).seq
    for login in AGENTS[5:]:
        api.status(login, "available")
    deadline = time.monotonic() + DEADLINE_S
    all_handles = [sim.handle(sid) for sid in handles]
    for h in all_handles:
        if not h.wait(max(0.0, deadline - time.monotonic())):
            break
    stuck = [h for h in all_handles if not h.done()]
    assert not stuck, diagnose(services, procs, stuck)
    elapsed = time.monotonic() - started
    results = {h.sid: h.join(0) for h in all_handles}  # re-raises any call's own failure (bad TwiML, HTTP errors)
    assert not sim.failures, sim.failures
    procs.check_alive()

    # What the simulator saw: a conversation with an agent, or a hang-up while holding; never both, never neither.
    # (An agent answers on a leg of their own; the caller then joins the conference of their call: conference.join.
    # A caller whose patience ends while their agent hears the whisper, before they are moved in, hung up holding.)
    joined = Counter(e.call_sid for e in sim.events.all("conference.join") if e.call_sid in results)
    seen_answered = {sid for sid, res in results.items() if res.talked_with()}
    seen_abandoned = {sid for sid, res in results.items()
                      if res.queue_results and res.queue_results[-1]["QueueResult"] == "hangup"}
    assert not seen_answered & seen_abandoned and seen_answered | seen_abandoned == set(results)
    assert set(joined) == seen_answered and set(joined.values()) <= {1}  # each answered caller connected once
    assert all(len(results[sid].talked_with()) == 1 for sid in seen_answered)  # to one agent
    assert all(res.status == "completed" for res in results.values())

    # What the SQL records say: one row per call, one final outcome each, the same split, the same agent.
    recs = records(services)
    assert set(recs) == set(results)
    outcomes = Counter(rec.outcome for rec in recs.values())
    assert set(outcomes) <= set(FINAL) and IN_PROGRESS not in outcomes, outcomes
    assert {sid for sid, rec in recs.items() if rec.outcome == "answered"} == seen_answered
    assert {sid for sid, rec in recs.items() if rec.outcome in ("abandoned", "short_abandoned")} == seen_abandoned
    assert all([f"client:{recs[sid].agent_login}"] == results[sid].talked_with() for sid in seen_answered)
    assert all(recs[sid].tier == tier for sid, (tier, _) in handles.items())

    # No agent ever rang for, or talked to, two callers at once, nor rang while talking.
    intervals = busy_intervals(sim)
    assert set(intervals) <= {f"client:{a}" for a in AGENTS}
    assert overlaps(intervals) == []
    assert {kind for spans in intervals.values() for *_, kind in spans} == {"ringing", "connected"}

    # The live figures agree with the records and with the simulator; every agent is free again.
    live = assert_stats_match_records(api, services, config)
    overall = live["overall"]
    assert overall["offered"] == len(results) == sum(CALLERS.values())
    assert overall["answered"] == len(seen_answered) and overall["waiting"] == 0
    assert overall["abandoned"] + overall["short_abandoned"] == len(seen_abandoned)
    assert live["agents"]["available"] == len(AGENTS) and api.queue() == []
    assert seen_answered and seen_abandoned  # the mix really happened
    assert foreign_keys(services.redis) == []  # every key the calls left is the hotline's (core/keys.py) or rq's
    print(f"\n200 callers / 10 agents: {elapsed:.1f} s to the last hang-up; outcomes {dict(outcomes)}; "
          f"agents' legs {len(sim.events.all('device.ringing'))}; "
          f"answered per tier { {t: v['answered'] for t, v in live['tiers'].items()} }; ASA {overall['asa_s']} s")
