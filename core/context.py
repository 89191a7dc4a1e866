"""What Flask edges use to reach the process's services, the request's SQL session and the app's metrics.

The composition root (hotline/app.py) puts the services and the metrics into `app.extensions` under the names below.
"""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from core.metrics import Metrics
from core.services import Services

SERVICES = "hotline"
METRICS = "hotline.metrics"


def attach(app: Flask, svc: Services, metrics: Metrics | None) -> None:
    """Make `svc` and `metrics` (None: metrics off) what this app's requests reach."""
    app.extensions[SERVICES] = svc
    app.extensions[METRICS] = metrics


def services() -> Services:
    """The services of the running app."""
    svc: Services = current_app.extensions[SERVICES]
    return svc


def metrics() -> Metrics | None:
    """The running app's metrics, or None when `[metrics] enabled = false`."""
    found: Metrics | None = current_app.extensions.get(METRICS)
    return found


def db() -> Session:
    """The request's session, opened on first use and closed on teardown."""
    if "db" not in g:
        g.db = services().sessions()
    session: Session = g.db
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Teardown: roll back anything uncommitted and close the request's session."""
    session = g.pop("db", None)
    if session is not None:
        session.close()
