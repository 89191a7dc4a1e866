"""The web console in Flask's test client: login, CSRF, lockout, roles on every route, pages and their data."""
from __future__ import annotations

import base64
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callqueue import records
from callqueue.agents.accounts import add_agent
from callqueue.callbacks import tickets
from callqueue.live import calls, presence
from console.agent_screen import handle_seconds
from console.dashboard import tier_status
from members.admin import MemberFields, add_member

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
CONSOLE = {"default_language": "zh", "poll_ms": 1000, "at_risk_margin": 0.05, "abandon_rate_target": 0.1}
# Routes anyone may reach: Twilio's (signature-checked instead), health, the login form, files, the API description.
PUBLIC = ("/voice/", "/healthz", "/login", "/assets/", "/api/openapi.json", "/metrics")


@pytest.fixture
def people(db: Any) -> None:
    add_agent(
        db, login="ann", name="Ann", password="ann-pass-1", role="agent", client_identity="ann", phone=None, now=NOW
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password="sam-pass-1",
        role="supervisor",
        client_identity="sam",
        phone=None,
        now=NOW,
    )
    db.commit()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def log_in(client: Any, login: str, password: str, **extra: str) -> Any:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"login": login, "password": password, "csrf_token": token, **extra})


def page_csrf(client: Any, path: str = "/agent") -> str:
    return re.search(r'data-csrf="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


# --- login, logout, lockout ---------------------------------------------------------------------

def test_login_page_is_chinese_by_default_and_english_on_request(client: Any) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "<h1>登录</h1>" in page and 'lang="zh-CN"' in page
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert "<h1>Log in</h1>" in page and 'lang="en"' in page
    assert "<h1>Log in</h1>" in client.get("/login").get_data(as_text=True), "the choice is remembered"


@pytest.mark.parametrize("login, home", [("ann", "/agent"), ("sam", "/supervisor")])
def test_login_goes_to_the_role_home(client: Any, people: Any, login: str, home: str) -> None:
    resp = log_in(client, login, f"{login}-pass-1")
    assert resp.status_code == 302 and resp.headers["Location"] == home
    assert client.get(home).status_code == 200


def test_login_follows_next_only_to_this_site(client: Any, people: Any) -> None:
    assert log_in(client, "sam", "sam-pass-1", next="/supervisor/history").headers["Location"] == "/supervisor/history"
    client.post("/logout", data={"csrf_token": page_csrf(client)})
    for evil in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        assert log_in(client, "sam", "sam-pass-1", next=evil).headers["Location"] == "/supervisor"
        client.post("/logout", data={"csrf_token": page_csrf(client)})


def test_wrong_password_is_refused_with_a_clear_message(client: Any, people: Any) -> None:
    resp = log_in(client, "ann", "not-the-password")
    assert resp.status_code == 401 and "账号或密码不正确" in resp.get_data(as_text=True)
    assert log_in(client, "nobody", "whatever-1").status_code == 401  # same answer: logins are not revealed
    assert client.get("/agent").status_code == 302


def test_login_without_csrf_token_or_fields_is_refused(client: Any, people: Any) -> None:
    client.get("/login")
    resp = client.post("/login", data={"login": "ann", "password": "ann-pass-1"})
    assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
    assert client.get("/agent").status_code == 302
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"login": "", "password": "", "csrf_token": token}).status_code == 400


def test_five_failures_lock_the_account_even_for_the_right_password(client: Any, people: Any, db: Any) -> None:
    for _ in range(4):
        assert log_in(client, "ann", "wrong-password").status_code == 401
    resp = log_in(client, "ann", "wrong-password")
    assert resp.status_code == 429 and "账号已锁定" in resp.get_data(as_text=True)
    resp = log_in(client, "ann", "ann-pass-1")
    assert resp.status_code == 429 and client.get("/agent").status_code == 302


def test_login_starts_a_new_session_and_logout_ends_it(client: Any, people: Any, redis: Any) -> None:
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

