"""Prometheus `/metrics`: queue, agent and callback figures read at scrape time, and webhook latency.

Gauges come from the stores when Prometheus scrapes (2 Redis round trips: `stats.live`; 2 SQL
statements: `tickets.counts`), so a web process keeps no figure of its own and any node can answer.
The one thing a process measures itself is how long its webhooks take: a histogram, in memory, or,
when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn's workers under `hotline run`/`serve`), in
prometheus_client's per-process files that the scrape sums.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator, Union

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from callqueue import clock
from callqueue.stats import figures as stats
from callqueue.callbacks import tickets
from callqueue.settings import queue_settings
from console.auth import current_identity, json_error
from core.services import Services

log = logging.getLogger("hotline.metrics")
bp = Blueprint("metrics", __name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Webhooks answer in 1–250 ms; the upper buckets show trouble long before Twilio's 15 s limit.
WEBHOOK_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5)
OUTCOMES = ("offered", "answered", "abandoned", "short_abandoned", "to_callback")
CALLBACK_STATUSES = ("scheduled", "due", "overdue", "completed", "failed")
UNMATCHED = "unmatched"

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class MetricsState:
    """What one app's /metrics and its webhook hook share (kept in `app.extensions["metrics"]`)."""

    registry: CollectorRegistry
    webhook: Histogram
    networks: tuple[Network, ...]


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
    today = GaugeMetricFamily("hotline_calls_today", "Calls today (hotline time zone; back to 0 at local midnight) "
                              "by outcome; short_abandoned is counted apart from abandoned.", labels=["tier", "outcome"])
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


def init_metrics(app: Flask, svc: Services) -> None:
    """Register GET /metrics on `app` and the webhook histogram, in a registry of this app's own."""
    app.register_blueprint(bp)
    conf = svc.config["metrics"]
    if not conf["enabled"]:
        app.extensions["metrics"] = None  # /metrics answers 404; webhooks observe nothing
        return
    # Per app, never prometheus_client's global REGISTRY: tests build many apps in one process.
    registry = CollectorRegistry()
    registry.register(StoreCollector(svc))
    histogram_args: dict[str, Any] = dict(name="hotline_webhook_duration_seconds", labelnames=["route"],
                                          documentation="Time to answer a /voice webhook, by Flask URL rule.",
                                          buckets=WEBHOOK_BUCKETS)
    mp_dir = os.environ.get(MULTIPROC_ENV)
    if mp_dir:
        # gunicorn workers each write their observations to files in mp_dir (prometheus_client chooses
        # that at import, from the same variable); the scrape, served by any one worker, sums them all.
        os.makedirs(mp_dir, exist_ok=True)
        webhook = Histogram(**histogram_args, registry=None)
        MultiProcessCollector(registry, path=mp_dir)
    else:
        webhook = Histogram(**histogram_args, registry=registry)
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in conf["allow_networks"])
    app.extensions["metrics"] = MetricsState(registry, webhook, networks)


def observe_webhook(route: str, seconds: float) -> None:
    """Count one webhook's latency under its URL rule; touches no store and never raises."""
    state: MetricsState | None = current_app.extensions.get("metrics")
    if state is None:
        return
    try:
        state.webhook.labels(route=route).observe(seconds)
    except Exception:  # a metrics file gone missing must not turn a caller's webhook into a 500
        log.warning("metrics: webhook observation failed", exc_info=True)


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
    state: MetricsState | None = current_app.extensions.get("metrics")
    if state is None:
        abort(404)
    if not from_allowed_network(request.remote_addr, state.networks):
        ident = current_identity()
        if ident is None:
            return json_error(401, "log in (HTTP Basic or the console) first")
        if ident.role != "supervisor":
            return json_error(403, "this needs the role supervisor")
    return Response(generate_latest(state.registry), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
