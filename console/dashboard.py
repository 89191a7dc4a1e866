"""The supervisor's live picture in one read: figures with their targets' state, agents, queue, callbacks."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

import redis
from sqlalchemy.orm import Session

from callqueue import clock
from callqueue.callbacks import tickets
from callqueue.live import ordering
from callqueue.reports import stats
from callqueue.settings import queue_settings
from console.views import agents_table, queue_view
from core.config import Config

OK, WARN, BAD = "ok", "warn", "bad"
_RANK = {OK: 0, WARN: 1, BAD: 2}
QUEUE_ROWS = 50
LONG_WAIT_WARN = 0.75  # of a tier's max_wait_s: a wait this long is amber before it breaks the promise


def _at_least(value: float | None, goal: float, margin: float) -> str:
    if value is None:
        return OK
    return BAD if value < goal else WARN if value < goal + margin else OK


def _at_most(value: float | None, limit: float, margin: float) -> str:
    if value is None:
        return OK
    return BAD if value > limit else WARN if value > limit - margin else OK


def tier_status(figures: dict[str, Any], tier: dict[str, Any], console: dict[str, Any]) -> dict[str, str]:
    """Which of a tier's figures are on target (ok), at risk (warn) or off it (bad)."""
    margin = float(console["at_risk_margin"])
    max_wait = float(tier["max_wait_s"])
    return {
        "service_level": _at_least(figures["service_level"], float(tier["service_level_goal"]), margin),
        "abandon_rate": _at_most(figures["abandon_rate"], float(console["abandon_rate_target"]), margin),
        "longest_wait_s": _at_most(figures["longest_wait_s"], max_wait, max_wait * (1 - LONG_WAIT_WARN)),
    }


def with_status(figures: dict[str, Any], config: Config) -> dict[str, Any]:
    """`stats.live` figures with a `status` per tier, and the worst of each for the overall row."""
    console, tiers = config["console"], config.tiers
    worst: dict[str, str] = {}
    for name, row in figures["tiers"].items():
        spec = tiers.get(name) or tiers.get("guest") or next(iter(tiers.values()))
        row["status"] = tier_status(row, spec, console)
        row["targets"] = {"service_level_goal": spec["service_level_goal"], "service_level_s": spec["service_level_s"],
                          "max_wait_s": spec["max_wait_s"], "abandon_rate_target": console["abandon_rate_target"]}
        for key, state in row["status"].items():
            if _RANK[state] > _RANK.get(worst.get(key, OK), 0):
                worst[key] = state
    figures["overall"]["status"] = {
        key: worst.get(key, OK) for key in ("service_level", "abandon_rate", "longest_wait_s")
    }
    return figures


def dashboard(session: Session, r: redis.Redis, now: datetime, config: Config) -> dict[str, Any]:
    """Everything `/supervisor` shows, as of `now`: 4 Redis and 4 SQL round trips whatever the history."""
    figures = with_status(stats.live(r, now, config, "today"), config)
    day_start = clock.from_ms(clock.day_start_ms(clock.to_ms(now), queue_settings(config).tz))
    return {
        "as_of": now.isoformat(),
        "stats": figures,
        "agents": agents_table(session, r, now),
        "queue": queue_view(session, ordering.in_order(r, 0, QUEUE_ROWS), now),
        "callbacks": tickets.counts(session, now, day_start, config["callbacks"]["overdue_after_s"]),
    }


STAFFING_AHEAD = 4  # quarter hours shown on the dashboard: the current one and the next three


def staffing_today(session: Session, now: datetime, config: Config) -> dict[str, Any]:
    """Agents needed now and in the next quarter hours, by Erlang C from today's measured arrivals (one SQL query).

    Quarters still to come are the shipped day profile scaled by today's volume so far (callqueue/planning/staffing.py);
    `hotline plan` checks such a forecast by simulation, which takes seconds: too slow for a page.
    """
    from callqueue.planning import staffing
    from callqueue.reports import history

    qs = queue_settings(config)
    today = date.fromisoformat(clock.local_day(clock.to_ms(now), qs.tz))
    measured = [{t: float(f["offered"]) for t, f in iv["tiers"].items()}
                for iv in history.intervals(session, today, config, now)["intervals"]]
    plan = staffing.staffing_for_today(measured, now, config).as_json()
    local = now.astimezone(qs.tz)
    current = (local.hour * 60 + local.minute) // 15
    return {"targets": plan["targets"], "current": current,
            "intervals": plan["intervals"][current:current + STAFFING_AHEAD]}
