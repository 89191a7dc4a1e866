"""The hotline's JSON API as a person would use it (in-process or over HTTP), and the check that the live
statistics equal the figures recomputed from the SQL call records."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select

from callqueue.records import CallRecord
from callqueue.reports import stats
from core.config import Config
from core.services import Services
from tests.support.people import SUPERVISOR, basic


class Api:
    """The hotline's JSON API as a given person (HTTP Basic)."""

    def __init__(self, app: Flask | None = None, base_url: str | None = None) -> None:
        self.app, self.base_url = app, base_url

    def call(self, method: str, path: str, login: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        if self.app is not None:
            resp = self.app.test_client().open(path, method=method, json=body, headers=basic(login))
            return resp.status_code, resp.get_json(silent=True)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={**basic(login), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def status(self, login: str, status: str) -> dict[str, Any]:
        """The agent chooses a state through PUT /api/agents/me/status (the real dispatch trigger)."""
        code, body = self.call("PUT", "/api/agents/me/status", login, {"status": status})
        # An agent who becomes available while callers wait may be given one before the answer is read back:
        # "on_call" is then the right answer to "available" (the dispatch job runs beside the request).
        allowed = (status, "on_call") if status == "available" else (status,)
        assert code == 200 and body["status"] in allowed, (code, body)
        return body

    def me(self, login: str) -> dict[str, Any]:
        code, body = self.call("GET", "/api/agents/me", login)
        assert code == 200, (code, body)
        return body

    def queue(self) -> list[dict[str, Any]]:
        code, body = self.call("GET", "/api/queue", SUPERVISOR)
        assert code == 200, (code, body)
        return body

    def stats(self, window: str = "today") -> dict[str, Any]:
        code, body = self.call("GET", f"/api/stats?window={window}", SUPERVISOR)
        assert code == 200, (code, body)
        return body


def assert_stats_match_records(api: Api, services: Services, config: Config, window: str = "today") -> dict[str, Any]:
    """/api/stats (live, from Redis counters) equals the same figures recomputed from the SQL call records
    at the same instant (the live answer's as_of); returns the live figures."""
    live = api.stats(window)
    now = datetime.fromisoformat(live["as_of"])
    with services.sessions() as db:
        recomputed = stats.from_records(db, now, config, window, agents=live["agents"])
    recomputed = json.loads(json.dumps(recomputed))  # the same JSON shapes the API answers with
    for part in ("tiers", "overall"):
        assert live[part] == recomputed[part], f"{part}: live {live[part]}\n!= records {recomputed[part]}"
    assert live["window"] == recomputed["window"] == window
    return live


def records(services: Services) -> dict[str, CallRecord]:
    """Every call record by CallSid."""
    with services.sessions() as db:
        return {r.call_sid: r for r in db.scalars(select(CallRecord))}
