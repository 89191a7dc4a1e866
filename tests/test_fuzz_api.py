"""The JSON API and the console's forms under attack.

- schemathesis, driven by the app's own /api/openapi.json through the WSGI app (no server): every operation,
  valid and invalid inputs, as an agent and as a supervisor (HTTP Basic). Checks: no 5xx, only documented
  status codes and content types, answers that match the document's response schemas; invalid input refused.
- Every state-changing route (POST/PUT/PATCH/DELETE in the url_map, outside Twilio's signature-checked
  /voice/*) refuses strangers, the wrong role, and a session-cookie write without the page's CSRF token —
  and the refused write changes nothing.
- SQL-injection and template-injection strings in every text field of the API and the console's forms are
  inert: stored verbatim, rendered escaped, never a 5xx, the tables intact.

Reproducible (derandomized hypothesis, no example database); the number of requests is printed.
"""
from __future__ import annotations

import base64
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from markupsafe import escape
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from callqueue.agents.accounts import add_agent
from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import CallbackTicket
from callqueue.live import calls, presence
from callqueue.records import CallRecord
from hotline.models import Base

EXAMPLES = 400  # per role and generation mode: the file runs in well under a minute

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=EXAMPLES,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)

PASSWORDS = {"ann": "ann-pass-1", "sam": "sam-pass-1", "bob": "bob-pass-1"}


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{PASSWORDS[login]}".encode()).decode()}


@pytest.fixture
def world(db: Any, redis: Any, services: Any) -> dict[str, Any]:
    """Two agents and a supervisor; ann has just finished a call (wrap-up), bob is on one, two callers wait, a ticket is due."""
    now = datetime.now(UTC)
    add_agent(
        db, login="ann", name="Ann", password=PASSWORDS["ann"], role="agent", client_identity="ann", phone=None, now=now
    )
    add_agent(
        db, login="bob", name="Bob", password=PASSWORDS["bob"], role="agent", client_identity="bob", phone=None, now=now
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password=PASSWORDS["sam"],
        role="supervisor",
        client_identity="sam",
        phone=None,
        now=now,
    )
    cfg = services.config
    sids = ["CA" + c * 32 for c in "abcd"]
    for i, sid in enumerate(sids):
        calls.arrived(db, sid, from_number=f"+861380000000{i}", now=now)
        calls.join_queue(db, redis, sid, tier=("premium", "standard", "guest", "standard")[i], now=now, settings=cfg,
                         category="billing", verified=i == 0, from_number=f"+861380000000{i}")
    presence.set_state(redis, "ann", "available", now, endpoint="client:ann")
    offer = calls.dispatch(db, redis, now)
    assert offer is not None and offer.agent == "ann"
    calls.agent_answered(db, redis, offer.call_sid, "ann", now, cfg)
    assert calls.dial_result(db, redis, offer.call_sid, "ann", "completed", now, cfg) == "done"
    presence.set_state(redis, "bob", "available", now, endpoint="client:bob")
    offer = calls.dispatch(db, redis, now)
    assert offer is not None and offer.agent == "bob"
    calls.agent_answered(db, redis, offer.call_sid, "bob", now, cfg)
    ticket = tickets.create(db, phone="+8613800000051", tier="premium", lang="zh", reason="after_hours", score=1.0,
                            due=now - timedelta(minutes=5), now=now - timedelta(hours=2), max_attempts=3).ticket
    db.commit()
    return {"ticket": ticket.number, "sids": sids}


# --- schemathesis --------------------------------------------------------------------------------

