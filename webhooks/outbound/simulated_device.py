"""Offline only (`make run`, no Twilio account): the agent's device is the simulator's, driven from the console.

The simulator's control API (simulator/softphone.py, not a Twilio API) answers at the same address as its REST API,
with the same credentials. The browser talks only to the app; the app tells the simulator that the agent's device
exists (behaviour "manual": it rings until the person decides) and what the person clicked.
"""
from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from urllib.parse import quote

from core.logs import log_event
from core.services import Services
from webhooks.outbound.retry import TWILIO_API

log = logging.getLogger("hotline.simdevice")

CONTROL = "/_sim/agents/"
TIMEOUT_S = 5.0


class DeviceError(Exception):
    """The simulator did not do it: `status` 404 when nothing rings (or is answered) for the identity."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _request(svc: Services, method: str, identity: str, action: str = "", body: object = None) -> None:
    s = svc.settings
    url = s.twilio_api_url + CONTROL + quote(identity, safe="") + (f"/{action}" if action else "")
    auth = base64.b64encode(f"{s.twilio_account_sid}:{s.twilio_auth_token}".encode()).decode()
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method=method,
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S):
            pass
    except urllib.error.HTTPError as exc:
        raise DeviceError(f"the simulator refused it ({exc.code})", exc.code) from exc
    except OSError as exc:
        raise DeviceError(f"the simulator did not answer ({type(exc).__name__})", 502) from exc


def available(svc: Services) -> bool:
    """Whether a simulator plays Twilio here: no real account, and a Twilio API address other than Twilio's."""
    return svc.settings.offline and svc.settings.twilio_api_url.rstrip("/") != TWILIO_API


def register(svc: Services, identity: str) -> bool:
    """Make sure the simulator has a "manual" device for `identity` (once per process); False without a simulator."""
    if not available(svc):
        return False
    known: set[str] = svc.extras.setdefault("simdevice.registered", set())
    if identity in known:
        return True
    # "replace": false: a device set up otherwise (`hotline agent` at a terminal, a test's scripted agent) stays
    _request(svc, "PUT", identity, body={"behaviour": "manual", "answer_after": 0, "talk_seconds": None,
                                         "replace": False})
    known.add(identity)
    log_event(log, "simulated device registered", identity=identity)
    return True


def decide(svc: Services, identity: str, decision: str) -> None:
    """The person at the simulated device accepts or declines the call ringing it (DeviceError 404: none rings)."""
    if decision not in ("accept", "decline"):
        raise ValueError("decision: accept or decline")
    register(svc, identity)
    _request(svc, "POST", identity, decision)
