"""Erlang B/C against textbook values, edge cases and numerical stability."""
from __future__ import annotations

import math

import pytest

from callqueue.planning import erlang


def test_erlang_b_and_c_small_cases_match_the_closed_forms() -> None:
    # B(1, a) = a / (1 + a); B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2; C(2, 1) = 1/3 (by hand from the sums).
    assert erlang.erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang.erlang_b(2, 1.0) == pytest.approx(0.2)
    assert erlang.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang.mean_wait(2, 1.0, 60) == pytest.approx(20.0)  # C · aht / (c − a)
    # M/M/1: P(wait) = rho, mean wait = rho / (1 − rho) · aht
    assert erlang.erlang_c(1, 0.5) == pytest.approx(0.5)
    assert erlang.mean_wait(1, 0.5, 60) == pytest.approx(60.0)


def test_erlang_c_textbook_value() -> None:
    # 10 agents offered 8 Erlangs: P(wait) = 0.4092 (standard Erlang C tables).
    assert erlang.erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-4)


def test_stable_for_thousands_of_agents() -> None:
    c = erlang.erlang_c(3000, 2950.0)
    assert 0 < c < 1 and math.isfinite(c)
    assert erlang.erlang_b(5000, 4000.0) < 1e-6  # far more servers than load: almost no blocking, no overflow


def test_overload_and_no_load() -> None:
    assert erlang.erlang_c(5, 5.0) == 1.0
    assert erlang.mean_wait(5, 6.0, 60) == math.inf
    assert erlang.service_level(5, 6.0, 60, 20) == 0.0
    assert erlang.erlang_c(5, 0.0) == 0.0
    assert erlang.service_level(5, 0.0, 60, 20) == 1.0
    assert erlang.agents_needed(0.0, 60, 20, 0.8) == 0


def test_service_level_formula() -> None:
    c, a, aht, t = 10, 8.0, 180.0, 20.0
    expected = 1 - erlang.erlang_c(c, a) * math.exp(-(c - a) * t / aht)
    assert erlang.service_level(c, a, aht, t) == pytest.approx(expected)


def test_agents_needed_is_the_fewest_that_reach_the_goal() -> None:
    a = erlang.offered_load(200, 1800, 180)  # 200 calls in half an hour, 3 minutes each: 20 Erlangs
    assert a == pytest.approx(20.0)
    c = erlang.agents_needed(a, 180, 20, 0.8)
    assert erlang.service_level(c, a, 180, 20) >= 0.8 > erlang.service_level(c - 1, a, 180, 20)
    # a stricter target never needs fewer agents
    assert erlang.agents_needed(a, 180, 15, 0.9) >= c


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        erlang.agents_needed(10, 60, 20, 1.0)
    with pytest.raises(ValueError):
        erlang.offered_load(10, 0, 60)
    with pytest.raises(ValueError):
        erlang.erlang_b(-1, 1.0)