@pytest.fixture
def api_schema(app: Any) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # Credentials are sent by the test (an agent's or a supervisor's), not generated; and a query parameter the
    # document does not name is ignored, as HTTP APIs do, rather than counted as invalid input.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    return schema


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("login", ["ann", "sam"], ids=["agent", "supervisor"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_schemathesis_finds_no_error_and_every_answer_matches_the_document(
        api_schema: Any, world: Any, login: str, mode: GenerationMode, capsys: pytest.CaptureFixture[str]) -> None:
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    seen: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    t0 = time.perf_counter()

    @FUZZ
    @given(api_schema.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call_and_validate(headers=basic(login), checks=checks)
        seen[case.operation.label] += 1
        statuses[response.status_code] += 1

    run()
    with capsys.disabled():
        print(
            f"\n[fuzz] schemathesis {mode.value} as {login}: {sum(seen.values())} requests in {time.perf_counter() - t0:.1f} s "
            f"over {len(seen)} of {len(operations)} operations; status codes {dict(sorted(statuses.items()))}"
        )
    # Invalid input needs an input to spoil: without unknown parameters, only operations with a query or a body have one.
    # (A string path parameter cannot be made invalid either.)
    expected = {op.label for op in operations
                if mode is GenerationMode.POSITIVE or op.definition.raw.get("requestBody")
                or any(p.get("in") == "query" for p in op.definition.raw.get("parameters", []))}
    assert expected <= set(seen), f"operations never exercised: {sorted(expected - set(seen))}"


# --- CSRF and roles on every state-changing route ------------------------------------------------

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Who may use each state-changing route. A new one fails test_every_write_route_is_listed until it is added here.
ROLES = {
    ("PUT", "/api/agents/me/status"): {"agent", "supervisor"},
    ("POST", "/api/agents/me/wrapup"): {"agent", "supervisor"},
    ("POST", "/api/callbacks/<number>/cancel"): {"supervisor"},
    ("POST", "/login"): {"anyone"},
    ("POST", "/logout"): {"anyone"},
}
LOGINS = {"agent": "ann", "supervisor": "sam"}


def write_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, rule) that changes state, except Twilio's webhooks (they are signature-checked instead)."""
    return sorted((m, r.rule) for r in app.url_map.iter_rules() for m in r.methods & WRITE_METHODS
                  if not r.rule.startswith("/voice/"))


def concrete(rule: str, world: dict[str, Any]) -> str:
    return rule.replace("<number>", world["ticket"])


def body_for(method: str, rule: str) -> dict[str, Any]:
    return {"json": {"status": "away"}} if rule.endswith("/status") else \
        {"json": {"disposition": "resolved", "notes": "x"}} if rule.endswith("/wrapup") else {}


def state_of(services: Any) -> tuple[Any, ...]:
    """What a refused write must not have changed: SQL tables and the agents' presence."""
    r = services.redis
    with services.engine.connect() as conn:
        sql = tuple(sorted(map(repr, conn.execute(select(t)).all())) for t in Base.metadata.sorted_tables
                    if t.name != "agents")  # failed logins are counted there, by design
    agents = tuple(sorted((k, tuple(sorted(r.hgetall(k).items()))) for k in r.keys("hl:agent:*")))
    return sql, agents


def log_in(client: Any, login: str) -> str:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"login": login, "password": PASSWORDS[login], "csrf_token": token})
    assert resp.status_code == 302, resp.status_code
    page = client.get("/agent").get_data(as_text=True)
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


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
        assert resp.status_code not in (401, 403), (resp.status_code, resp.get_data(as_text=True))
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
        assert ok.status_code not in (401, 403), (ok.status_code, ok.get_data(as_text=True))


# --- injection strings are inert -----------------------------------------------------------------

# SQL injection, template injection (each would leave a marker if evaluated: "zqzqzq" or "<class"), markup, formulas.
INJECTIONS = (
    "' OR '1'='1",
    "'; DROP TABLE call_records; --",
    '" OR ""="',
    "1; SELECT pg_sleep(0)--",
    "') UNION SELECT password_hash FROM agents--",
    "{{'zq'*3}}",
    "{{ config }}",
    "{% for x in range(2) %}zq{% endfor %}zq",
    "${'zq'*3}",
    "#{'zq'*3}",
    "<%= 'zq'*3 %>",
    "{0.__class__}",
    "%s%s%n",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://x")',
    "\\x00",
    "nul\x00byte",
    "中文' --",
)
EVALUATED = ("zqzqzq", "<class", "SECRET_KEY", "&lt;Config")


def counts(services: Any) -> dict[str, int]:
    with services.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in Base.metadata.sorted_tables
        }


def inert_html(page: str, payload: str) -> None:
    """The payload is shown escaped (if at all), never run by the template engine or the browser."""
    for marker in EVALUATED:
        assert marker not in page, f"{payload!r} was evaluated: {marker!r} is in the page"
    for marker in ("<script>alert", "<img src=x", "onerror=alert(1)>"):
        if marker in payload:
            assert marker not in page, f"{payload!r} is rendered unescaped"


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_in_wrapup_notes_are_stored_verbatim(
    client: Any, services: Any, db: Any, world: Any, payload: str
) -> None:
    before = counts(services)
    resp = client.post(
        "/api/agents/me/wrapup", json={"disposition": "resolved", "notes": payload}, headers=basic("ann")
    )
    db.expire_all()
    rec = db.scalar(select(CallRecord).where(CallRecord.agent_login == "ann"))
    if "\x00" in payload:  # no database text column can hold a NUL: refused with the reason, nothing stored
        assert resp.status_code == 400 and "NUL" in resp.get_json()["error"]
        assert rec is not None and rec.notes is None
    else:
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert rec is not None and rec.notes == payload, "stored verbatim"
    assert counts(services) == before
    for field in ("status", "disposition"):  # the enumerated fields refuse it with a reason
        body = {"status": payload} if field == "status" else {"disposition": payload, "notes": "x"}
        path = "/api/agents/me/status" if field == "status" else "/api/agents/me/wrapup"
        bad = client.open(path, method="PUT" if field == "status" else "POST", json=body, headers=basic("bob"))
        assert bad.status_code in (400, 409) and "error" in bad.json
        assert payload not in bad.json["error"] or bad.mimetype == "application/json"


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_in_queries_and_paths_are_refused_or_ignored(
    client: Any, services: Any, world: Any, payload: str
) -> None:
    before = counts(services)
    sup = basic("sam")
    for path, params in (
        ("/api/history", {"date": payload}),
        ("/api/queue", {"limit": payload}),
        ("/api/stats", {"window": payload}),
        ("/api/callbacks", {"status": payload}),
        ("/api/callbacks", {"limit": payload}),
    ):
        resp = client.get(path, query_string=params, headers=sup)
        assert resp.status_code == 400 and resp.mimetype == "application/json" and "error" in resp.json, (
            path,
            resp.status_code,
        )
    resp = client.post(
        "/api/callbacks/" + payload.replace("/", "%2F").replace("?", "%3F").replace("#", "%23") + "/cancel", headers=sup
    )
    assert resp.status_code in (404, 405)
    assert db_ticket_status(services, world["ticket"]) == "scheduled"
    assert counts(services) == before


