"""Clients for `hotline call` and `hotline agent`: the simulator's control API, the hotline's JSON API, and how a
terminal finds the simulator `hotline run` started (simulator/discovery.py). How events read: transcript.py."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.discovery import DISCOVERY, discovery_path, read_discovery


class PhoneError(Exception):
    """Something that stops a terminal phone before or during a call: one line for the user, and an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class HttpError(PhoneError):
    """An answer other than 2xx: its status and (JSON) body."""

    def __init__(self, url: str, status: int, body: Any) -> None:
        message = body.get("message") or body.get("error") if isinstance(body, dict) else None
        super().__init__(f"{url} answered {status}: {message or body}")
        self.status, self.body = status, body


class JsonClient:
    """JSON over HTTP with Basic authentication (urllib: nothing to install, nothing kept between requests)."""

    def __init__(self, base_url: str, user: str, password: str, what: str) -> None:
        self.base_url, self.what = base_url.rstrip("/"), what
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        """The decoded JSON answer; HttpError for a non-2xx answer, PhoneError when nothing answers."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": self._auth})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                decoded: Any = json.loads(raw)
            except ValueError:
                decoded = raw.decode(errors="replace")[:200]
            raise HttpError(url, exc.code, decoded) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PhoneError(f"{self.what} at {self.base_url} does not answer ({reason})") from None


class SimulatorClient(JsonClient):
    """The simulator's control API (simulator/softphone.py) and the one Twilio REST call an agent needs."""

    def about(self) -> dict[str, Any]:
        """The simulator's account, number, hotline URL and time scale (also proves the credentials)."""
        return self.request("GET", "/_sim")

    def place_call(
        self, from_: str, to: str | None, hotline_url: str | None, answers: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Start a call answered from here; returns {"sid", "from", "to", "url"}."""
        return self.request(
            "POST", "/_sim/calls", {"from": from_, "to": to, "hotline_url": hotline_url, "answers": answers}
        )

    def call_events(self, sid: str, after: int, wait: float = 20.0) -> tuple[list[dict[str, Any]], int]:
        """The call's events after seq `after` (a long poll of up to `wait` seconds), and the next `after`."""
        path = f"/_sim/calls/{sid}/events?" + urllib.parse.urlencode({"after": after, "wait": wait})
        found = self.request("GET", path, timeout=wait + 10)
        return found["events"], found["last"]

    def send(self, sid: str, answer: dict[str, Any]) -> None:
        """Keys, speech or silence for the call's next <Gather>."""
        self.request("POST", f"/_sim/calls/{sid}/input", answer)

    def hang_up(self, sid: str) -> None:
        """The caller hangs up."""
        self.request("POST", f"/_sim/calls/{sid}/hangup", {})

    def register_agent(self, identity: str, answer_after: float, talk_seconds: float | None,
                       behaviour: str = "answer") -> dict[str, Any]:
        """The Client identity's device: it answers after `answer_after` and talks `talk_seconds` (simulated
        seconds), or with behaviour "manual" rings until accept() or decline(); returns {"endpoint", "seq", …}."""
        return self.request("PUT", f"/_sim/agents/{urllib.parse.quote(identity, safe='')}",
                            {"answer_after": answer_after, "talk_seconds": talk_seconds, "behaviour": behaviour})

    def agent_events(self, identity: str, after: int, wait: float) -> tuple[list[dict[str, Any]], int]:
        """device.*, conference.* and met events of that Client's calls after seq `after` (a long poll), and the
        next `after`."""
        path = f"/_sim/agents/{urllib.parse.quote(identity, safe='')}/events?" + urllib.parse.urlencode(
            {"after": after, "wait": wait}
        )
        found = self.request("GET", path, timeout=wait + 10)
        return found["events"], found["last"]

    def device(self, identity: str, lever: str) -> str | None:
        """The person at the device: "accept" or "decline" the ringing call, "hangup" the answered one; the CallSid
        acted on, None when there was nothing to act on (404)."""
        try:
            done = self.request("POST", f"/_sim/agents/{urllib.parse.quote(identity, safe='')}/{lever}", {})
        except HttpError as exc:
            if exc.status == 404:
                return None
            raise
        return str(done["call_sid"])


class HotlineApi(JsonClient):
    """The hotline's JSON API as one agent (HTTP Basic with their login)."""

    def me(self) -> dict[str, Any]:
        """GET /api/agents/me: state and the routed caller's context."""
        return self.request("GET", "/api/agents/me")

    def set_status(self, status: str) -> dict[str, Any]:
        """PUT /api/agents/me/status (409 while on a call)."""
        return self.request("PUT", "/api/agents/me/status", {"status": status})

    def wrap_up(self, disposition: str, notes: str = "") -> dict[str, Any]:
        """POST /api/agents/me/wrapup (409 while the call is still going)."""
        return self.request("POST", "/api/agents/me/wrapup", {"disposition": disposition, "notes": notes})

    def heartbeat(self, device: str = "registered") -> dict[str, Any]:
        """POST /api/agents/me/heartbeat: this terminal (and its device) is still there."""
        return self.request("POST", "/api/agents/me/heartbeat", {"device": device})

    def control(self, call_sid: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /api/calls/<sid>/<action> (hold, mute, hangup, transfer, transfer/complete, transfer/cancel): the
        agent view; HttpError with the refusal (409 and its "reason") otherwise."""
        return self.request("POST", f"/api/calls/{urllib.parse.quote(call_sid, safe='')}/{action}", body or {})


@dataclass(frozen=True)
class Located:
    """Where the running hotline's simulator is, and how to talk to it."""

    sim: SimulatorClient
    account_sid: str
    hotline_url: str
    path: Path


def locate(env: Mapping[str, str] | None = None) -> Located:
    """The simulator `hotline run` started for this data dir (HOTLINE_DATA_DIR); PhoneError (exit 2) if none."""
    from core.schema import ConfigError
    from core.settings import resolve, settings_from_env

    try:
        settings = settings_from_env(env)
    except ConfigError as exc:
        raise PhoneError("; ".join(exc.errors), 2) from None
    if not settings.offline:
        raise PhoneError("this needs the offline Twilio simulator, and a real Twilio account is configured "
                         "(TWILIO_ACCOUNT_SID); call the real number instead", 2)
    path = discovery_path(settings.data_dir.resolve())
    try:
        found = read_discovery(path)
        api_url, account_sid, hotline_url = found["api_url"], found["account_sid"], found["hotline_url"]
    except FileNotFoundError:
        raise PhoneError(f"no hotline is running with data dir {settings.data_dir.resolve()} ({DISCOVERY} not found): "
                         "start one with `make run` or `hotline run` (same HOTLINE_DATA_DIR)", 2) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise PhoneError(f"{path} is not what `hotline run` writes ({exc!r})", 2) from None
    token = resolve(settings).twilio_auth_token  # the local secret in the data dir, or TWILIO_AUTH_TOKEN: as the server
    return Located(SimulatorClient(api_url, account_sid, token, "the simulator"), account_sid, hotline_url, path)
