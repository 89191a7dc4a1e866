"""Erlang C: waits of an M/M/c queue (Poisson arrivals, exponential handling, no abandonment, FCFS).

The staffing planner's first estimate (callqueue/planning/staffing.py) and the simulator's closed-form check.
Erlang B is computed by its recursion B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)), which never
forms a^c or c! and so stays finite and exact to rounding for thousands of agents; Erlang C follows
from it as C = c·B / (c − a·(1 − B)).

Units: `a` is the offered load in Erlangs (arrival rate × mean handle time), `aht_s` the mean
handle time in seconds, `c` the number of agents.
"""
from __future__ import annotations

import math


def offered_load(calls: float, interval_s: float, aht_s: float) -> float:
    """Offered load in Erlangs of `calls` arriving over `interval_s` seconds, each handled for `aht_s` on average."""
    if interval_s <= 0:
        raise ValueError("interval_s: must be positive")
    if calls < 0 or aht_s < 0:
        raise ValueError("calls and aht_s: must not be negative")
    return calls * aht_s / interval_s


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of c servers offered a Erlangs with no queue (Erlang B), by the stable recursion."""
    if c < 0 or a < 0:
        raise ValueError("c and a: must not be negative")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that a caller waits (Erlang C); 1.0 when the agents cannot keep up (a >= c)."""
    if a <= 0:
        return 0.0
    if c <= a:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


def mean_wait(c: int, a: float, aht_s: float) -> float:
    """Mean wait in seconds over all callers (ASA including those answered at once); inf when a >= c."""
    if a <= 0:
        return 0.0
    if c <= a:
        return math.inf
    return erlang_c(c, a) * aht_s / (c - a)


def service_level(c: int, a: float, aht_s: float, t_s: float) -> float:
    """Share of callers answered within `t_s` seconds: 1 − C·exp(−(c − a)·t / aht); 0 when a >= c."""
    if a <= 0:
        return 1.0
    if c <= a:
        return 0.0
    if aht_s <= 0:
        return 1.0
    return max(0.0, 1.0 - erlang_c(c, a) * math.exp(-(c - a) * t_s / aht_s))


def agents_needed(a: float, aht_s: float, t_s: float, goal: float, max_agents: int = 100_000) -> int:
    """The fewest agents whose Erlang C service level within `t_s` reaches `goal` (0 when no load)."""
    if not 0 < goal < 1:
        raise ValueError("goal: must be between 0 and 1 (exclusive)")
    if a <= 0:
        return 0
    # Stability needs c > a; start there and walk up: the service level rises with every agent,
    # and the answer is within a few sqrt(a) of a, so the walk is short even for large loads.
    c = max(1, math.floor(a) + 1)
    while c <= max_agents:
        if service_level(c, a, aht_s, t_s) >= goal:
            return c
        c += 1
    raise ValueError(f"no staffing up to {max_agents} agents reaches {goal:.0%} within {t_s:g} s at {a:.1f} Erlangs")
