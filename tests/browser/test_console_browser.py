"""The console in real headless Chromium: a supervisor watches a simulated premium call join the queue and be
answered by an agent using the console, live, without a reload; wrap-up, CSV, /metrics and role checks."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families

from core.services import Services
from simulator import Script
from tests.support.browser import DESK, TABLET, chromium, chromium_or_skip, live_server, log_in, shot
from tests.support.common import ALWAYS_OPEN
from tests.support.flow import in_process_flow, join_queue
from tests.support.hotline_api import records
from tests.support.people import PIN, SUPERVISOR, add_members, add_people, password

# The pages poll often in these tests so that each step shows quickly; expectations wait for the text, never sleep.
FAST_PAGES = ALWAYS_OPEN.read_text(encoding="utf-8") + "\n[console]\npoll_ms = 300\n"
WAIT_MS = 15_000


def test_supervisor_sees_a_premium_call_join_and_be_answered_through_the_agent_console(
    services: Services, tmp_path: Path
) -> None:
    chromium_or_skip()
    from playwright.sync_api import expect

    # Simulated time runs at a tenth of real time: the agent's phone rings 3 s and the call lasts 4 s, long
    # enough to watch; the hold music loops every 12 s. The app's clock is the wall clock (with an offset).
    with in_process_flow(services, tmp_path, workers=1, scale=0.1, extra=FAST_PAGES, wrap_up_s=120,
                         ring_timeout_s=60) as flow, live_server(flow.app) as base, chromium() as browser:
        add_people(flow.svc, ["ann"])
        phones = add_members(flow.svc, flow.config, {"premium": 1})
        flow.sim.add_agent("ann", answer_after=30, talk_seconds=None)

        boss = browser.new_context(viewport=DESK, locale="zh-CN").new_page()
        log_in(boss, base, SUPERVISOR, password(SUPERVISOR))
        expect(boss).to_have_url(base + "/supervisor")

        def premium(fig: str) -> Any:
            return boss.locator(f'#figures-body td[data-tier="premium"][data-fig="{fig}"]')

        def overall(fig: str) -> Any:
            return boss.locator(f'#figures-body td[data-tier="overall"][data-fig="{fig}"]')

        expect(premium("waiting")).to_have_text("0", timeout=WAIT_MS)
        expect(premium("answered")).to_have_text("0")

        agent = browser.new_context(viewport=DESK, locale="zh-CN").new_page()
        log_in(agent, base, "ann", password("ann"))
        expect(agent).to_have_url(base + "/agent")
        expect(agent.locator("#state")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)

        # A premium member calls, verifies with the PIN, presses 0 and holds: no agent is available yet.
        call = join_queue(flow.sim, phones["premium"][0],
                          Script(answers=(PIN + "#", "0"), when_answers_run_out="hangup", hangup_after_talk_seconds=40))
        expect(premium("waiting")).to_have_text("1", timeout=WAIT_MS)
        expect(overall("waiting")).to_have_text("1")
        expect(boss.locator("#queue-body tr")).to_have_count(1)
        expect(boss.locator("#queue-body tr td").nth(1)).to_have_text("大会员")
        shot(boss, "supervisor-call-waiting")

        # The agent goes available: the call is routed, and its context shows while the phone still rings.
        agent.click("#btn-available")
        expect(agent.locator("#call-phase")).to_have_text("来电接入中", timeout=WAIT_MS)
        expect(agent.locator("#call-member")).to_contain_text("member 50001")
        expect(agent.locator("#call-tier")).to_have_text("大会员")
        expect(agent.locator("#call-category")).to_have_text("综合咨询")
        expect(agent.locator("#call-verified")).to_have_text("已验证")
        expect(agent.locator("#call-number")).to_have_text(re.compile(r"^\+86138\*{4}\d{4}$"))
        shot(agent, "agent-call-ringing")
        expect(agent.locator("#call-phase")).to_have_text("通话中", timeout=WAIT_MS)
        expect(agent.locator("#state")).to_have_attribute("data-state", "on_call")

        # The supervisor's figures change without a reload: answered, ASA, service level; nobody waits.
        expect(premium("answered")).to_have_text("1", timeout=WAIT_MS)
        expect(premium("waiting")).to_have_text("0")
        expect(overall("answered")).to_have_text("1")
        expect(premium("asa_s")).not_to_have_text("–")
        expect(premium("service_level")).to_have_text("100.0% / 90.0%")
        expect(boss.locator('#agents-body tr[data-agent="ann"] [data-state]')).to_have_attribute(
            "data-state", "on_call"
        )
        shot(boss, "supervisor-call-answered")

        # The caller hangs up: the wrap-up form, with its countdown; the agent saves it and is available again.
        expect(agent.locator("#wrapup-card")).to_be_visible(timeout=WAIT_MS)
        expect(agent.locator("#wrapup-left")).to_have_text(re.compile(r"剩余 \d+ 秒"))
        expect(agent.locator("#state")).to_have_attribute("data-state", "wrap_up")
        expect(agent.locator("#call-phase")).to_have_text("话后整理")  # the caller's context stays through wrap-up
        expect(agent.locator("#call-member")).to_contain_text("member 50001")
        expect(agent.locator("#today-handle")).to_have_text("–")  # no handle time while the wrap-up still runs
        shot(agent, "agent-wrap-up")
        agent.select_option("#wrapup-disposition", "resolved")
        agent.fill("#wrapup-notes", "解释了会员权益")
        agent.click("#wrapup-save")
        expect(agent.locator("#state")).to_have_attribute("data-state", "available", timeout=WAIT_MS)
        expect(agent.locator("#wrapup-card")).to_be_hidden()
        expect(agent.locator("#call")).to_be_hidden()
        expect(agent.locator("#today-taken")).to_have_text("1")
        expect(agent.locator("#today-handle")).not_to_have_text("–")
        call.join(WAIT_MS / 1000)

        rec = records(flow.svc)[call.sid]
        assert (rec.outcome, rec.agent_login, rec.disposition, rec.notes) == (
            "answered",
            "ann",
            "resolved",
            "解释了会员权益",
        )

        # That day's CSV holds the call, with the disposition; the number is masked.
        today = flow.clock().astimezone(ZoneInfo(flow.config["hotline"]["timezone"])).date().isoformat()
        resp = boss.request.get(f"{base}/supervisor/export.csv?date={today}")
        assert resp.status == 200
        rows = {r["call_sid"]: r for r in csv.DictReader(io.StringIO(resp.text().lstrip("\ufeff")))}
        assert rows[call.sid]["outcome"] == "answered" and rows[call.sid]["disposition"] == "resolved"
        assert rows[call.sid]["tier"] == "premium" and "****" in rows[call.sid]["caller"]

        # The history page draws today's intervals, with this call in one of them.
        boss.goto(base + "/supervisor/history")
        expect(boss.locator("body")).to_have_attribute("data-loaded", "history", timeout=WAIT_MS)
        expect(boss.locator("#intervals-body tr")).to_have_count(1)
        expect(boss.locator("#chart-volume svg rect.bar-answered")).to_have_count(1)
        shot(boss, "supervisor-history")

        # /metrics parses as Prometheus text and counts the answered call.
        metrics = boss.request.get(base + "/metrics")
        assert metrics.status == 200
        families = {f.name: f for f in text_string_to_metric_families(metrics.text())}
        answered = [s.value for s in families["hotline_calls_today"].samples
                    if s.labels.get("tier") == "premium" and s.labels.get("outcome") == "answered"]
        assert answered == [1.0]

        # An agent cannot open the supervisor's pages.
        resp = agent.goto(base + "/supervisor")
        assert resp is not None and resp.status == 403
        expect(agent.locator("#error-message")).to_have_text("您没有权限打开此页面。")
        assert agent.request.get(base + "/supervisor/export.csv").status == 403
        assert agent.request.get(base + "/api/dashboard").status == 403


def test_login_errors_language_and_tablet_layout(services: Services, tmp_path: Path) -> None:
    chromium_or_skip()
    from playwright.sync_api import expect

    with in_process_flow(services, tmp_path, workers=0, extra=FAST_PAGES) as flow, live_server(flow.app) as base, \
            chromium() as browser:
        add_people(flow.svc, ["ann"])
        page = browser.new_context(viewport=TABLET, locale="zh-CN").new_page()
        page.goto(base + "/agent")
        expect(page).to_have_url(re.compile(r"/login\?next=/agent$"))
        log_in(page, base, "ann", "wrong-password")
        expect(page.locator("#login-error")).to_have_text("账号或密码不正确。")
        shot(page, "login-error")
        page.click("#lang-switch")
        expect(page.locator("h1")).to_have_text("Log in")
        log_in(page, base, "ann", password("ann"))
        expect(page).to_have_url(base + "/agent")
        expect(page.locator("#btn-available")).to_have_text("Available")
        page.click("#btn-away")
        expect(page.locator("#state")).to_have_attribute("data-state", "away", timeout=WAIT_MS)
        expect(page.locator("#state")).to_have_text("Away")
        # The page fits a tablet: nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, "agent-tablet-en")
        page.click("#logout")
        expect(page.locator("#login-info")).to_have_text("You have logged out.")

        # The dashboard fits a tablet too: its wide tables scroll inside their cards, the page does not.
        log_in(page, base, SUPERVISOR, password(SUPERVISOR))
        expect(page.locator('#figures-body td[data-tier="overall"][data-fig="waiting"]')).to_have_text(
            "0", timeout=WAIT_MS
        )
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, "supervisor-tablet-en")
