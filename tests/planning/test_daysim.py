"""The day simulation: closed forms (M/M/c against Erlang C), the queue order DESIGN states, determinism,
the statistics code against the event log, the ceiling under load, the CLI, and bad profiles.

Every run uses the real queue code on a real Redis (a scratch database of the test server).
"""
from __future__ import annotations

import heapq
import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from callqueue.planning import erlang
from callqueue.planning.daysim import SimResult, SimulationError, simulate
from callqueue.planning.policies import answered_waits, overtaken, percentile, policy_settings, tier_rows
from callqueue.planning.profile import (
    Caller,
    DayProfile,
    TierModel,
    day_start_ms,
    draw_callers,
    load_tiers,
    parse_day,
)
from callqueue.planning.profile_csv import ProfileError
from callqueue.settings import QueueSettings, queue_settings
from hotline.cli.main import main
from hotline.configuration import full_config

CONFIG = full_config(None)
QS = queue_settings(CONFIG)
START = day_start_ms(date(2026, 3, 2), QS.tz)  # a Monday; fixed, never the wall clock
PNG = b"\x89PNG\r\n\x1a\n"


def single_tier(calls_per_interval: float, intervals: int, agents: int, aht_s: float,
                patience_s: float | None = None) -> DayProfile:
    """Standard callers only, exponential handle times: an M/M/c queue (M/M/c+M with patience)."""
    model = TierModel("standard", 1.0, aht_s, 0.0, patience_s, "exponential")
    return DayProfile(arrivals={"standard": (calls_per_interval,) * intervals}, tiers={"standard": model},
                      roster=(agents,) * intervals, source="test")


def run(r: Any, callers: list[Caller], roster: tuple[int, ...], qs: QueueSettings, intervals: int,
        calendar: Any = None) -> SimResult:
    return simulate(r, callers, roster, qs, calendar=calendar, start_ms=START, intervals=intervals)


def fcfs_waits(callers: list[Caller], agents: int) -> dict[str, float]:
    """The textbook FCFS multi-server queue on the same callers: each starts when the first agent frees."""
    free = [0] * agents
    out = {}
    for c in sorted(callers, key=lambda c: c.arrival_ms):
        start = max(heapq.heappop(free), c.arrival_ms)
        out[c.sid] = (start - c.arrival_ms) / 1000
        heapq.heappush(free, start + c.handle_ms)
    return out


def test_mmc_mean_wait_matches_erlang_c(scratch: Any) -> None:
    # 2 agents offered 1 Erlang (rho = 0.5), 3-second calls, no wrap-up, no abandonment: an M/M/2 queue,
    # for which Erlang C gives P(wait) = 1/3 and a mean wait of 1 s.
    aht, agents, per_interval = 3.0, 2, 300.0
    a = erlang.offered_load(per_interval, 900, aht)
    expected_wait, expected_p = erlang.mean_wait(agents, a, aht), erlang.erlang_c(agents, a)
    # 1. The real queue code on ~9,000 callers gives every caller exactly the wait of the FCFS recursion.
    profile = single_tier(per_interval, 30, agents, aht)
    callers = draw_callers(profile, START, seed=7)
    result = run(scratch, callers, profile.roster or (), replace(QS, wrap_up_s=0), 30)
    assert all(rec.outcome == "answered" for rec in result.records)
    assert {rec.sid: rec.wait_s for rec in result.records} == pytest.approx(fcfs_waits(callers, agents), abs=1e-9)
    waits = [rec.wait_s or 0.0 for rec in sorted(result.records, key=lambda rec: rec.arrival_ms)[500:]]
    assert sum(waits) / len(waits) == pytest.approx(expected_wait, rel=0.15)  # ~6 % standard error at this length
    # 2. So a long run (420,000 callers drawn the same way, fixed seed) is the simulator's long run: its mean
    # wait and share of callers who wait are within a few per cent of Erlang C (standard error ~0.8 %).
    long = draw_callers(single_tier(per_interval, 1400, agents, aht), START, seed=7)
    waits = sorted(fcfs_waits(long, agents).items())[500:]
    mean = sum(w for _, w in waits) / len(waits)
    p_wait = sum(1 for _, w in waits if w > 0) / len(waits)
    assert mean == pytest.approx(expected_wait, rel=0.03), mean
    assert p_wait == pytest.approx(expected_p, rel=0.02), p_wait


def caller(sid: str, tier: str, at_s: float, handle_s: float) -> Caller:
    return Caller(sid, tier, START + int(at_s * 1000), int(handle_s * 1000), None, (1.0, 1.0, 1.0, 1.0))


