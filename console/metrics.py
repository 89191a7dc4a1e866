"""Prometheus `/metrics`: queue, agent and callback figures read at scrape time, and webhook latency.

Gauges come from the stores when Prometheus scrapes (2 Redis round trips: `stats.live`; 2 SQL
statements: `tickets.counts`), so a web process keeps no figure of its own and any node can answer.
The one thing a process measures itself, how long its webhooks take, is core/metrics.py's histogram,
in the same registry.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callqueue import clock
from callqueue.callbacks import tickets
from callqueue.reports import stats
from callqueue.settings import queue_settings
from console.auth import current_identity, json_error
from core.context import metrics as metrics_of_app
from core.metrics import Metrics, build_metrics
from core.services import Services

log = logging.getLogger("hotline.metrics")
bp = Blueprint("metrics", __name__)

OUTCOMES = ("offered", "answered", "abandoned", "short_abandoned", "to_callback")
CALLBACK_STATUSES = ("scheduled", "due", "overdue", "completed", "failed")
NETWORKS = "hotline.metrics.networks"  # app.extensions: who may scrape without logging in

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class StoreCollector(Collector):
    """Gauges read from Redis and SQL each time the registry is collected."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        """Queue, agent and callback gauges, and `hotline_scrape_error` per store (never raises)."""
        now = self.svc.clock()
        figures, callbacks = None, None
        # A scrape during an outage must still answer: the figures that could be read, and which store failed.
        try:
            figures = stats.live(self.svc.redis, now, self.svc.config, "today")
        except Exception:
            log.warning("metrics: redis read failed", exc_info=True)
        try:
            callbacks = callback_counts(self.svc, now)
        except Exception:
            log.warning("metrics: sql read failed", exc_info=True)
        if figures is not None:
            yield from queue_families(figures)
        if callbacks is not None:
            fam = GaugeMetricFamily("hotline_callbacks", "Callback tickets: scheduled (not yet due), due, overdue "
                                    "(open), and completed / failed today (hotline time zone).", labels=["status"])
            for status in CALLBACK_STATUSES:
                fam.add_metric([status], callbacks.get(status, 0))
            yield fam
        err = GaugeMetricFamily("hotline_scrape_error", "1 when this scrape could not read the store "
                                "(its figures are missing from this answer), else 0.", labels=["source"])
        err.add_metric(["redis"], 0 if figures is not None else 1)
        err.add_metric(["sql"], 0 if callbacks is not None else 1)
        yield err


def callback_counts(svc: Services, now: datetime) -> dict[str, int]:
    """`tickets.counts` for today in the hotline's time zone, in a short session of its own (2 statements)."""
    day_start = clock.from_ms(clock.day_start_ms(clock.to_ms(now), queue_settings(svc.config).tz))
    session = svc.sessions()
    try:
        return tickets.counts(session, now, day_start, svc.config["callbacks"]["overdue_after_s"])
    finally:
        session.close()


def queue_families(figures: dict[str, Any]) -> Iterator[Metric]:
    """Waiting, longest wait, today's calls by outcome (per tier) and agents by state, from `stats.live`."""
    tiers: dict[str, dict[str, Any]] = figures["tiers"]
    waiting = GaugeMetricFamily("hotline_queue_waiting", "Callers waiting now (including those ringing an agent).",
                                labels=["tier"])
    longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds", "The longest current wait, 0 when nobody waits.",
                                labels=["tier"])
    today = GaugeMetricFamily(
        "hotline_calls_today",
        "Calls today (hotline time zone; back to 0 at local midnight) "
        "by outcome; short_abandoned is counted apart from abandoned.",
        labels=["tier", "outcome"],
    )
    for tier, f in tiers.items():
        waiting.add_metric([tier], f["waiting"])
        longest.add_metric([tier], f["longest_wait_s"])
        for outcome in OUTCOMES:
            today.add_metric([tier, outcome], f[outcome])
    agents = GaugeMetricFamily("hotline_agents", "Agents by state.", labels=["state"])
    for state, n in figures["agents"].items():
        if n is not None:
            agents.add_metric([state], n)
    yield from (waiting, longest, today, agents)


def init_metrics(app: Flask, svc: Services) -> Metrics | None:
    """Register GET /metrics on `app`; return the app's metrics (the store gauges and the webhook histogram), or
    None when `[metrics] enabled = false` (then /metrics answers 404 and webhooks observe nothing)."""
    app.register_blueprint(bp)
    conf = svc.config["metrics"]
    if not conf["enabled"]:
        return None
    built = build_metrics()
    built.registry.register(StoreCollector(svc))
    app.extensions[NETWORKS] = tuple(ipaddress.ip_network(n, strict=False) for n in conf["allow_networks"])
    return built


def from_allowed_network(addr: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether `addr` (the request's remote address) lies in one of `networks`."""
    try:
        ip = ipaddress.ip_address(addr or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in net for net in networks)


@bp.get("/metrics")
def metrics() -> Any:
    """Prometheus text: open to `allow_networks`, otherwise supervisors only (401 / 403); 404 when disabled."""
    state = metrics_of_app()
    if state is None:
        abort(404)
    if not from_allowed_network(request.remote_addr, current_app.extensions[NETWORKS]):
        ident = current_identity()
        if ident is None:
            return json_error(401, "log in (HTTP Basic or the console) first")
        if ident.role != "supervisor":
            return json_error(403, "this needs the role supervisor")
    return Response(generate_latest(state.registry), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
