"""Twilio's own API description as a peer: every REST request the gateway makes must be one Twilio's spec accepts.
(A little over 300 lines: starting Prism and the table of every gateway request belong together.)

Prism (npm @stoplight/prism-cli) mocks Twilio's REST API from `twilio_api_v2010.json`, the OpenAPI description
Twilio ships in npm @twilio/cli-core; both are pinned in tests/prism/package.json (installed by `make test`
with `npm ci` when node is present). Prism always refuses a request its spec does not allow (422, with the
reasons); `--errors` also turns a mocked answer that breaks the spec into a 500, which the test tells apart
(those are Twilio's examples disagreeing with Twilio's schemas, not our requests).

One adjustment is made to a copy of the spec: every array property of a form body gets the explicit encoding
`style: form, explode: true`. That is what OpenAPI 3 says such a property means when no encoding is given
(and how twilio-python sends StatusCallbackEvent: one field per value), but Prism 5 only turns repeated form
fields into an array when the encoding is written out. Prism keeps the last of repeated fields, so the test
also checks every StatusCallbackEvent value itself against the values the spec documents.

Without node or the npm packages the test is skipped with the reason; with HOTLINE_REQUIRE_PRISM=1 (CI) it fails.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.support.common import ROOT
from tests.support.processes import free_port
from webhooks.outbound import gateway as gateway_module
from webhooks.outbound.gateway import GatewayError, TwilioGateway

PRISM_DIR = ROOT / "tests" / "prism"
PRISM = PRISM_DIR / "node_modules" / "@stoplight" / "prism-cli" / "dist" / "index.js"
SPEC = PRISM_DIR / "node_modules" / "@twilio" / "cli-core" / "src" / "services" / "twilio-api" / "twilio_api_v2010.json"
REQUIRED = os.environ.get("HOTLINE_REQUIRE_PRISM") == "1"
START_S = 90.0  # Prism parses a 1.9 MB description first: a few seconds, more on a busy machine

ACCOUNT = "AC" + "0123456789abcdef" * 2
PUBLIC = "https://hotline.example.com"
CALL = "CA" + "1" * 32
QUEUE = "QU" + "2" * 32
CONFERENCE = "CF" + "3" * 32
LEG = "CA" + "4" * 32
MEMBER = "+8613800000001"
OURS = "+15005550006"


def missing() -> str | None:
    """Why Prism cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (Debian: apt-get install nodejs npm)"
    if not PRISM.is_file() or not SPEC.is_file():
        return f"the npm packages are not installed in {PRISM_DIR.relative_to(ROOT)} (run: npm ci --prefix tests/prism)"
    return None


