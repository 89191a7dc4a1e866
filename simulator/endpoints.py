"""The simulated people on the far end: agents reached by <Dial> and phones reached by Calls.create."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from simulator.errors import SimulationError
from simulator.script import Script

# "manual": the device rings until the test (Device.accept/decline, simulator/devices.py) or the control API decides.
Behaviour = Literal["answer", "busy", "no-answer", "failed", "manual"]
BEHAVIOURS = ("answer", "busy", "no-answer", "failed", "manual")


@dataclass(frozen=True)
class Endpoint:
    """How a Twilio Client identity or a phone number responds when called."""

    key: str  # "client:<identity>" or an E.164 number: what Twilio puts in To
    behaviour: Behaviour = "answer"
    answer_after: float = 2.0  # simulated seconds of ringing before answering
    # Length of a bridged <Dial>, or of a stay in a conference for an "answer" device; None: until someone hangs up.
    talk_seconds: float | None = 60.0
    script: Script = field(default_factory=Script)  # what the person does when the call runs TwiML (Calls.create)


def client_key(identity: str) -> str:
    """The To value Twilio uses for a Client identity."""
    return identity if identity.startswith("client:") else f"client:{identity}"


class EndpointRegistry:
    """Endpoints by key; calling an unregistered one fails loudly so a typo never passes as "no answer"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Endpoint] = {}

    def add(self, endpoint: Endpoint) -> Endpoint:
        """Register (or replace) an endpoint."""
        if endpoint.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {endpoint.behaviour!r}")
        with self._lock:
            self._by_key[endpoint.key] = endpoint
        return endpoint

    def find(self, key: str) -> Endpoint | None:
        """The endpoint for `key`, or None when none is registered."""
        with self._lock:
            return self._by_key.get(key)

    def get(self, key: str) -> Endpoint:
        """The endpoint for `key`; SimulationError when none is registered."""
        with self._lock:
            found = self._by_key.get(key)
            known = sorted(self._by_key)
        if found is None:
            raise SimulationError(
                f"no simulated endpoint {key!r} (register it with add_agent/add_phone); known: {known}"
            )
        return found
