"""The stores' state for the console's banner: is the live queue (Redis) up, is the database up.

Read by GET /stores (pages.py), which needs only the signed session cookie, not the database, so the
banner still appears while the database is down. Checked at most every CHECK_EVERY_S per process,
whatever the number of consoles polling.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from callqueue.recovery import capture
from core.services import Services

CHECK_EVERY_S = 2.0


def check(svc: Services) -> dict[str, Any]:
    """{"redis": "up"|"down", "database": "up"|"down", "captured_callbacks": n or None, "checked_at": ISO time}."""
    cached = svc.extras.get("console.stores")
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    out: dict[str, Any] = {"redis": "up", "database": "up", "captured_callbacks": None}
    try:
        out["captured_callbacks"] = capture.outbox_sizes(svc.redis)[0]
    except Exception:  # noqa: BLE001 (any failure means "down": the banner says so)
        out["redis"] = "down"
    try:
        with svc.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception:  # noqa: BLE001 (as above)
        out["database"] = "down"
    out["checked_at"] = datetime.now(UTC).isoformat()
    svc.extras["console.stores"] = (time.monotonic() + CHECK_EVERY_S, out)
    return out


def banner_keys(status: dict[str, Any]) -> list[str]:
    """The console texts (console/i18n.py) the banner shows for `status`, worst first; [] when all is well."""
    keys = []
    if status["database"] == "down":
        keys.append("store_database_down")
    if status["redis"] == "down":
        keys.append("store_redis_down")
    elif status["database"] == "down" and status.get("captured_callbacks"):
        keys.append("store_captured")
    return keys
