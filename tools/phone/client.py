"""Clients for `hotline call` and `hotline agent`: the simulator's control API, the hotline's JSON API, how a
terminal finds the simulator `hotline run` started (simulator/discovery.py), and how events read as lines."""
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

    def register_agent(self, identity: str, answer_after: float, talk_seconds: float) -> dict[str, Any]:
        """Make the Client identity answer after `answer_after` and talk `talk_seconds` (simulated seconds)."""
        return self.request("PUT", f"/_sim/agents/{urllib.parse.quote(identity, safe='')}",
                            {"answer_after": answer_after, "talk_seconds": talk_seconds})

    def agent_events(self, identity: str, after: int, wait: float) -> tuple[list[dict[str, Any]], int]:
        """dial.* events of that Client after seq `after` (a long poll), and the next `after`."""
        path = f"/_sim/agents/{urllib.parse.quote(identity, safe='')}/events?" + urllib.parse.urlencode(
            {"after": after, "wait": wait}
        )
        found = self.request("GET", path, timeout=wait + 10)
        return found["events"], found["last"]

    def end_leg(self, account_sid: str, leg_sid: str) -> None:
        """The agent hangs up their leg (Twilio's Call update, Status=completed)."""
        req = urllib.request.Request(f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Calls/{leg_sid}.json",
                                     data=b"Status=completed", method="POST", headers={"Authorization": self._auth})
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass  # the leg has ended already (400) or the simulator is gone: either way nobody is talking


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


def _who(endpoint: str) -> str:
    return endpoint.removeprefix("client:")


def describe(event: dict[str, Any], interactive: bool) -> str | None:
    """One transcript line for a call event (None: nothing the caller would notice)."""
    kind, party = event["kind"], event.get("party")
    if kind == "heard" and party != "whisper":  # the whisper is played to the agent, not the caller
        if event["verb"] == "say":
            return f"hotline: {event['text']}"
        if event["verb"] == "play":
            return f"[tones {event['text'][9:-1]}]" if event["text"].startswith("[digits") else "[hold music]"
    elif kind == "call.answered":
        return "[the hotline answers]"
    elif kind == "gather" and interactive and party == "main":
        return "[your turn: keys 0-9 * # or words, then Enter]"
    elif kind == "input":
        if "digits" in event:
            return f"you: {event['digits']}"
        if "speech" in event:
            return f'you (speaking): "{event["speech"]}"'
        return "you: (silence)" if party == "main" else None  # on hold, silence is just listening
    elif kind == "queue.joined":
        return "[holding in the queue]"
    elif kind == "queue.left":
        return f"[out of the queue: {event['result']}]"
    elif kind == "dial.ringing":
        return f"[ringing {_who(event['endpoint'])}]"
    elif kind == "dial.connected":
        return f"[connected to {_who(event['endpoint'])} ({event['endpoint']})]"
    elif kind == "dial.ended":
        return f"[{_who(event['endpoint'])}: {event['status']} after {event['duration']} s]"
    elif kind == "call.ended":
        return f"[call ended: {event['status']}]" + (
            f" simulator error: {event['error']}" if event.get("error") else ""
        )
    return None


def describe_caller(call: dict[str, Any]) -> str:
    """The routed caller's context on one line: who, number (masked), tier, category, verified, wait."""
    member = call.get("member")
    who = f"{member['name']} (uid {member['uid']})" if member else "not a known member"
    tier = f"{call['tier']} {(call.get('tier_label') or {}).get('zh', '')}".strip()
    category = f"{call.get('category') or '-'} {(call.get('category_label') or {}).get('zh', '')}".strip()
    waited = f", waited {call['waited_s']:g} s" if call.get("waited_s") is not None else ""
    callback = f", callback #{call['callback']}" if call.get("callback") else ""
    return (f"call from {call.get('number') or 'an unknown number'}: {who}, tier {tier}, category {category}, "
            f"{'verified' if call.get('verified') else 'not verified'}{waited}{callback}")
