"""The web console in Flask's test client: the agent's screen (the routed caller's context, wrap-up, handle time,
today's calls) and the supervisor's data (target colours, dashboard, CSV export, staffing card)."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callqueue import records
from callqueue.callbacks import tickets
from callqueue.live import calls
from console.agent_screen import handle_seconds
from console.dashboard import tier_status
from members.admin import MemberFields, add_member
from tests.support.console import NOW, log_in, page_csrf

CONSOLE = {"default_language": "zh", "poll_ms": 1000, "at_risk_margin": 0.05, "abandon_rate_target": 0.1}


# --- the agent's screen -------------------------------------------------------------------------

def test_agent_sees_the_routed_callers_context_before_answering(
    client: Any, console_people: Any, db: Any, redis: Any, services: Any
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


def test_wrapup_needs_a_configured_disposition(client: Any, console_people: Any) -> None:
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


def test_today_counts_only_this_agents_calls_of_today(client: Any, console_people: Any, db: Any, services: Any) -> None:
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
    client: Any, console_people: Any, db: Any, redis: Any, services: Any
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


def test_csv_export_has_one_row_per_call_of_the_day(client: Any, console_people: Any, db: Any) -> None:
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


def test_staffing_card_forecasts_from_todays_arrivals_by_erlang_c(client: Any, console_people: Any, db: Any, redis: Any,
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
    scale = {round(b["calls"] / q["calls"], 2) for q, b in zip(quiet["intervals"], busy["intervals"], strict=True)}
    assert len(scale) == 1 and 0 < scale.pop() < 1
    for q, b in zip(quiet["intervals"], busy["intervals"], strict=True):  # the same coming quarters
        assert q["agents"] >= b["agents"] >= b["erlang_agents"] >= 1
    log_in(client, "sam", "sam-pass-1")
    body = client.get("/api/staffing").json
    assert set(body) == {"targets", "current", "intervals"} and len(body["intervals"]) <= 4
