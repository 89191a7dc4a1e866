"""The softphone's JSON API: who may control which call, what each state refuses (and that a refusal changes
nothing), the heartbeat, wrap-up extension, the line and presence changes. Twilio is not reached: every case here
is decided before the gateway would be asked (the whole calls are tests/flows/test_softphone_flow.py)."""
from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from callqueue.agents.accounts import add_agent
from callqueue.live import calls, conference, presence
from core import keys

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
SID = "CA" + "5" * 32
CONF = "CF" + "6" * 32


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{login}-pass-1".encode()).decode()}


@pytest.fixture
def people(db: Any) -> dict[str, dict[str, str]]:
    for login, role, identity, phone in (("ann", "agent", "ann", None), ("bob", "agent", "bob", None),
                                          ("sam", "supervisor", None, "+8613900000009")):
        add_agent(db, login=login, name=login.title(), password=f"{login}-pass-1", role=role,
                  client_identity=identity, phone=phone, now=NOW)
    db.commit()
    return {login: basic(login) for login in ("ann", "bob", "sam")}


@pytest.fixture
def ann_talking(client: Any, people: Any, db: Any, redis: Any, services: Any) -> str:
    """ann is connected to SID, in its conference (whose sid the hotline knows)."""
    assert client.put("/api/agents/me/status", json={"status": "available"}, headers=people["ann"]).status_code == 200
    now = services.clock()
    calls.join_queue(db, redis, SID, tier="premium", now=now, settings=services.config, category="billing")
    calls.dispatch(db, redis, now)
    calls.agent_answered(db, redis, SID, "ann", now, services.config, leg="CA" + "7" * 32)
    db.commit()
    assert conference.caller_moved(redis, SID, "ann")
    conference.joined(redis, SID, CONF)
    return SID


def post(client: Any, people: Any, login: str, path: str, body: Any = None) -> Any:
    return client.post(path, json=body if body is not None else {}, headers=people[login])


def test_an_agent_controls_only_calls_they_are_on(client: Any, people: Any, ann_talking: str, redis: Any) -> None:
    before = redis.hgetall(keys.call(ann_talking))
    for action, body in (("hold", {"hold": True}), ("mute", {"mute": True}), ("hangup", None),
                         ("transfer", {"to": "queue"}), ("transfer/complete", None), ("transfer/cancel", None)):
        resp = post(client, people, "bob", f"/api/calls/{ann_talking}/{action}", body)
        assert (resp.status_code, resp.json["reason"]) == (403, "not_yours"), action
    resp = post(client, people, "ann", f"/api/calls/{'CA' + '9' * 32}/hold", {"hold": True})
    assert (resp.status_code, resp.json["reason"]) == (404, "unknown_call")
    assert post(client, people, "ann", "/api/calls/not-a-sid/hold", {"hold": True}).status_code == 404
    # a supervisor may act on any call: past the role check, the unknown agent is what refuses this one
    resp = post(client, people, "sam", f"/api/calls/{ann_talking}/transfer", {"to": "agent:zed", "mode": "cold"})
    assert (resp.status_code, resp.json["reason"]) == (404, "unknown_agent")
    assert redis.hgetall(keys.call(ann_talking)) == before  # nothing moved


def test_what_the_call_does_not_allow_is_a_409_with_a_reason_and_the_caller_stays(
    client: Any, people: Any, ann_talking: str, redis: Any, services: Any
) -> None:
    presence.ensure_known(redis, [("bob", "client:bob")], services.clock())  # bob is offline
    before = redis.hgetall(keys.call(ann_talking))
    cases = [
        ("transfer", {"to": "agent:bob", "mode": "cold"}, 409, "target_unavailable"),
        ("transfer", {"to": "agent:ann", "mode": "warm"}, 409, "same_agent"),
        ("transfer/complete", None, 409, "no_transfer"),
        ("transfer/cancel", None, 409, "no_transfer"),
    ]
    for action, body, status, reason in cases:
        resp = post(client, people, "ann", f"/api/calls/{ann_talking}/{action}", body)
        assert (resp.status_code, resp.json["reason"]) == (status, reason), (action, resp.json)
        assert resp.json["error"]  # said in words too
    assert redis.hgetall(keys.call(ann_talking)) == before
    assert presence.get(redis, "bob", services.clock()).state == "offline"


@pytest.mark.parametrize(("action", "body", "needle"), [
    ("hold", {"hold": "yes"}, "hold: must be true or false"),
    ("hold", [], "JSON object"),
    ("mute", {}, "mute: must be true or false"),
    ("transfer", {"to": ""}, "to:"),
    ("transfer", {"to": "bob", "mode": "cold"}, 'to must be "queue" or "agent:<login>"'),
    ("transfer", {"to": "agent:bob", "mode": "lukewarm"}, "mode must be cold or warm"),
])
def test_bad_bodies_are_400_json(client: Any, people: Any, ann_talking: str, action: str, body: Any,
                                 needle: str) -> None:
    resp = client.post(f"/api/calls/{ann_talking}/{action}", json=body, headers=people["ann"])
    assert resp.status_code == 400 and needle in resp.json["error"]