@pytest.mark.parametrize("premium_at, first", [(20.0, "P"), (700.0, "S")])
def test_order_is_arrival_minus_boost(scratch: Any, premium_at: float, first: str) -> None:
    # One agent, busy with A until t=1000 s. Standard S queues at t=10. A premium caller P (boost 600 s)
    # who calls 10 s later is served first; one who calls after S has waited more than 600 s is not.
    qs = replace(QS, wrap_up_s=0)
    callers = [caller("A", "standard", 0, 1000), caller("S", "standard", 10, 30),
               caller("P", "premium", premium_at, 30)]
    result = run(scratch, callers, (1,), qs, 1)
    served = [rec.sid for rec in sorted(result.records, key=lambda rec: rec.claimed_ms or 0)]
    assert served[0] == "A" and served[1] == first
    # The other policies on the same callers: strict always takes P, FCFS always S.
    strict = run(scratch, callers, (1,), replace(policy_settings(QS, "strict"), wrap_up_s=0), 1)
    fcfs = run(scratch, callers, (1,), replace(policy_settings(QS, "fcfs"), wrap_up_s=0), 1)
    assert sorted(strict.records, key=lambda rec: rec.claimed_ms or 0)[1].sid == "P"
    assert sorted(fcfs.records, key=lambda rec: rec.claimed_ms or 0)[1].sid == "S"


def small_day() -> DayProfile:
    """Two hours of the shipped tiers' mix at a busy rate, on a lean roster (queues and hang-ups happen)."""
    tiers = load_tiers(None, QS.tiers)
    mix = {"annual_premium": 8, "premium": 22, "standard": 50, "guest": 20}
    arrivals = {t: (0.0,) * 36 + (mix[t] * 1.2,) * 8 for t in tiers}
    return DayProfile(arrivals=arrivals, tiers=tiers, roster=(0,) * 36 + (26,) * 8 + (26,), source="small")


def test_same_seed_same_day_and_stats_agree_with_the_event_log(scratch: Any) -> None:
    profile = small_day()
    callers = draw_callers(profile, START, seed=3)
    assert callers == draw_callers(profile, START, seed=3)
    assert callers != draw_callers(profile, START, seed=4)
    first = run(scratch, callers, profile.roster or (), QS, 45)
    again = run(scratch, callers, profile.roster or (), QS, 45)
    key = [(r.sid, r.outcome, r.wait_s, r.agent, r.claimed_ms) for r in first.records]
    assert key == [(r.sid, r.outcome, r.wait_s, r.agent, r.claimed_ms) for r in again.records]
    assert first.day_stats["tiers"] == again.day_stats["tiers"]
    assert any(r.outcome == "abandoned" for r in first.records)  # the scenario does exercise hang-ups
    # The statistics code's counters against the simulation's own records, per tier.
    for tier, f in first.day_stats["tiers"].items():
        mine = [r for r in first.records if r.tier == tier and r.queued_ms is not None]
        waits = answered_waits(first, tier)
        t_ms = QS.service_level_ms(tier)
        late_abandons = sum(1 for r in mine if r.outcome == "abandoned" and (r.wait_s or 0) * 1000 > t_ms)
        assert f["offered"] == len(mine)
        assert f["answered"] == len(waits)
        assert f["abandoned"] == sum(1 for r in mine if r.outcome == "abandoned")
        assert f["short_abandoned"] == sum(1 for r in mine if r.outcome == "short_abandoned")
        if waits:
            assert f["asa_s"] == pytest.approx(sum(waits) / len(waits), abs=1e-3)
            within = sum(1 for w in waits if w * 1000 <= t_ms)
            assert f["service_level"] == pytest.approx(within / (len(waits) + late_abandons), abs=1e-4)
    rows = {r["tier"]: r for r in tier_rows(first, "ours", CONFIG)}
    std = answered_waits(first, "standard")
    assert rows["standard"]["max_wait_s"] == max(std) and rows["standard"]["p95_wait_s"] == percentile(std, 0.95)


def overload(hours: int) -> tuple[DayProfile, list[Caller]]:
    """10 agents (1-minute calls: 150 per quarter hour) offered 140 premium and 25 standard calls per
    quarter hour for `hours`, nobody hangs up: premium alone nearly fills the agents, all together overload them."""
    n = hours * 4
    tiers = {"premium": TierModel("premium", 0.0, 60.0, 0.0, None, "exponential"),
             "standard": TierModel("standard", 0.0, 60.0, 0.0, None, "exponential")}
    profile = DayProfile(arrivals={"premium": (140.0,) * n, "standard": (25.0,) * n}, tiers=tiers,
                         roster=(10,) * (n + 40), source="overload")
    return profile, draw_callers(profile, START, seed=11)