def db_ticket_status(services: Any, number: str) -> str:
    with services.engine.connect() as conn:
        return conn.execute(select(CallbackTicket.status).where(CallbackTicket.number == number)).scalar_one()


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_strings_in_the_console_forms_are_rendered_escaped(app: Any, client: Any, services: Any, world: Any,
                                                                    payload: str) -> None:
    before = {k: v for k, v in counts(services).items() if k != "agents"}
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for form in ({"login": payload, "password": "whatever-1"}, {"login": "ann", "password": payload},
                 {"login": payload, "password": payload, "next": payload}):
        resp = client.post("/login", data={**form, "csrf_token": token})
        assert resp.status_code == 401, (form, resp.status_code)
        out = resp.get_data(as_text=True)
        inert_html(out, payload)
        if form["login"] == payload and payload.strip():
            assert str(escape(payload.strip())) in out, "the login name is shown back, escaped"
    for q in ({"next": payload}, {"lang": payload}):
        resp = client.get("/login", query_string=q)
        assert resp.status_code == 200
        inert_html(resp.get_data(as_text=True), payload)
    log_in(client, "sam")
    for path in ("/supervisor/history", "/supervisor/export.csv"):
        resp = client.get(path, query_string={"date": payload})
        assert resp.status_code == 400, (path, resp.status_code)
        inert_html(resp.get_data(as_text=True), payload)
    assert {k: v for k, v in counts(services).items() if k != "agents"} == before


def test_injection_notes_reach_the_csv_export_as_text_not_formulas(
    client: Any, services: Any, db: Any, world: Any
) -> None:
    payload = "=HYPERLINK(\"http://x\",\"y\")"
    assert (
        client.post(
            "/api/agents/me/wrapup", json={"disposition": "resolved", "notes": payload}, headers=basic("ann")
        ).status_code
        == 200
    )
    log_in(client, "sam")
    csv_text = client.get("/supervisor/export.csv").get_data(as_text=True)
    assert "'" + payload.replace('"', '""') in csv_text, "a note starting with = is exported as text"
    assert "," + payload.replace('"', '""') not in csv_text and '"' + payload.replace(
        '"', '""'
    ) not in csv_text.replace("\"'", "")


# --- found by the fuzzers, kept as plain cases ---------------------------------------------------

@pytest.mark.parametrize(
    "disposition", [{}, [], ["resolved"], 1, None, True], ids=["object", "empty-list", "list", "number", "null", "bool"]
)
def test_a_disposition_that_is_not_a_string_is_400(client: Any, world: Any, disposition: Any) -> None:
    """The document says disposition is a string; JSON may carry anything else (an object or a list used to raise
    TypeError: unhashable, a 500)."""
    resp = client.post("/api/agents/me/wrapup", json={"disposition": disposition, "notes": ""}, headers=basic("ann"))
    assert resp.status_code == 400 and "disposition" in resp.json["error"]


@pytest.mark.parametrize("login", ["ann\x00", "a\x00b", "\x00"], ids=["trailing", "inside", "only"])
def test_credentials_with_a_nul_byte_are_refused_not_a_crash(app: Any, client: Any, world: Any, login: str) -> None:
    """A NUL in a login is no login (PostgreSQL refuses NUL in text: the lookup must not reach it raw)."""
    auth = {"Authorization": "Basic " + base64.b64encode(f"{login}:ann-pass-1".encode()).decode()}
    assert client.get("/api/agents/me", headers=auth).status_code == 401
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert (
        client.post("/login", data={"login": login, "password": "ann-pass-1", "csrf_token": token}).status_code == 401
    )