def test_every_route_needs_a_login(app: Any, client: Any, people: Any) -> None:
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
def test_an_agent_cannot_open_supervisor_pages(client: Any, people: Any, path: str) -> None:
    log_in(client, "ann", "ann-pass-1")
    resp = client.get(path)
    assert resp.status_code == 403
    if not path.startswith("/api/"):
        assert "您没有权限打开此页面" in resp.get_data(as_text=True)


def test_a_supervisor_opens_every_page(client: Any, people: Any) -> None:
    log_in(client, "sam", "sam-pass-1")
    for path in ("/agent", "/supervisor", "/supervisor/history", "/supervisor/history?date=2026-11-20"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert client.get("/").headers["Location"] == "/supervisor"


def test_session_api_writes_need_the_csrf_header_but_basic_auth_does_not(client: Any, people: Any) -> None:
    log_in(client, "ann", "ann-pass-1")
    resp = client.put("/api/agents/me/status", json={"status": "away"})
    assert resp.status_code == 403 and "X-CSRF-Token" in resp.json["error"]
    resp = client.put("/api/agents/me/status", json={"status": "away"}, headers={"X-CSRF-Token": "forged"})
    assert resp.status_code == 403
    assert client.get("/api/agents/me").json["status"] == "offline", "a refused write changed nothing"
    other = client.application.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(b"ann:ann-pass-1").decode()}
    assert other.put("/api/agents/me/status", json={"status": "away"}, headers=auth).json["status"] == "away"


def test_bad_history_dates_are_400(client: Any, people: Any) -> None:
    log_in(client, "sam", "sam-pass-1")
    for bad in ("2026-13-01", "yesterday", "2099-01-01"):
        assert client.get(f"/supervisor/history?date={bad}").status_code == 400
        assert client.get(f"/supervisor/export.csv?date={bad}").status_code == 400
        assert "date" in client.get(f"/api/history?date={bad}").json["error"]


def test_pages_use_no_external_files() -> None:
    """Everything the browser loads is served by the app: no CDN, no external fonts or scripts."""
    files = list((ROOT / "console" / "templates").glob("*.html")) + list((ROOT / "console" / "static").rglob("*.*"))
    assert len(files) >= 9
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), (
            f"{f.name} loads something from elsewhere"
        )
        assert "@import" not in text and "url(http" not in text, f.name


# --- the agent's screen -------------------------------------------------------------------------

def test_agent_sees_the_routed_callers_context_before_answering(
    client: Any, people: Any, db: Any, redis: Any, services: Any
) -> None:
    add_member(
        db,
        MemberFields(uid="10001", name="李雷", tier="premium", phones=["+8613800000001"]),
        "2468",
        services.config,
        NOW,
        pin_key=services.settings.pin_key_bytes,
    )
    old = tickets.create(db, phone="+8613800000001", tier="premium", lang="zh", reason="after_hours", score=1.0,
                         due=NOW, now=NOW - timedelta(days=2), member_uid="10001", category="billing", max_attempts=3)
    db.commit()
    log_in(client, "ann", "ann-pass-1")
    token = page_csrf(client)
    client.put("/api/agents/me/status", json={"status": "available"}, headers={"X-CSRF-Token": token})
    now = datetime.now(UTC)
    earlier = "CA" + "1" * 32
    calls.arrived(db, earlier, from_number="+8613800000001", now=now - timedelta(days=1))
    sid = "CA" + "7" * 32
    calls.arrived(db, sid, from_number="+8613800000001", now=now)
    calls.join_queue(
        db,
        redis,
        sid,
        tier="premium",
        now=now,
        settings=services.config,
        category="billing",
        verified=True,
        member_uid="10001",
        from_number="+8613800000001",
    )
    assert calls.dispatch(db, redis, now) is not None
    db.commit()
    call = client.get("/api/agents/me").json["call"]
    assert call["connected"] is False, "shown while the agent's phone still rings"
    assert call["member"] == {"uid": "10001", "name": "李雷", "tier": "premium"}
    assert call["number"] == "+86138****0001"
    assert call["tier_label"]["zh"] == "大会员" and call["category_label"]["zh"] == "充值与账单"
    assert call["verified"] is True and call["waited_s"] is not None and call["callback"] is None
    assert [t["number"] for t in call["tickets"]] == [old.ticket.number]
    assert [c["outcome"] for c in call["last_calls"]] == ["in_progress"] and len(call["last_calls"]) == 1


