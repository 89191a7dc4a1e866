"""The web console in Flask's test client: login, logout, CSRF, lockout, and roles on every route."""
from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from callqueue.live import presence
from tests.support.common import ROOT
from tests.support.console import csrf_of, log_in, page_csrf

# Routes anyone may reach: Twilio's (signature-checked instead), health, the login form, files, the API description.
PUBLIC = ("/voice/", "/healthz", "/login", "/assets/", "/api/openapi.json", "/metrics")


# --- login, logout, lockout ---------------------------------------------------------------------

def test_login_page_is_chinese_by_default_and_english_on_request(client: Any) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "<h1>登录</h1>" in page and 'lang="zh-CN"' in page
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert "<h1>Log in</h1>" in page and 'lang="en"' in page
    assert "<h1>Log in</h1>" in client.get("/login").get_data(as_text=True), "the choice is remembered"


@pytest.mark.parametrize("login, home", [("ann", "/agent"), ("sam", "/supervisor")])
def test_login_goes_to_the_role_home(client: Any, console_people: Any, login: str, home: str) -> None:
    resp = log_in(client, login, f"{login}-pass-1")
    assert resp.status_code == 302 and resp.headers["Location"] == home
    assert client.get(home).status_code == 200


def test_login_follows_next_only_to_this_site(client: Any, console_people: Any) -> None:
    assert log_in(client, "sam", "sam-pass-1", next="/supervisor/history").headers["Location"] == "/supervisor/history"
    client.post("/logout", data={"csrf_token": page_csrf(client)})
    for evil in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        assert log_in(client, "sam", "sam-pass-1", next=evil).headers["Location"] == "/supervisor"
        client.post("/logout", data={"csrf_token": page_csrf(client)})


def test_wrong_password_is_refused_with_a_clear_message(client: Any, console_people: Any) -> None:
    resp = log_in(client, "ann", "not-the-password")
    assert resp.status_code == 401 and "账号或密码不正确" in resp.get_data(as_text=True)
    assert log_in(client, "nobody", "whatever-1").status_code == 401  # same answer: logins are not revealed
    assert client.get("/agent").status_code == 302


def test_login_without_csrf_token_or_fields_is_refused(client: Any, console_people: Any) -> None:
    client.get("/login")
    resp = client.post("/login", data={"login": "ann", "password": "ann-pass-1"})
    assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
    assert client.get("/agent").status_code == 302
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"login": "", "password": "", "csrf_token": token}).status_code == 400


def test_five_failures_lock_the_account_even_for_the_right_password(client: Any, console_people: Any, db: Any) -> None:
    for _ in range(4):
        assert log_in(client, "ann", "wrong-password").status_code == 401
    resp = log_in(client, "ann", "wrong-password")
    assert resp.status_code == 429 and "账号已锁定" in resp.get_data(as_text=True)
    resp = log_in(client, "ann", "ann-pass-1")
    assert resp.status_code == 429 and client.get("/agent").status_code == 302


def test_login_starts_a_new_session_and_logout_ends_it(client: Any, console_people: Any, redis: Any) -> None:
    before = csrf_of(client.get("/login").get_data(as_text=True))
    log_in(client, "ann", "ann-pass-1")
    token = page_csrf(client)
    assert token != before, "a new CSRF token (and session) after logging in"
    assert (
        client.put("/api/agents/me/status", json={"status": "available"}, headers={"X-CSRF-Token": token}).status_code
        == 200
    )
    assert client.post("/logout", data={}).status_code == 400, "logout needs the token too"
    resp = client.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 200 and "您已退出登录" in resp.get_data(as_text=True)
    assert presence.get(redis, "ann", datetime.now(UTC)).state == "offline", "no calls to an empty desk"
    assert client.get("/agent").status_code == 302
    assert client.get("/api/agents/me").status_code == 401


# --- roles on every route -----------------------------------------------------------------------

def test_every_route_needs_a_login(app: Any, client: Any, console_people: Any) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PUBLIC) or rule.rule == "/logout":
            continue
        path = re.sub(r"<[^>]+>", "12345678", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(path, method=method)
            if rule.rule == "/":
                assert resp.status_code == 302 and resp.headers["Location"] == "/login"
            elif path.startswith("/api/"):
                assert resp.status_code == 401, (method, path, resp.status_code)
            else:
                assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next="), (method, path)
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize("path", ["/supervisor", "/supervisor/history", "/supervisor/export.csv", "/api/dashboard",
                                  "/api/history", "/api/agents", "/api/queue", "/api/stats", "/api/callbacks"])
def test_an_agent_cannot_open_supervisor_pages(client: Any, console_people: Any, path: str) -> None:
    log_in(client, "ann", "ann-pass-1")
    resp = client.get(path)
    assert resp.status_code == 403
    if not path.startswith("/api/"):
        assert "您没有权限打开此页面" in resp.get_data(as_text=True)


def test_a_supervisor_opens_every_page(client: Any, console_people: Any) -> None:
    log_in(client, "sam", "sam-pass-1")
    for path in ("/agent", "/supervisor", "/supervisor/history", "/supervisor/history?date=2026-11-20"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert client.get("/").headers["Location"] == "/supervisor"


def test_session_api_writes_need_the_csrf_header_but_basic_auth_does_not(client: Any, console_people: Any) -> None:
    log_in(client, "ann", "ann-pass-1")
    resp = client.put("/api/agents/me/status", json={"status": "away"})
    assert resp.status_code == 403 and "X-CSRF-Token" in resp.json["error"]
    resp = client.put("/api/agents/me/status", json={"status": "away"}, headers={"X-CSRF-Token": "forged"})
    assert resp.status_code == 403
    assert client.get("/api/agents/me").json["status"] == "offline", "a refused write changed nothing"
    other = client.application.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"ann:ann-pass-1").decode()}
    assert other.put("/api/agents/me/status", json={"status": "away"}, headers=auth).json["status"] == "away"


def test_bad_history_dates_are_400(client: Any, console_people: Any) -> None:
    log_in(client, "sam", "sam-pass-1")
    for bad in ("2026-13-01", "yesterday", "2099-01-01"):
        assert client.get(f"/supervisor/history?date={bad}").status_code == 400
        assert client.get(f"/supervisor/export.csv?date={bad}").status_code == 400
        assert "date" in client.get(f"/api/history?date={bad}").json["error"]


TEXT = {".html", ".js", ".css", ".md"}
MEDIA = {".wav"}


def test_pages_use_no_external_files() -> None:
    """Everything the browser loads is served by the app: no CDN, no external fonts or scripts."""
    files = list((ROOT / "console" / "templates").glob("*.html")) + list((ROOT / "console" / "static").rglob("*.*"))
    assert len(files) >= 9
    for f in files:
        if f.suffix in MEDIA:  # sound the page plays itself: bytes, no addresses in them
            continue
        assert f.suffix in TEXT, f"{f.name}: a static file of a kind this test does not read"
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), (
            f"{f.name} loads something from elsewhere"
        )
        assert "@import" not in text and "url(http" not in text, f.name
