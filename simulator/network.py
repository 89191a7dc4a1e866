"""The shared world simulated calls run in: transport, account, queues, conferences, endpoints, devices, events,
live calls."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.conferences import ConferenceRegistry
from simulator.devices import DeviceRegistry
from simulator.endpoints import EndpointRegistry
from simulator.events import EventLog
from simulator.queues import QueueRegistry
from simulator.transport import Reply, Transport

API_VERSION = "2010-04-01"


@dataclass(frozen=True)
class Options:
    """Knobs of the simulation."""

    scale: float = 0.001  # real seconds per simulated second: 0.001 makes a 30 s <Pause> last 30 ms
    max_requests: int = 500  # webhook requests one call may make before it fails loudly (loop guard)
    max_call_seconds: float = 4 * 3600.0  # simulated length after which a call fails loudly
    play_seconds: float = 30.0  # simulated length of one <Play> (the simulator never downloads audio)


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


class CallRegistry:
    """Every call and <Dial> leg by sid, for the REST API; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, Any] = {}

    def add(self, call: Any) -> None:
        """Register a call or leg (anything with .sid)."""
        with self._lock:
            self._by_sid[call.sid] = call

    def get(self, sid: str) -> Any | None:
        """The call or leg with this sid, if any."""
        with self._lock:
            return self._by_sid.get(sid)

    def all(self) -> list[Any]:
        """Every call and leg, oldest first."""
        with self._lock:
            return list(self._by_sid.values())


@dataclass
class Network:
    """What every simulated call shares."""

    transport: Transport
    account_sid: str
    options: Options = field(default_factory=Options)
    queues: QueueRegistry = field(default_factory=QueueRegistry)
    endpoints: EndpointRegistry = field(default_factory=EndpointRegistry)
    events: EventLog = field(default_factory=EventLog)
    calls: CallRegistry = field(default_factory=CallRegistry)
    closed: threading.Event = field(default_factory=threading.Event)  # set by Simulator.stop: no more webhooks
    failures: list[BaseException] = field(default_factory=list)  # raised by Simulator.join_all
    conferences: ConferenceRegistry = field(init=False)
    devices: DeviceRegistry = field(init=False)
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC))  # the wall clock when the simulation began
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.conferences = ConferenceRegistry(
            self.account_sid, self.events, self._conference_callback, self.closed, self.failures, self.simulated_now,
        )
        self.devices = DeviceRegistry(self.events)

    def _conference_callback(self, url: str, params: dict[str, str]) -> Reply:
        """Post a conference's status callback through whatever transport is in place now (tests may wrap it later);
        once answered, a callback.answered event (call_sid: the participant's, if any; event, conference, status),
        so a test can wait until the hotline has taken in what the callback told it."""
        reply = self.transport.post(url, params)
        self.events.emit("callback.answered", params.get("CallSid", ""), event=params.get("StatusCallbackEvent"),
                         conference=params.get("FriendlyName"), status=reply.status)
        return reply

    def simulated_now(self) -> datetime:
        """The simulation's wall clock: its start plus the simulated time since (real time / scale), so that times
        Twilio reports (a conference event's Timestamp) measure simulated durations, as CallDuration does."""
        elapsed = time.monotonic() - self.started
        return self.epoch + timedelta(seconds=elapsed / self.options.scale if self.options.scale > 0 else elapsed)
