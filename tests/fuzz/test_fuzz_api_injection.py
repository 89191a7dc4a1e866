"""The JSON API and the console's forms under attack: SQL-injection and template-injection strings in every text
field of the API and the console's forms are inert: stored verbatim, rendered escaped, never a 5xx, the tables
intact. And what the fuzzers found, kept as plain cases.
"""
from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from callqueue.callbacks.tickets import CallbackTicket
from callqueue.records import CallRecord
from hotline.models import Base
from tests.support.api_world import basic, log_in

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