def test_wrapup_needs_a_configured_disposition(client: Any, people: Any) -> None:
    log_in(client, "ann", "ann-pass-1")
    token = page_csrf(client)
    resp = client.post(
        "/api/agents/me/wrapup", json={"disposition": "made-up", "notes": ""}, headers={"X-CSRF-Token": token}
    )
    assert resp.status_code == 400 and "resolved" in resp.json["error"]
    page = client.get("/agent").get_data(as_text=True)
    assert '<option value="resolved">已解决</option>' in page


def test_handle_time_is_talk_plus_wrap_up_until_saved_or_its_limit() -> None:
    later = NOW + timedelta(hours=1)
    rec = records.CallRecord(call_sid="CA1", answered=NOW, ended=NOW + timedelta(seconds=100))
    assert handle_seconds(rec, 30, later) == 130, "never saved: the wrap-up ran its full time"
    assert handle_seconds(rec, 30, NOW + timedelta(seconds=120)) is None, "the wrap-up is still going"
    rec.wrapped_up = NOW + timedelta(seconds=110)
    assert handle_seconds(rec, 30, later) == 110, "saved early"
    assert handle_seconds(rec, 30, NOW + timedelta(seconds=120)) == 110, "saved early: done before its limit"
    rec.wrapped_up = NOW + timedelta(seconds=500)
    assert handle_seconds(rec, 30, later) == 130, "saved after the limit: the limit ended it"
    assert handle_seconds(records.CallRecord(call_sid="CA2", answered=NOW), 30, later) is None, "still talking"


def test_today_counts_only_this_agents_calls_of_today(client: Any, people: Any, db: Any, services: Any) -> None:
    now = datetime.now(UTC)
    for i, (agent, answered) in enumerate([("ann", now - timedelta(minutes=5)), ("ann", now - timedelta(minutes=20)),
                                          ("sam", now - timedelta(minutes=3)), ("ann", now - timedelta(days=2))]):
        db.add(records.CallRecord(call_sid=f"CA{i:032d}", agent_login=agent, answered=answered, outcome="answered",
                                  ended=answered + timedelta(seconds=60), wrapped_up=answered + timedelta(seconds=70)))
    db.commit()
    log_in(client, "ann", "ann-pass-1")
    day = client.get("/api/agents/me/today").json
    # A run just after local midnight would put the 20-minute-old call on yesterday: count what today holds.
    local = now.astimezone(ZoneInfo(services.config["hotline"]["timezone"]))
    expected = sum(1 for m in (5, 20) if (local - timedelta(minutes=m)).date() == local.date())
    assert day["calls_taken"] == expected
    assert day["mean_handle_s"] == (70.0 if expected else None)


# --- the supervisor's data ----------------------------------------------------------------------

def test_target_status_colours() -> None:
    tier = {"service_level_goal": 0.9, "max_wait_s": 300}
    def fig(sl: float | None, ab: float | None, longest: float) -> dict[str, Any]:
        return {"service_level": sl, "abandon_rate": ab, "longest_wait_s": longest}

    assert tier_status(fig(0.97, 0.01, 10), tier, CONSOLE) == {
        "service_level": "ok",
        "abandon_rate": "ok",
        "longest_wait_s": "ok",
    }
    assert tier_status(fig(0.93, 0.06, 240), tier, CONSOLE) == {
        "service_level": "warn",
        "abandon_rate": "warn",
        "longest_wait_s": "warn",
    }
    assert tier_status(fig(0.85, 0.2, 301), tier, CONSOLE) == {
        "service_level": "bad",
        "abandon_rate": "bad",
        "longest_wait_s": "bad",
    }
    assert tier_status(fig(None, None, 0), tier, CONSOLE)["service_level"] == "ok", "no calls yet: nothing at risk"


