"""The softphone in real headless Chromium, two agents in two browser contexts: a simulated premium caller rings in
agent1's page (the ring tone starts), agent1 accepts, holds, resumes and cold-transfers to agent2, whose page rings;
agent2 accepts, sees the caller's context and who transferred it, hangs up and wraps up with the context on screen.
Shipped timings (ring 20 s, wrap-up 15 s) on the simulator's scaled clock; every wait is on page state."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from callqueue.handling import transfers_of
from core.services import Services
from hotline.jobs import write_presence
from simulator import Script
from tests.support.browser import (
    DESK,
    Watch,
    chromium,
    chromium_or_skip,
    live_server,
    log_in,
    shot,
)
from tests.support.common import ALWAYS_OPEN
from tests.support.flow import in_process_flow, join_queue
from tests.support.hotline_api import records
from tests.support.people import PIN, SUPERVISOR, add_members, add_people, password

FAST_PAGES = ALWAYS_OPEN.read_text(encoding="utf-8") + "\n[console]\npoll_ms = 300\n"
WAIT_MS = 15_000
DAY_MS = 20_000  # the agent page reads its day every 15 s
SCALE = 0.5  # real seconds per simulated second: the shipped 20 s ring lasts 10 s here
SHIPPED = {"ring_timeout_s": 20, "wrap_up_s": 15, "announce_every_s": 30}


def ringing(page: Any) -> Any:
    return page.locator('#softphone[data-ringing="1"]')


def tone_playing(page: Any) -> bool:
    return bool(page.evaluate("window.hotlineRingTone.playing && window.hotlineRingTone.bursts > 0"))


def test_agent_accepts_holds_and_cold_transfers_a_premium_caller_to_a_second_agent_who_wraps_up(
    services: Services, tmp_path: Path
) -> None:
    chromium_or_skip()
    from playwright.sync_api import expect

    with in_process_flow(services, tmp_path, workers=1, scale=SCALE, extra=FAST_PAGES, **SHIPPED) as flow, \
            live_server(flow.app) as base, chromium() as browser:
        add_people(flow.svc, ["agent1", "agent2"])
        phones = add_members(flow.svc, flow.config, {"premium": 1})
        # The people at the two browser phones decide: a call rings until they click (no answer of its own).
        for login in ("agent1", "agent2"):
            flow.sim.add_agent(login, behaviour="manual", talk_seconds=None)

        # The one failed request the browser reports is the transfer to nobody (404), which the page shows.
        watch = Watch(base, expected_console=(r"responded with a status of 404",))
        pages = {}
        for login in ("agent1", "agent2"):
            # agent1 allows desktop notifications; agent2's browser keeps asking (headless: denied), without harm.
            context = browser.new_context(viewport=DESK, locale="zh-CN",
                                          permissions=["notifications"] if login == "agent1" else [])
            watch.context(context)
            context.add_init_script(NOTIFICATIONS_SPY)
            page = context.new_page()
            log_in(page, base, login, password(login))
            expect(page).to_have_url(base + "/agent")
            expect(page.locator("#state")).to_have_attribute("data-state", "offline", timeout=WAIT_MS)
            pages[login] = page
        one, two = pages["agent1"], pages["agent2"]
        one.click("#btn-available")  # a click: it also lets the page sound its ring (the autoplay rule)
        expect(one.locator("#state")).to_have_attribute("data-state", "available", timeout=WAIT_MS)
        expect(one.locator("#device-status")).to_have_attribute("data-device", "simulated", timeout=WAIT_MS)

        # A premium member calls, verifies and asks for an agent: agent1's page rings with the caller's context.
        call = join_queue(flow.sim, phones["premium"][0],
                          Script(answers=(PIN + "#", "0"), hangup_after_seconds=900), timeout=60)
        expect(ringing(one)).to_have_count(1, timeout=WAIT_MS)
        expect(one.locator("#call-phase")).to_have_text("来电接入中")
        expect(one.locator("#call-tier")).to_have_text("大会员")
        expect(one.locator("#call-verified")).to_have_text("已验证")
        expect(one.locator("#btn-accept")).to_be_visible()
        assert tone_playing(one), "the ring tone did not start"
        assert one.evaluate("window.__notes") == ["来电：大会员 | 综合咨询 · 已验证"]
        shot(one, "softphone-ringing")

        two.click("#btn-available")  # agent1 has the call: agent2 waits for nobody
        expect(two.locator("#state")).to_have_attribute("data-state", "available", timeout=WAIT_MS)

        one.click("#btn-accept")
        expect(one.locator("#call-phase")).to_have_attribute("data-phase", "connected", timeout=WAIT_MS)
        expect(ringing(one)).to_have_count(0)
        assert not one.evaluate("window.hotlineRingTone.playing"), "the ring tone goes on after accepting"
        expect(one.locator("#state")).to_have_attribute("data-state", "on_call")

        expect(one.locator("#btn-hold")).to_be_enabled()  # the caller is in the conference: there is a call to hold
        one.click("#btn-hold")
        expect(one.locator("#call-phase")).to_have_attribute("data-phase", "held", timeout=WAIT_MS)
        expect(one.locator("#btn-hold")).to_have_text("恢复通话")
        shot(one, "softphone-held")
        one.click("#btn-hold")
        expect(one.locator("#call-phase")).to_have_attribute("data-phase", "connected", timeout=WAIT_MS)

        # A transfer to nobody is refused with the API's words; the call view stays.
        one.fill("#transfer-to", "nobody")
        one.click("#btn-transfer")
        expect(one.locator("#call-error")).to_be_visible(timeout=WAIT_MS)
        expect(one.locator("#call-error")).not_to_have_text("")
        expect(one.locator("#call-phase")).to_have_attribute("data-phase", "connected")
        expect(one.locator("#call-tier")).to_have_text("大会员")

        one.fill("#transfer-to", "agent2")
        one.select_option("#transfer-mode", "cold")
        one.click("#btn-transfer")
        expect(ringing(two)).to_have_count(1, timeout=WAIT_MS)
        expect(two.locator("#call-note")).to_have_text("agent1 转来的来电")
        assert tone_playing(two), "the ring tone did not start for the transfer"
        assert two.evaluate("window.__notes") == []  # no permission: no notification, and no error either

        # agent1 is in wrap-up at once, the caller's context still on screen.
        expect(one.locator("#state")).to_have_attribute("data-state", "wrap_up", timeout=WAIT_MS)
        expect(one.locator("#call-phase")).to_have_attribute("data-phase", "wrap_up")
        expect(one.locator("#call-tier")).to_have_text("大会员")
        expect(one.locator("#wrapup-card")).to_be_visible()

        two.click("#btn-accept")
        expect(two.locator("#call-phase")).to_have_attribute("data-phase", "connected", timeout=WAIT_MS)
        expect(two.locator("#call-note")).to_have_text("由 agent1 转来")
        expect(two.locator("#call-member")).to_contain_text("member 50001")
        expect(two.locator("#call-tier")).to_have_text("大会员")
        expect(two.locator("#call-category")).to_have_text("综合咨询")
        expect(two.locator("#call-agents")).to_have_text("agent1 → agent2")
        shot(two, "softphone-transferred")
        two.click("#btn-mute")
        expect(two.locator("#call-muted")).to_be_visible(timeout=WAIT_MS)
        expect(two.locator("#btn-mute")).to_have_text("取消静音")
        two.click("#btn-mute")
        expect(two.locator("#call-muted")).to_be_hidden(timeout=WAIT_MS)

        one.select_option("#wrapup-disposition", "escalated")
        one.click("#wrapup-save")
        expect(one.locator("#wrapup-result")).to_have_text("已保存。", timeout=WAIT_MS)

        two.click("#btn-hangup")
        expect(two.locator("#state")).to_have_attribute("data-state", "wrap_up", timeout=WAIT_MS)
        expect(two.locator("#call-phase")).to_have_attribute("data-phase", "wrap_up")
        expect(two.locator("#call-member")).to_contain_text("member 50001")
        expect(two.locator("#wrapup-left")).to_have_text(re.compile(r"剩余 \d+ 秒"))
        left = seconds_left(two)
        two.click("#wrapup-extend")
        two.wait_for_function(SECONDS_LEFT_ABOVE, arg=left + 20, timeout=WAIT_MS)  # 30 s more
        shot(two, "softphone-wrap-up")
        two.select_option("#wrapup-disposition", "resolved")
        two.fill("#wrapup-notes", "转接后已解决")
        two.click("#wrapup-save")
        expect(two.locator("#state")).to_have_attribute("data-state", "available", timeout=WAIT_MS)
        call.join(WAIT_MS / 1000)

        # What the product promises of the call record: both agents, the hold, one transfer, agent2's wrap-up.
        rec = records(flow.svc)[call.sid]
        assert (rec.outcome, rec.agents, rec.disposition, rec.notes) == ("answered", "agent1,agent2", "resolved",
                                                                         "转接后已解决")
        assert rec.hold_count >= 1 and rec.hold_s > 0 and rec.transfers == 1
        with flow.svc.sessions() as db:
            moves = [(t.from_agent, t.to_target, t.mode, t.result) for t in transfers_of(db, call.sid)]
        assert moves == [("agent1", "agent2", "cold", "completed")]

        # The worker's sweep writes the day's state changes (as `hotline cron` has it every 5 s): agent2 sees theirs,
        # a supervisor everyone's, the agents table with each call's state. No page loaded anything from elsewhere.
        assert write_presence(flow.svc) > 0
        expect(two.locator('#presence-body tr[data-to="on_call"]')).not_to_have_count(0, timeout=DAY_MS)
        boss = watch.context(browser.new_context(viewport=DESK, locale="zh-CN"))
        sup = boss.new_page()
        log_in(sup, base, SUPERVISOR, password(SUPERVISOR))
        expect(sup.locator('#presence-body tr[data-agent="agent1"][data-to="wrap_up"]')).not_to_have_count(
            0, timeout=WAIT_MS)
        expect(sup.locator('#agents-body tr[data-agent="agent2"] [data-state]')).to_have_attribute(
            "data-state", "available")
        shot(sup, "supervisor-presence")

        # The supervisor's CSV has the call with both agents, the hold and the transfer; the history page counts them.
        rows = csv.DictReader(io.StringIO(sup.request.get(base + "/supervisor/export.csv").text().lstrip("\ufeff")))
        row = next(r for r in rows if r["call_sid"] == call.sid)
        assert (row["agents"], row["transfers"], row["transfer_log"]) == ("agent1,agent2", "1",
                                                                          "agent1>agent2:cold:completed")
        assert int(row["hold_count"]) >= 1 and float(row["hold_s"]) > 0 and row["wrap_up_expired"] == "no"
        sup.goto(base + "/supervisor/history")
        expect(sup.locator("body")).to_have_attribute("data-loaded", "history", timeout=WAIT_MS)
        expect(sup.locator("#handling-transferred")).to_have_text("1")
        expect(sup.locator("#handling-held")).to_have_text("1")
        watch.assert_clean()


SECONDS_LEFT_ABOVE = "(min) => parseInt(document.getElementById('wrapup-left').textContent.match(/\\d+/)[0]) > min"


def seconds_left(page: Any) -> int:
    return int(re.search(r"\d+", page.locator("#wrapup-left").inner_text()).group(0))


# Records every desktop notification the page makes (title | body), then makes it as the browser would.
NOTIFICATIONS_SPY = """
window.__notes = [];
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push(title + " | " + ((options && options.body) || ""));
    }
  };
}
"""
