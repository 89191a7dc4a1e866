"""The JSON API: authentication, roles, agent state, queue and statistics."""
from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from callqueue.agents.accounts import add_agent
from callqueue.live import calls, conference, presence

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


@pytest.fixture
def people(db: Any) -> dict[str, dict[str, str]]:
    add_agent(
        db, login="ann", name="Ann", password="ann-pass-1", role="agent", client_identity="ann", phone=None, now=NOW
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password="sam-pass-1",
        role="supervisor",
        client_identity=None,
        phone="+8613900000009",
        now=NOW,
    )
    db.commit()
    return {"agent": basic("ann", "ann-pass-1"), "supervisor": basic("sam", "sam-pass-1")}


def test_openapi_document_lists_every_route(app: Any, client: Any) -> None:
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.")
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules() if r.rule.startswith("/api/")
    }
    assert len(routes) >= 12 and routes == set(doc["paths"]), routes ^ set(doc["paths"])
    for path, item in doc["paths"].items():
        rule_methods = {
            m.lower()
            for r in app.url_map.iter_rules()
            if re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule) == path
            for m in r.methods - {"HEAD", "OPTIONS"}
        }
        assert set(item) == rule_methods, path


def test_no_credentials_is_401_with_a_challenge(client: Any, people: Any) -> None:
    resp = client.get("/api/agents/me")
    assert resp.status_code == 401 and "Basic" in resp.headers["WWW-Authenticate"]
    assert client.get("/api/agents/me", headers=basic("ann", "wrong")).status_code == 401


def test_agent_cannot_use_supervisor_routes(client: Any, people: Any) -> None:
    assert client.get("/api/queue", headers=people["agent"]).status_code == 403
    assert client.get("/api/stats", headers=people["agent"]).status_code == 403
    assert client.get("/api/stats", headers=people["supervisor"]).status_code == 200


def test_agent_goes_available_and_away(client: Any, people: Any, redis: Any) -> None:
    me = client.get("/api/agents/me", headers=people["agent"]).json
    assert me["login"] == "ann" and me["status"] == "offline" and me["call"] is None
    resp = client.put("/api/agents/me/status", json={"status": "available"}, headers=people["agent"])
    assert resp.status_code == 200 and resp.json["status"] == "available"
    assert presence.get(redis, "ann", datetime.now(UTC)).endpoint == "client:ann"
    assert (
        client.put("/api/agents/me/status", json={"status": "away"}, headers=people["agent"]).json["status"] == "away"
    )


@pytest.mark.parametrize("body, reason", [
    ("not json", "JSON object"), ({"status": "sleeping"}, "status: must be one of"), ({}, "status: must be one of"),
])
def test_bad_status_bodies_are_400_with_a_reason(client: Any, people: Any, body: Any, reason: str) -> None:
    kwargs = {"data": body, "content_type": "application/json"} if isinstance(body, str) else {"json": body}
    resp = client.put("/api/agents/me/status", headers=people["agent"], **kwargs)
    assert resp.status_code == 400 and reason in resp.json["error"]


def test_status_change_on_a_call_is_409_and_call_context_is_shown(
    client: Any, people: Any, db: Any, redis: Any, services: Any
) -> None:
    client.put("/api/agents/me/status", json={"status": "available"}, headers=people["agent"])
    now = datetime.now(UTC)
    calls.arrived(db, "CA" + "7" * 32, from_number="+8613800000001", now=now)
    calls.join_queue(
        db, redis, "CA" + "7" * 32, tier="premium", now=now, settings=services.config, category="billing", verified=True
    )
    offer = calls.dispatch(db, redis, now)
    db.commit()
    assert offer is not None and offer.agent == "ann"
    me = client.get("/api/agents/me", headers=people["agent"]).json
    assert me["status"] == "on_call"
    assert (
        me["call"]["call_sid"] == "CA" + "7" * 32
        and me["call"]["category"] == "billing"
        and me["call"]["verified"] is True
    )
    resp = client.put("/api/agents/me/status", json={"status": "offline"}, headers=people["agent"])
    assert resp.status_code == 409 and "on a call" in resp.json["error"]


def test_wrapup_saves_notes_and_ends_wrap_up(client: Any, people: Any, db: Any, redis: Any, services: Any) -> None:
    from callqueue import records

    client.put("/api/agents/me/status", json={"status": "available"}, headers=people["agent"])
    sid, now = "CA" + "8" * 32, datetime.now(UTC)
    calls.arrived(db, sid, from_number="+8613800000001", now=now)
    calls.join_queue(db, redis, sid, tier="standard", now=now, settings=services.config)
    calls.dispatch(db, redis, now)
    calls.agent_answered(db, redis, sid, "ann", now, services.config)
    conference.caller_moved(redis, sid, "ann")
    assert calls.agent_left(db, redis, sid, "ann", now, services.config).outcome == "ended"
    db.commit()
    me = client.get("/api/agents/me", headers=people["agent"]).json
    # the caller's context stays on screen through the wrap-up
    assert me["status"] == "wrap_up" and (me["call"]["call_sid"], me["call"]["state"]) == (sid, "wrap_up")
    resp = client.post(
        "/api/agents/me/wrapup", json={"notes": "refund explained", "disposition": "resolved"}, headers=people["agent"]
    )
    assert resp.status_code == 200 and resp.json["status"] == "available"
    db.expire_all()
    rec = records.get(db, sid)
    assert rec.notes == "refund explained" and rec.disposition == "resolved"


def test_wrapup_with_nothing_to_wrap_is_409(client: Any, people: Any) -> None:
    resp = client.post("/api/agents/me/wrapup", json={"notes": "", "disposition": "resolved"}, headers=people["agent"])
    assert resp.status_code == 409


def test_queue_lists_callers_in_service_order_with_masked_numbers(
    client: Any, people: Any, db: Any, redis: Any, services: Any
) -> None:
    now = datetime.now(UTC)
    for sid, tier, number in (
        ("CA" + "a" * 32, "standard", "+8613800000011"),
        ("CA" + "b" * 32, "premium", "+8613800000022"),
    ):
        calls.arrived(db, sid, from_number=number, now=now)
        calls.join_queue(db, redis, sid, tier=tier, now=now, settings=services.config)
    db.commit()
    rows = client.get("/api/queue", headers=people["supervisor"]).json
    assert [r["tier"] for r in rows] == ["premium", "standard"]
    assert rows[0]["number"] == "+86138****0022" and rows[0]["position"] == 1
    assert client.get("/api/queue?limit=0", headers=people["supervisor"]).status_code == 400


def test_stats_shape_and_bad_window(client: Any, people: Any) -> None:
    body = client.get("/api/stats?window=15m", headers=people["supervisor"]).json
    assert body["window"] == "15m" and set(body["agents"]) == {"available", "on_call", "wrap_up", "away", "offline"}
    assert {"waiting", "asa_s", "service_level", "abandon_rate"} <= set(body["overall"])
    assert client.get("/api/stats?window=year", headers=people["supervisor"]).status_code == 400


def test_repeated_failed_logins_lock_the_account(client: Any, people: Any) -> None:
    codes = [client.get("/api/agents/me", headers=basic("ann", f"bad-{i}")).status_code for i in range(5)]
    assert codes[:4] == [401] * 4 and codes[4] == 429
    assert (
        client.get("/api/agents/me", headers=people["agent"]).status_code == 429
    )  # locked even with the right password