def test_dashboard_has_figures_agents_queue_and_callbacks(
    client: Any, people: Any, db: Any, redis: Any, services: Any
) -> None:
    now = datetime.now(UTC)
    for i, tier in enumerate(("standard", "premium")):
        sid = f"CA{i:032d}"
        calls.arrived(db, sid, from_number=f"+861380000000{i}", now=now - timedelta(seconds=400))
        calls.join_queue(db, redis, sid, tier=tier, now=now - timedelta(seconds=400 - i), settings=services.config)
    db.commit()
    log_in(client, "sam", "sam-pass-1")
    d = client.get("/api/dashboard").json
    assert [q["tier"] for q in d["queue"]] == ["premium", "standard"], "service order: premium first"
    assert d["queue"][0]["number"].startswith("+86138****")
    assert d["stats"]["tiers"]["premium"]["waiting"] == 1 and d["stats"]["overall"]["waiting"] == 2
    assert d["stats"]["tiers"]["premium"]["status"]["longest_wait_s"] == "warn", "400 s of premium's 420 s promise"
    assert d["stats"]["overall"]["status"]["longest_wait_s"] == "warn"
    assert {a["login"]: a["state"] for a in d["agents"]} == {"ann": "offline", "sam": "offline"}
    assert set(d["callbacks"]) == {"scheduled", "due", "overdue", "completed", "failed"}


def test_csv_export_has_one_row_per_call_of_the_day(client: Any, people: Any, db: Any) -> None:
    day_calls = [("CA" + "a" * 32, datetime(2026, 11, 20, 2, 0, tzinfo=UTC)),
                 ("CA" + "b" * 32, datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
                 ("CA" + "c" * 32, datetime(2026, 11, 21, 2, 0, tzinfo=UTC))]  # the next day in Shanghai
    for sid, when in day_calls:
        calls.arrived(db, sid, from_number="+8613800000001", now=when)
    db.commit()
    log_in(client, "sam", "sam-pass-1")
    resp = client.get("/supervisor/export.csv?date=2026-11-20")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "hotline-calls-2026-11-20.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["call_sid"] for r in rows] == ["CA" + "a" * 32, "CA" + "b" * 32]
    assert rows[0]["caller"] == "'+86138****0001" and rows[0]["arrived"].startswith("2026-11-20T10:00:00")


def test_staffing_card_forecasts_from_todays_arrivals_by_erlang_c(client: Any, people: Any, db: Any, redis: Any,
                                                                 services: Any) -> None:
    from zoneinfo import ZoneInfo

    from console.dashboard import staffing_today

    now = datetime(2026, 3, 10, 10, 7, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday, open 09:00-21:00
    quiet = staffing_today(db, now, services.config)
    assert quiet["current"] == 40 and [i["start"] for i in quiet["intervals"]] == ["10:00", "10:15", "10:30", "10:45"]
    for i, tier in enumerate(["premium", "standard"] * 150):  # a busy morning: 300 calls since 09:00
        at = now - timedelta(seconds=60 + i * 12)
        calls.arrived(db, f"CA{i:032x}", from_number=None, now=at)
        calls.join_queue(db, redis, f"CA{i:032x}", tier=tier, now=at, settings=services.config)
    db.commit()
    busy = staffing_today(db, now, services.config)
    # Nothing measured yet: the shipped day as it is. 300 calls since 09:00 is fewer than it expects by now, so
    # every coming quarter is that day scaled down by the same factor, and needs no more agents.
    scale = {round(b["calls"] / q["calls"], 2) for q, b in zip(quiet["intervals"], busy["intervals"])}
    assert len(scale) == 1 and 0 < scale.pop() < 1
    for q, b in zip(quiet["intervals"], busy["intervals"]):
        assert q["agents"] >= b["agents"] >= b["erlang_agents"] >= 1
    log_in(client, "sam", "sam-pass-1")
    body = client.get("/api/staffing").json
    assert set(body) == {"targets", "current", "intervals"} and len(body["intervals"]) <= 4
