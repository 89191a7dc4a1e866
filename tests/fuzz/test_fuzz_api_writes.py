"""The JSON API and the console's forms under attack: every state-changing route (POST/PUT/PATCH/DELETE in the
url_map, outside Twilio's signature-checked /voice/*) refuses strangers, the wrong role, and a session-cookie write
without the page's CSRF token — and the refused write changes nothing.
"""
from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import select

from hotline.models import Base
from tests.support.api_world import PASSWORDS, basic, log_in

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Who may use each state-changing route. A new one fails test_every_write_route_is_listed until it is added here.
ROLES = {
    ("PUT", "/api/agents/me/status"): {"agent", "supervisor"},
    ("POST", "/api/agents/me/wrapup"): {"agent", "supervisor"},
    ("POST", "/api/callbacks/<number>/cancel"): {"supervisor"},
    ("POST", "/api/agents/me/heartbeat"): {"agent", "supervisor"},
    ("POST", "/api/agents/me/device/<decision>"): {"agent", "supervisor"},
    ("POST", "/api/agents/me/wrapup/extend"): {"agent", "supervisor"},
    # the call controls: an agent on the calls they are on (403 "not_yours" otherwise, a rule of the call, not of
    # the role), a supervisor on any
    ("POST", "/api/calls/<call_sid>/hold"): {"agent", "supervisor"},
    ("POST", "/api/calls/<call_sid>/mute"): {"agent", "supervisor"},
    ("POST", "/api/calls/<call_sid>/hangup"): {"agent", "supervisor"},
    ("POST", "/api/calls/<call_sid>/transfer"): {"agent", "supervisor"},
    ("POST", "/api/calls/<call_sid>/transfer/complete"): {"agent", "supervisor"},
    ("POST", "/api/calls/<call_sid>/transfer/cancel"): {"agent", "supervisor"},
    ("POST", "/login"): {"anyone"},
    ("POST", "/logout"): {"anyone"},
}
LOGINS = {"agent": "ann", "supervisor": "sam"}


def write_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, rule) that changes state, except Twilio's webhooks (they are signature-checked instead)."""
    return sorted((m, r.rule) for r in app.url_map.iter_rules() for m in r.methods & WRITE_METHODS
                  if not r.rule.startswith("/voice/"))


def concrete(rule: str, world: dict[str, Any]) -> str:
    return (rule.replace("<number>", world["ticket"]).replace("<call_sid>", world["on_call"])
            .replace("<decision>", "decline"))


BODIES = {"/status": {"status": "away"}, "/wrapup": {"disposition": "resolved", "notes": "x"},
          "/hold": {"hold": True}, "/mute": {"mute": True}, "/transfer": {"to": "queue", "mode": "cold"}}


def body_for(method: str, rule: str) -> dict[str, Any]:
    found = [b for end, b in BODIES.items() if rule.endswith(end)]
    return {"json": found[0]} if found else {}


def refused_by_role(resp: Any) -> bool:
    """A 401, or a 403 that names the role (not a call's own rule: an agent controls only calls they are on)."""
    return resp.status_code == 401 or (resp.status_code == 403 and "role" in resp.json["error"])


def state_of(services: Any) -> tuple[Any, ...]:
    """What a refused write must not have changed: SQL tables and the agents' presence."""
    r = services.redis
    with services.engine.connect() as conn:
        sql = tuple(sorted(map(repr, conn.execute(select(t)).all())) for t in Base.metadata.sorted_tables
                    if t.name != "agents")  # failed logins are counted there, by design
    agents = tuple(sorted((k, tuple(sorted(r.hgetall(k).items()))) for k in r.keys("hl:agent:*")))
    return sql, agents


def test_every_write_route_is_listed(app: Any) -> None:
    routes = write_routes(app)
    assert len(routes) >= 5
    unknown = [r for r in routes if r not in ROLES]
    assert not unknown, f"state-changing routes with no declared roles (add them to ROLES): {unknown}"


@pytest.mark.parametrize("method, rule", sorted(ROLES))
def test_writes_refuse_strangers(app: Any, client: Any, services: Any, world: Any, method: str, rule: str) -> None:
    before = state_of(services)
    path = concrete(rule, world)
    resp = client.open(path, method=method, **body_for(method, rule))
    if rule in ("/login", "/logout"):  # public forms: the CSRF token is what they need
        assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
    elif rule.startswith("/api/"):
        assert resp.status_code == 401 and resp.json["error"]
    else:
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert client.open(
        path,
        method=method,
        headers={"Authorization": "Basic " + base64.b64encode(b"ann:wrong").decode()},
        **body_for(method, rule),
    ).status_code in (400, 401, 302)
    assert state_of(services) == before, "a refused write changed the stores"


@pytest.mark.parametrize("method, rule", sorted(k for k, v in ROLES.items() if "anyone" not in v))
@pytest.mark.parametrize("role", sorted(LOGINS))
def test_writes_refuse_the_wrong_role(
    app: Any, client: Any, services: Any, world: Any, method: str, rule: str, role: str
) -> None:
    before = state_of(services)
    resp = client.open(concrete(rule, world), method=method, headers=basic(LOGINS[role]), **body_for(method, rule))
    if role in ROLES[(method, rule)]:
        assert not refused_by_role(resp), (resp.status_code, resp.get_data(as_text=True))
    else:
        assert resp.status_code == 403 and "role" in resp.json["error"]
        assert state_of(services) == before, "a write refused for its role changed the stores"


@pytest.mark.parametrize("method, rule", sorted(ROLES))
@pytest.mark.parametrize("token", ["missing", "forged", "another session's"])
def test_session_writes_need_this_sessions_csrf_token(
    app: Any, client: Any, services: Any, world: Any, method: str, rule: str, token: str
) -> None:
    allowed = ROLES[(method, rule)]
    login = LOGINS["supervisor"] if "supervisor" in allowed or "anyone" in allowed else LOGINS["agent"]
    own = log_in(client, login)
    other = app.test_client()
    theirs = log_in(other, "bob")
    assert theirs != own
    given_token = {"missing": None, "forged": "forged-" + own[:10], "another session's": theirs}[token]
    before = state_of(services)
    headers = {"X-CSRF-Token": given_token} if given_token else {}
    kwargs = body_for(method, rule)
    if not rule.startswith("/api/"):
        kwargs = {"data": {"csrf_token": given_token} if given_token else {}}
        if rule == "/login":
            kwargs["data"].update(login="bob", password=PASSWORDS["bob"])
    resp = client.open(concrete(rule, world), method=method, headers=headers, **kwargs)
    if rule.startswith("/api/"):
        assert resp.status_code == 403 and "X-CSRF-Token" in resp.json["error"]
    else:  # the console's forms answer 400 "the page has expired"
        assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
    assert state_of(services) == before, "a write without this session's CSRF token changed the stores"
    assert client.get("/api/agents/me").status_code == 200, "still logged in as before (no login, no logout happened)"
    assert client.get("/api/agents/me").json["login"] == login
    # The same write with the right token goes through (so the refusal above was the token's doing).
    if rule.startswith("/api/"):
        ok = client.open(concrete(rule, world), method=method, headers={"X-CSRF-Token": own}, **body_for(method, rule))
        assert not refused_by_role(ok), (ok.status_code, ok.get_data(as_text=True))
