"""Agents' devices and phones rung by Calls.create: the ringing, the person's answer, their hands on the call.

    ann = sim.device("ann")                        # a Client identity, or a number registered with add_phone
    sim.events.wait("device.ringing", identity="ann")
    ann.accept()                                   # or ann.decline(); once answered, ann.hangup()

How a device answers is its Endpoint's behaviour: "answer" after answer_after simulated seconds (a ring longer
than the call's Timeout is no-answer), "busy", "failed", "no-answer" (rings out the Timeout), or "manual": it
rings until accept() or decline() (or the control API's /_sim/agents/<identity>/accept|decline), else until the
Timeout: no-answer. Events, each with identity, call_sid and endpoint (the call's To, e.g. "client:ann", which
the control API's agent stream filters on): device.ringing, device.answered, device.declined, device.ended
(status: the call's final status). <Dial><Client> legs are not device calls: they keep their dial.* events.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from simulator.control import CallControl, HungUp
from simulator.endpoints import Endpoint, client_key
from simulator.events import EventLog

BUSY_SECONDS = 1.0  # how long a busy signal takes to come back


class DeviceCall(Protocol):
    """What ringing needs of a call (simulator/call.py's SimulatedCall)."""

    sid: str
    ring_timeout: float
    control: CallControl


@dataclass(eq=False)
class Ring:
    """A call ringing a "manual" device, waiting for the person's decision."""

    call: DeviceCall
    key: str
    decision: str | None = None  # "accept" or "decline"


def device_key(identity: str) -> str:
    """The To a device is called at: a number as it is, anything else as a Client identity."""
    return identity if identity.startswith(("+", "client:")) else client_key(identity)


class DeviceRegistry:
    """Who rings and who talks, per endpoint key; thread-safe (calls ring on their threads, tests decide on theirs)."""

    def __init__(self, events: EventLog) -> None:
        self._lock = threading.Lock()
        self._events = events
        self._ringing: list[Ring] = []
        self._active: list[tuple[str, DeviceCall]] = []  # answered calls, with the key they rang

    def ring(self, call: DeviceCall, endpoint: Endpoint) -> None:
        """Ring `endpoint` on the call's thread: return once it answers, raise HungUp with the final status if not."""
        if endpoint.behaviour != "manual":
            self._emit("device.ringing", call, endpoint.key)
        if endpoint.behaviour == "busy":
            call.control.wait(BUSY_SECONDS)
            raise HungUp("busy", by="callee")
        if endpoint.behaviour == "failed":
            raise HungUp("failed", by="callee")
        if endpoint.behaviour == "manual":
            self._decide(call, endpoint.key)
        elif endpoint.behaviour == "no-answer" or endpoint.answer_after >= call.ring_timeout:
            call.control.wait(call.ring_timeout)
            raise HungUp("no-answer", by="callee")
        else:
            call.control.wait(endpoint.answer_after)
        with self._lock:
            self._active.append((endpoint.key, call))
        self._emit("device.answered", call, endpoint.key)

    def _decide(self, call: DeviceCall, key: str) -> None:
        """Ring until the person decides or the call's Timeout passes (Timeout x scale real seconds)."""
        ring = Ring(call, key)
        with self._lock:
            self._ringing.append(ring)
        self._emit("device.ringing", call, key)  # once it can be accepted
        try:
            call.control.wait(call.ring_timeout, until=lambda: ring.decision is not None)
        finally:
            with self._lock:
                self._ringing.remove(ring)
        if ring.decision == "decline":
            # A Voice SDK call.reject() (https://www.twilio.com/docs/voice/sdks/javascript/twiliocall#callreject)
            # ends the call as busy: "by using callInvite.reject() Twilio sees the DialCallStatus=busy"
            # (https://github.com/twilio/voice-quickstart-ios/issues/238); the docs do not name the status.
            self._emit("device.declined", call, key)
            raise HungUp("busy", by="callee")
        if ring.decision is None:
            raise HungUp("no-answer", by="callee")

    def ringing(self, key: str) -> str | None:
        """The CallSid ringing `key` and waiting for a decision (the first, if several), or None."""
        with self._lock:
            ring = next((r for r in self._ringing if r.key == key and r.decision is None), None)
        return ring.call.sid if ring else None

    def decide(self, key: str, decision: str) -> str | None:
        """The person accepts or declines the call ringing `key`; its CallSid, or None when nothing rings."""
        with self._lock:
            ring = next((r for r in self._ringing if r.key == key and r.decision is None), None)
            if ring is not None:
                ring.decision = decision
        if ring is None:
            return None
        ring.call.control.poke()
        return ring.call.sid

    def hang_up(self, key: str) -> str | None:
        """The person hangs up the call answered on `key` (the oldest); its CallSid, or None when there is none."""
        with self._lock:
            call = next((c for k, c in self._active if k == key), None)
        if call is None:
            return None
        call.control.interrupt(HungUp("completed", by="callee"))
        return call.sid

    def ended(self, call: DeviceCall, key: str, status: str) -> None:
        """The device's call ended (answered or not)."""
        with self._lock:
            self._active = [(k, c) for k, c in self._active if c is not call]
        self._emit("device.ended", call, key, status=status)

    def _emit(self, kind: str, call: DeviceCall, key: str, **data: str) -> None:
        self._events.emit(kind, call.sid, identity=key.removeprefix("client:"), endpoint=key, **data)


class Device:
    """A person at a device, as tests (and the control API) reach it: what rings, and accepting, declining, hanging up.

    Each lever returns the CallSid it acted on, or None when there was nothing to act on.
    """

    def __init__(self, registry: DeviceRegistry, identity: str) -> None:
        self._registry = registry
        self.key = device_key(identity)
        self.identity = self.key.removeprefix("client:")

    def ringing(self) -> str | None:
        """The CallSid ringing this device and waiting for the person (behaviour "manual"), or None."""
        return self._registry.ringing(self.key)

    def accept(self) -> str | None:
        """Answer the ringing call."""
        return self._registry.decide(self.key, "accept")

    def decline(self) -> str | None:
        """Reject the ringing call (it ends as busy)."""
        return self._registry.decide(self.key, "decline")

    def hangup(self) -> str | None:
        """Hang up the answered call (the oldest, if several)."""
        return self._registry.hang_up(self.key)