def test_controls_on_a_call_not_connected_yet_are_refused(client: Any, people: Any, db: Any, redis: Any,
                                                          services: Any) -> None:
    client.put("/api/agents/me/status", json={"status": "available"}, headers=people["ann"])
    now = services.clock()
    calls.join_queue(db, redis, SID, tier="standard", now=now, settings=services.config)
    calls.dispatch(db, redis, now)  # ann's device rings
    db.commit()
    me = client.get("/api/agents/me", headers=people["ann"]).json
    assert (me["call"]["call_sid"], me["call"]["state"], me["call"]["role"]) == (SID, "ringing", "agent")
    resp = post(client, people, "ann", f"/api/calls/{SID}/hold", {"hold": True})
    assert (resp.status_code, resp.json["reason"]) == (409, "not_connected")
    resp = post(client, people, "ann", f"/api/calls/{SID}/hangup")  # no leg known yet (the ring is being placed)
    assert (resp.status_code, resp.json["reason"]) == (409, "not_connected")


def test_the_heartbeat_device_state_and_the_reason_shown(client: Any, people: Any, redis: Any,
                                                         services: Any) -> None:
    assert post(client, people, "ann", "/api/agents/me/heartbeat", {"device": "vanished"}).status_code == 400
    client.put("/api/agents/me/status", json={"status": "available"}, headers=people["ann"])
    beat = post(client, people, "ann", "/api/agents/me/heartbeat", {"device": "registered"})
    assert beat.status_code == 200 and beat.json["status"] == "available"
    gone = post(client, people, "ann", "/api/agents/me/heartbeat", {"device": "unregistered"}).json
    assert (gone["status"], gone["reason"]) == ("offline", "device_unregistered")
    assert gone["device"] == {"mode": "simulated", "identity": "ann", "endpoint": "client:ann"}


def test_wrap_up_extension_and_its_limits(client: Any, people: Any, ann_talking: str, db: Any, redis: Any,
                                          services: Any) -> None:
    resp = post(client, people, "ann", "/api/agents/me/wrapup/extend", {"seconds": 30})
    assert resp.status_code == 409  # on the call still
    for bad in ({"seconds": 0}, {"seconds": "30"}, {"seconds": True}, {}):
        assert post(client, people, "ann", "/api/agents/me/wrapup/extend", bad).status_code == 400
    calls.agent_left(db, redis, ann_talking, "ann", services.clock(), services.config)
    db.commit()
    me = client.get("/api/agents/me", headers=people["ann"]).json
    assert (me["status"], me["call"]["state"], me["call"]["call_sid"]) == ("wrap_up", "wrap_up", ann_talking)
    longer = post(client, people, "ann", "/api/agents/me/wrapup/extend", {"seconds": 30}).json
    assert longer["wrap_up_due"] == pytest.approx(me["wrap_up_due"] + 30, abs=0.01)
    most = post(client, people, "ann", "/api/agents/me/wrapup/extend", {"seconds": 3600}).json
    assert most["wrap_up_due"] == most["wrap_up_max_due"] == pytest.approx(me["since"] + 300, abs=0.01)


def test_the_line_has_counts_and_waits_but_no_callers_data(client: Any, people: Any, db: Any, redis: Any,
                                                           services: Any) -> None:
    calls.join_queue(db, redis, SID, tier="premium", now=services.clock(), settings=services.config)
    db.commit()
    line = client.get("/api/line", headers=people["ann"]).json
    premium = next(row for row in line["tiers"] if row["tier"] == "premium")
    assert (line["waiting"], premium["waiting"]) == (1, 1) and premium["longest_wait_s"] is not None
    assert SID not in str(line) and client.get("/api/line").status_code == 401


def test_presence_changes_for_the_agent_and_for_supervisors(client: Any, people: Any, services: Any) -> None:
    from hotline import jobs

    client.put("/api/agents/me/status", json={"status": "available"}, headers=people["ann"])
    client.put("/api/agents/me/status", json={"status": "away"}, headers=people["ann"])
    jobs.adopt(services)
    assert jobs.write_presence(services) >= 2
    mine = client.get("/api/agents/me/presence", headers=people["ann"]).json
    assert [(e["from"], e["to"], e["reason"]) for e in mine][-2:] == [(None, "available", "agent"),
                                                                      ("available", "away", "agent")]
    assert client.get("/api/presence", headers=people["ann"]).status_code == 403
    every = client.get("/api/presence?limit=5", headers=people["sam"]).json
    assert every[0]["login"] == "ann" and every[0]["to"] == "away"
    assert client.get("/api/presence?limit=0", headers=people["sam"]).status_code == 400


def test_the_token_says_how_each_agent_registers_offline(client: Any, people: Any) -> None:
    assert client.get("/api/agents/me/token", headers=people["ann"]).json == {"mode": "simulated", "identity": "ann"}
    sam = client.get("/api/agents/me/token", headers=people["sam"]).json
    assert sam["mode"] == "phone" and "9000" not in sam["endpoint"]  # masked
    resp = post(client, people, "sam", "/api/agents/me/device/accept")
    assert resp.status_code == 409 and "phone" in resp.json["error"]
    assert post(client, people, "sam", "/api/agents/me/device/decline").status_code == 409  # nothing rings
    assert post(client, people, "sam", "/api/agents/me/device/shrug").status_code == 404