def test_standard_wait_bounded_under_ours_but_grows_under_strict(scratch: Any) -> None:
    # DESIGN: "a standard caller who has waited longer than [the boost] beats a premium caller who has just
    # called". So under our policy a standard caller waits at most the ceiling (900 s: the best boost) plus
    # the time to clear the callers already ahead, whose own waits bound it; under strict priority the wait
    # is bounded by nothing but the end of the premium peak, and grows with it.
    qs = replace(QS, wrap_up_s=0)
    worst: dict[tuple[str, int], float] = {}
    for hours in (1, 2):
        profile, callers = overload(hours)
        for policy in ("ours", "strict"):
            result = run(scratch, callers, profile.roster or (), replace(policy_settings(qs, policy), wrap_up_s=0),
                         hours * 4 + 40)
            standard, premium = max(answered_waits(result, "standard")), max(answered_waits(result, "premium"))
            worst[(policy, hours)] = standard
            late = overtaken(result, QS)["standard"]
            if policy == "ours":
                assert late == 0  # nobody who called more than 900 s later was served first
                assert standard <= 900 + premium + 60  # + one call's time for an agent to free
            else:
                assert late > 0
                assert standard > 900 + premium + 60
    growth_ours = worst[("ours", 2)] - worst[("ours", 1)]
    growth_strict = worst[("strict", 2)] - worst[("strict", 1)]
    assert growth_strict > 1000 and growth_strict > 2 * growth_ours, worst
    assert worst[("strict", 2)] > 2 * worst[("ours", 2)], worst


def test_refuses_to_flush_a_database_with_data(scratch: Any) -> None:
    scratch.set("hl:q:order:something", "1")  # as if it were the live queue
    with pytest.raises(SimulationError):
        simulate(scratch, [], (1,), QS, calendar=None, start_ms=START, intervals=1)


def test_bad_day_csv_names_the_line() -> None:
    tiers = load_tiers(None, QS.tiers)
    with pytest.raises(ProfileError, match=r"day.csv, line 3: calls must be a number, not 'many'"):
        parse_day("start,calls,agents\n09:00,10,2\n09:15,many,2\n", tiers)
    with pytest.raises(ProfileError, match=r"line 3: start 09:00 is not after"):
        parse_day("start,calls\n09:00,10\n09:00,12\n", tiers)
    with pytest.raises(ProfileError, match=r"line 2: start '09:10' is not a quarter hour"):
        parse_day("start,calls\n09:10,10\n", tiers)
    with pytest.raises(ProfileError, match=r"line 1: unknown column\(s\) vip"):
        parse_day("start,vip\n09:00,10\n", tiers)
    with pytest.raises(ProfileError, match=r"line 2: agents must be a whole number"):
        parse_day("start,calls,agents\n09:00,10,2.5\n", tiers)
    with pytest.raises(ProfileError, match=r"line 1: no agents column"):
        parse_day("start,calls\n09:00,10\n", tiers, need_roster=True)


def test_cli_simulate_prints_the_table_and_writes_a_png(scratch_url: str, scratch: Any, tmp_path: Path) -> None:
    out = tmp_path / "sim.png"
    res = CliRunner().invoke(main, ["simulate", "--seed", "1", "--calls", "1500", "--jobs", "1",
                                    "--redis-url", scratch_url, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "policy   tier" in res.output
    for policy in ("ours", "fcfs", "strict"):
        for tier in QS.tiers:
            assert any(line.split()[:2] == [policy, tier] for line in res.output.splitlines())
    assert out.read_bytes().startswith(PNG)
    res = CliRunner().invoke(main, ["simulate", "--seed", "1", "--calls", "800", "--jobs", "1", "--json",
                                    "--redis-url", scratch_url, "--out", str(out)])
    data = json.loads(res.output)
    assert {r["policy"] for r in data["tiers"]} == {"ours", "fcfs", "strict"} and data["chart"] == str(out)


def test_cli_bad_profile_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "day.csv"
    bad.write_text("start,calls,agents\n09:00,10,2\n09:30,-3,2\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["simulate", "--profile", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}, line 3: calls must be a finite number >= 0, not '-3'" in res.output
