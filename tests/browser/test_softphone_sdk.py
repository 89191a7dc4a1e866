"""Twilio's Voice JavaScript SDK as the agents' browser phone: the pinned, vendored bundle matches its recorded
checksums; with a real account's settings (and no network) the agent page loads it from this site, `Twilio.Device`
is defined and registers towards Twilio's signalling only; offline no page loads it, and no page loads anything
from another origin."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from core.services import Services
from hotline.app import create_app
from tests.support.browser import DESK, Watch, chromium, chromium_or_skip, live_server, log_in
from tests.support.common import ROOT
from tests.support.people import SUPERVISOR, add_people, password

VENDOR = ROOT / "console" / "static" / "vendor"
SDK, LICENCE = VENDOR / "twilio-voice-sdk.min.js", VENDOR / "twilio-voice-sdk.LICENSE.md"
SIGNALLING = "wss://voice-js.roaming.twilio.com/signal"
WAIT_MS = 15_000
UNREGISTERED_MS = 45_000  # the SDK's 15 s grace, then the next heartbeat (every 10 s) and a poll of the page


def make_var(name: str) -> str:
    found = re.search(rf"^{name}\s*:=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert found, f"the Makefile sets no {name}"
    return found.group(1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_vendored_sdk_is_the_pinned_version_with_its_licence() -> None:
    version, digest, licence_digest = make_var("SDK_VERSION"), make_var("SDK_SHA256"), make_var("SDK_LICENSE_SHA256")
    assert re.fullmatch(r"2\.\d+\.\d+", version), version  # an exact 2.x release, no range
    assert sha256(SDK) == digest and sha256(LICENCE) == licence_digest
    assert f'RELEASE_VERSION="{version}"' in SDK.read_text(encoding="utf-8")
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    assert f"| version | {version} |" in readme and digest in readme and licence_digest in readme
    assert "Apache License, Version 2.0" in LICENCE.read_text(encoding="utf-8")


def test_with_a_real_account_the_agent_page_loads_the_pinned_sdk_and_registers_a_device(
    real_app: Any, services: Services
) -> None:
    chromium_or_skip()
    from playwright.sync_api import expect

    add_people(services, ["ann"])
    with live_server(real_app) as base, chromium() as browser:
        context = browser.new_context(viewport=DESK, locale="zh-CN")
        # The SDK logs each closed signalling socket as an error: expected here, nothing else is.
        watch = Watch(base, allowed_sockets=(SIGNALLING,), expected_console=(r"^\[TwilioVoice\]",))
        watch.context(context)
        signalling: list[str] = []

        def twilio_away(ws: Any) -> None:
            signalling.append(ws.url)
            ws.close(code=1011, reason="no network in this test")  # Twilio is never reached

        context.route_web_socket(re.compile(r"^wss?://"), twilio_away)
        page = context.new_page()
        log_in(page, base, "ann", password("ann"))
        expect(page).to_have_url(base + "/agent")
        page.click("#btn-away")  # TEMP
        page.wait_for_function("() => window.Twilio !== undefined && typeof window.Twilio.Device === 'function'",
                               timeout=WAIT_MS)
        assert page.evaluate("Twilio.Device.version") == make_var("SDK_VERSION")
        assert [u for u in watch.urls if "twilio-voice-sdk" in u] == [base + "/assets/vendor/twilio-voice-sdk.min.js"]

        # The Device was built with a token from the app and tries to register: the signalling socket is the only
        # other origin the page reaches. It cannot (no network): the page says so, and once the grace period is
        # over its heartbeat does too, so the hotline sets the agent offline and offers them no call.
        expect(page.locator("#device-status")).to_have_attribute("data-device", "registering", timeout=WAIT_MS)
        page.click("#btn-available")
        expect(page.locator("#state-reason")).to_have_attribute("data-reason", "device_unregistered",
                                                                 timeout=UNREGISTERED_MS)
        expect(page.locator("#state")).to_have_attribute("data-state", "offline")
        expect(page.locator("#state-reason")).to_have_text("系统设置：电话设备未注册")
        expect(page.locator("#device-status")).to_have_attribute("data-device", "unregistered")
        assert signalling and all(u.startswith(SIGNALLING) for u in signalling), signalling
        watch.assert_clean()


def test_offline_no_page_loads_the_sdk_or_anything_from_another_origin(services: Services) -> None:
    chromium_or_skip()
    from playwright.sync_api import expect

    add_people(services, ["ann"])
    with live_server(create_app(services=services)) as base, chromium() as browser:
        watch = Watch(base)
        for login, paths in (("ann", ["/agent"]), (SUPERVISOR, ["/supervisor", "/supervisor/history", "/agent"])):
            page = watch.context(browser.new_context(viewport=DESK, locale="zh-CN")).new_page()
            log_in(page, base, login, password(login))
            for path in paths:
                page.goto(base + path)
                expect(page.locator("#store-banner")).to_have_count(1)
                if path == "/agent":
                    expect(page.locator("#state")).not_to_have_attribute("data-state", "", timeout=WAIT_MS)
                    assert page.evaluate("typeof window.Twilio") == "undefined"
                if path == "/supervisor/history":
                    expect(page.locator("body")).to_have_attribute("data-loaded", "history", timeout=WAIT_MS)
        assert not [u for u in watch.urls if "twilio-voice-sdk" in u], "an offline page loaded the SDK"
        assert {u.split("?")[0] for u in watch.urls} >= {base + "/login", base + "/agent", base + "/supervisor"}
        watch.assert_clean()
