"""Real headless Chromium for the console tests: the app served over HTTP, a browser, screenshots kept as artefacts,
and a watch on every page: what it loads (from this origin only) and the script errors it raises."""
from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from tests.support.common import ROOT

# The flags Chromium needs here: as root (no sandbox), no GPU, and no calls home on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
DESK = {"width": 1280, "height": 800}
TABLET = {"width": 768, "height": 1024}


def chromium_or_skip() -> str:
    """The Chromium binary; the test is skipped, saying why, on a machine without one."""
    path = os.environ.get("HOTLINE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path and os.environ.get("HOTLINE_REQUIRE_BROWSER"):
        pytest.fail("HOTLINE_REQUIRE_BROWSER is set (as in CI) but there is no Chromium")
    if not path:
        pytest.skip("browser test skipped: no Chromium on this machine (apt-get install chromium chromium-driver, "
                    "as .ci/run does, or set HOTLINE_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401 (only whether it imports: the browser is launched in chromium())
    except ImportError:
        pytest.skip("browser test skipped: the playwright package is not installed (make install)")
    return path


def artefacts() -> Path:
    """Where screenshots go: $HOTLINE_ARTEFACTS, else var/artefacts (kept after the run, ignored by git)."""
    folder = Path(os.environ.get("HOTLINE_ARTEFACTS") or ROOT / "var" / "artefacts") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """The app on a real port (threaded, like gunicorn's gthread workers); its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (Debian's binary: Playwright downloads nothing)."""
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, base: str, login: str, password: str) -> None:
    """Fill in the login form as a person would."""
    page.goto(base + "/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#submit")


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot in the artefacts folder."""
    path = artefacts() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000, f"{name}: the screenshot is empty"
    return path


class Watch:
    """Every request and WebSocket of the browser contexts it watches, and every script error of their pages.

    `assert_clean` fails on a URL outside `base`'s origin (other than the `allowed_sockets` WebSocket URL prefixes)
    and on any uncaught script error or console error (but those matching an `expected_console` pattern).
    """

    def __init__(self, base: str, allowed_sockets: tuple[str, ...] = (),
                 expected_console: tuple[str, ...] = ()) -> None:
        self.origin = _origin(base)
        self.allowed_sockets = allowed_sockets
        self.expected_console = [re.compile(p) for p in expected_console]
        self.urls: list[str] = []
        self.sockets: list[str] = []
        self.errors: list[str] = []

    def context(self, context: Any) -> Any:
        """Watch a browser context (its pages to come)."""
        context.on("request", lambda req: self.urls.append(req.url))
        context.on("page", self.page)
        for page in context.pages:
            self.page(page)
        return context

    def page(self, page: Any) -> None:
        """Watch one page: its WebSockets, uncaught errors and console errors."""
        page.on("websocket", lambda ws: self.sockets.append(ws.url))
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: self.errors.append(f"{page.url}: console {msg.text}")
                if msg.type == "error" and not any(p.search(msg.text) for p in self.expected_console) else None)

    def foreign(self) -> list[str]:
        """URLs requested from another origin (data: and blob: URLs are the page's own)."""
        own = [u for u in self.urls if not u.startswith(("data:", "blob:"))]
        sockets = [u for u in self.sockets if not any(u.startswith(prefix) for prefix in self.allowed_sockets)]
        return [u for u in own if _origin(u) != self.origin] + [u for u in sockets if _origin(u) != self.origin]

    def assert_clean(self) -> None:
        """Nothing from another origin, no script error; and something was watched at all."""
        assert self.urls, "no request was recorded: the watch saw nothing"
        assert self.foreign() == [], f"requests to another origin than {self.origin}: {self.foreign()}"
        assert self.errors == [], f"script errors: {self.errors}"


def _origin(url: str) -> str:
    """scheme://host:port, a WebSocket's counted as the page's own scheme (ws is http's, wss https's)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"