def patched_spec(target: Path) -> int:
    """Twilio's description with the OpenAPI default encoding written out for array form fields; how many."""
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    n = 0
    for item in doc["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                if media != "application/x-www-form-urlencoded":
                    continue
                for name, prop in content.get("schema", {}).get("properties", {}).items():
                    if prop.get("type") == "array":
                        content.setdefault("encoding", {}).setdefault(name, {"style": "form", "explode": True})
                        n += 1
    target.write_text(json.dumps(doc), encoding="utf-8")
    return n


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prism mock of Twilio's API on a free local port, for this module."""
    reason = missing()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"HOTLINE_REQUIRE_PRISM=1 but Prism cannot run: {reason}")
        print(f"\nPrism tests skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("prism")
    spec = tmp / "twilio_api_v2010.json"
    assert patched_spec(spec) >= 1
    port = free_port()
    log = (tmp / "prism.log").open("w")
    proc = subprocess.Popen(
        [
            shutil.which("node") or "node",
            str(PRISM),
            "mock",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--errors",
            str(spec),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=PRISM_DIR,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_S
        while not listening(port):
            try:
                proc.wait(timeout=0.2)  # waiting on the process is the pause between two looks at the port
            except subprocess.TimeoutExpired:
                pass
            else:
                pytest.fail(
                    f"Prism exited with {proc.returncode} before listening:\n{(tmp / 'prism.log').read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Prism did not listen on port {port} within {START_S:.0f} s:\n"
                    f"{(tmp / 'prism.log').read_text()[-3000:]}"
                )
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


# --- what went over the wire ---------------------------------------------------------------------

@dataclass
class Exchange:
    method: str
    path: str
    form: list[tuple[str, str]]
    query: list[tuple[str, str]]
    status: int
    violations: list[dict[str, Any]] = field(default_factory=list)
    body: str = ""

    def request_violations(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if (v.get("location") or [""])[0] != "response"]

    def response_violations(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if (v.get("location") or [""])[0] == "response"]

    def __str__(self) -> str:
        return (f"{self.method} {self.path} form={self.form} query={self.query} -> {self.status} "
                f"violations={json.dumps(self.violations, ensure_ascii=False)}")


def violations_of(resp: requests.Response) -> list[dict[str, Any]]:
    """Prism's verdicts: the sl-violations header, or the problem document of a refusal (422) or a 500."""
    found: list[dict[str, Any]] = []
    header = resp.headers.get("sl-violations")
    if header:
        found.extend(json.loads(header))
    if "problem+json" in resp.headers.get("content-type", ""):
        problem = resp.json()
        found.extend(problem.get("validation") or [])
        if not problem.get("validation") and resp.status_code >= 400:
            found.append({"location": ["request"], "message": f"{problem.get('title')}: {problem.get('detail')}"})
    unique = {json.dumps(v, sort_keys=True): v for v in found}  # a 500 repeats the header's list in its body
    return list(unique.values())


def make_gateway(prism: str, exchanges: list[Exchange]) -> TwilioGateway:
    """The project's gateway pointed at Prism the way the project points it anywhere (TWILIO_API_URL), one try per
    request."""
    kwargs: dict[str, Any] = {}
    params = inspect.signature(TwilioGateway).parameters
    if "policies" in params and hasattr(gateway_module, "RetryPolicy") and hasattr(gateway_module, "POLICIES"):
        kwargs["policies"] = {k: gateway_module.RetryPolicy(attempts=1) for k in gateway_module.POLICIES}
    gw = TwilioGateway(ACCOUNT, "test-auth-token", api_url=prism, from_number=OURS, timeout_s=20.0, **kwargs)

    def record(resp: requests.Response, *args: Any, **kw: Any) -> requests.Response:
        req = resp.request
        body = req.body.decode() if isinstance(req.body, bytes) else (req.body or "")
        exchanges.append(
            Exchange(
                req.method or "",
                urlsplit(req.url or "").path,
                parse_qsl(body, keep_blank_values=True),
                parse_qsl(urlsplit(req.url or "").query, keep_blank_values=True),
                resp.status_code,
                violations_of(resp),
                resp.text[:2000],
            )
        )
        return resp

    # requests' response hook, through twilio's own TwilioHttpClient.request_hooks: sees each answer unchanged.
    gw.client.http_client.request_hooks = {"response": [record]}
    return gw


# Every public method of the gateway, with the arguments the hotline gives it. A new method fails
# test_every_gateway_method_is_checked until a case is added here.
CASES: dict[str, list[Callable[[TwilioGateway], Any]]] = {
    "create_call": [
        lambda gw: gw.create_call(
            MEMBER,
            f"{PUBLIC}/voice/callback/answer?ticket=7&n=1",
            f"{PUBLIC}/voice/callback/status?ticket=7&n=1",
            timeout_s=25,
        ),
        # an agent's leg (webhooks/outbound/legs.py): a browser's client identity, only its end reported
        lambda gw: gw.create_call(
            "client:ann", f"{PUBLIC}/voice/agent/answer?caller={CALL}&agent=ann&offer=1",
            f"{PUBLIC}/voice/agent/status?caller={CALL}&agent=ann&offer=1", timeout_s=20, events=("completed",),
        ),
    ],
    "redirect_call": [
        lambda gw: gw.redirect_call(CALL, f"{PUBLIC}/voice/connect?agent=ann"),
        lambda gw: gw.redirect_call(CALL, f"{PUBLIC}/voice/connect?agent=ann", queue_sid=QUEUE),
        lambda gw: gw.redirect_call(CALL, f"{PUBLIC}/voice/connect?agent=ann", queue_name="hotline-1"),
    ],
    "conference_sid": [lambda gw: gw.conference_sid("hl-" + CALL)],
    "update_participant": [
        lambda gw: gw.update_participant(CONFERENCE, CALL, hold=True, hold_url=f"{PUBLIC}/voice/conference/hold"),
        lambda gw: gw.update_participant(CONFERENCE, CALL, hold=False),
        lambda gw: gw.update_participant(CONFERENCE, LEG, muted=True),
        lambda gw: gw.update_participant(CONFERENCE, LEG, end_conference_on_exit=False),
    ],
    "hang_up": [lambda gw: gw.hang_up(CALL)],
    "send_sms": [lambda gw: gw.send_sms(MEMBER, "您的回拨工单号是 12345678。Your callback ticket is 12345678.")],
    "live_call_sid": [lambda gw: gw.live_call_sid(MEMBER)],
    "live_call_to": [lambda gw: gw.live_call_to(MEMBER)],
    "in_queue": [lambda gw: gw.in_queue(QUEUE, CALL)],
    "ensure_queue": [lambda gw: gw.ensure_queue("hotline-1", 1000)],
}
# Reads whose mocked answer is Twilio's list example: it breaks Twilio's own schema (relative page URIs under
# `format: uri`), so with --errors Prism answers 500 after accepting the request.
READS = {"live_call_sid", "live_call_to", "ensure_queue", "in_queue", "conference_sid"}


def public_methods() -> set[str]:
    return {name for name, fn in inspect.getmembers(TwilioGateway, inspect.isfunction) if not name.startswith("_")}


def test_every_gateway_method_is_checked() -> None:
    unknown = public_methods() - set(CASES)
    assert not unknown, f"gateway methods with no spec case in tests/fuzz/test_twilio_spec.py CASES: {sorted(unknown)}"
    assert set(CASES) - public_methods() == set(), "cases for methods the gateway no longer has"


def documented_events() -> set[str]:
    """StatusCallbackEvent values the spec documents (in the property's description)."""
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    prop = doc["paths"]["/2010-04-01/Accounts/{AccountSid}/Calls.json"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"]["schema"]["properties"]["StatusCallbackEvent"]
    words = set(re.findall(r"`([a-z-]+)`", prop["description"].split("Can be:")[1].split(".")[0]))
    assert {"initiated", "completed"} <= words, prop["description"]
    return words


@pytest.mark.parametrize("method", sorted(CASES))
def test_every_request_the_gateway_makes_is_accepted_by_twilios_spec(prism: str, method: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    notes = []
    for case in CASES[method]:
        exchanges: list[Exchange] = []
        gw = make_gateway(prism, exchanges)
        try:
            case(gw)
            error = None
        except GatewayError as exc:
            error = exc
        assert exchanges, f"{method}: no request reached Prism ({error})"
        for ex in exchanges:
            assert not ex.request_violations(), f"{method}: Twilio's spec refuses the request:\n{ex}"
            assert (
                ex.status < 400
                or (ex.status == 500 and ex.response_violations())
                or (method == "in_queue" and ex.status == 404)
            ), f"{method}: Prism refused it:\n{ex}\n{ex.body}"
            if ex.method == "POST":
                assert 200 <= ex.status < 300 and not ex.violations, f"{method}: not a clean 2xx:\n{ex}\n{ex.body}"
            elif ex.response_violations():
                notes.append(f"{ex.method} {ex.path}: request accepted; Twilio's example answer breaks its schema: "
                             + "; ".join(v.get("message", "") for v in ex.response_violations()))
        if method not in READS:
            assert error is None, f"{method}: the gateway failed against Twilio's spec: {error}"
        else:
            assert error is None or any(ex.response_violations() for ex in exchanges), f"{method}: {error}"
        if method == "create_call":
            sent = [v for k, v in exchanges[0].form if k == "StatusCallbackEvent"]
            assert sent and set(sent) <= documented_events(), (
                f"StatusCallbackEvent values {sent} not all in {documented_events()}"
            )
            assert dict(exchanges[0].form)["Url"].startswith(PUBLIC) and dict(exchanges[0].form)["Method"] == "POST"
    if notes:
        with capsys.disabled():
            print("\n[prism] " + "\n[prism] ".join(sorted(set(notes))))


def test_prism_refuses_what_twilios_spec_does_not_allow(prism: str) -> None:
    """The peer is no rubber stamp: a call without To, and a redirect with an unknown Method, are refused."""
    auth = (ACCOUNT, "test-auth-token")
    base = f"{prism}/2010-04-01/Accounts/{ACCOUNT}"
    no_to = requests.post(f"{base}/Calls.json", data={"From": OURS, "Url": f"{PUBLIC}/voice/x"}, auth=auth, timeout=20)
    assert no_to.status_code == 422 and any("To" in v.get("message", "") for v in violations_of(no_to)), no_to.text
    bad_method = requests.post(
        f"{base}/Calls/{CALL}.json", data={"Url": f"{PUBLIC}/voice/x", "Method": "FETCH"}, auth=auth, timeout=20
    )
    assert bad_method.status_code == 422 and violations_of(bad_method), bad_method.text
    unauthenticated = requests.post(f"{base}/Calls/{CALL}.json", data={"Status": "completed"}, timeout=20)
    assert unauthenticated.status_code == 401
