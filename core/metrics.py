"""The webhooks' latency histogram, shared by the edge that observes it (webhooks/) and the one that serves it
(console/ `/metrics`), built once per app by the composition root.

A web process measures one thing itself: how long its webhooks take. The histogram lives in a registry of the
app's own (never prometheus_client's global one: tests build many apps in one process), in memory, or, when
`PROMETHEUS_MULTIPROC_DIR` is set (gunicorn's workers under `hotline run`/`serve`), in prometheus_client's
per-process files that a scrape sums.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("hotline.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Webhooks answer in 1–250 ms; the upper buckets show trouble long before Twilio's 15 s limit.
WEBHOOK_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5)
UNMATCHED = "unmatched"  # the route label of a request no URL rule matched


@dataclass(frozen=True)
class Metrics:
    """One app's registry (what /metrics exposes) and its webhook histogram."""

    registry: CollectorRegistry
    webhook: Histogram


def build_metrics() -> Metrics:
    """A registry with the webhook histogram, multi-process when PROMETHEUS_MULTIPROC_DIR is set."""
    registry = CollectorRegistry()
    histogram_args: dict[str, Any] = dict(name="hotline_webhook_duration_seconds", labelnames=["route"],
                                          documentation="Time to answer a /voice webhook, by Flask URL rule.",
                                          buckets=WEBHOOK_BUCKETS)
    mp_dir = os.environ.get(MULTIPROC_ENV)
    if mp_dir:
        # gunicorn workers each write their observations to files in mp_dir (prometheus_client chooses
        # that at import, from the same variable); the scrape, served by any one worker, sums them all.
        os.makedirs(mp_dir, exist_ok=True)
        webhook = Histogram(**histogram_args, registry=None)
        # prometheus_client leaves this constructor unannotated:
        MultiProcessCollector(registry, path=mp_dir)  # type: ignore[no-untyped-call]
    else:
        webhook = Histogram(**histogram_args, registry=registry)
    return Metrics(registry, webhook)


def observe_webhook(metrics: Metrics | None, route: str, seconds: float) -> None:
    """Count one webhook's latency under its URL rule (nothing when metrics are off); never raises."""
    if metrics is None:
        return
    try:
        metrics.webhook.labels(route=route).observe(seconds)
    except Exception:  # a metrics file gone missing must not turn a caller's webhook into a 500
        log.warning("metrics: webhook observation failed", exc_info=True)
