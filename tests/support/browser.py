"""Real headless Chromium for the console tests: the app served over HTTP, a browser, screenshots kept as artefacts."""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
