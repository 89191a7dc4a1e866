"""REST failures the simulator plays on purpose: Twilio answering 5xx or 429, answering late, or not at all.

    sim.faults.add(Fault("POST", "/Calls/", status=500, times=2))        # two 500s, then Twilio answers again
    sim.faults.add(Fault("POST", "/Calls/", status=429, retry_after="1"))  # too many requests, come back in 1 s
    sim.faults.add(Fault("POST", "/Calls/", delay_s=2.0))                 # slow: past the client's timeout
    sim.faults.add(Fault("POST", "/Calls/", applied=True, delay_s=2.0))   # done, but the answer comes too late
    sim.faults.add(Fault("POST", "/Calls/", hold=gate))                   # hangs until the test sets `gate`

A fault matches requests by method and a piece of their path, for its first `times` matches (None: all).
Not `applied` (the default), the request never takes effect: Twilio refused it or never got it. `applied`,
Twilio did the work and only its answer fails or comes late: the case a client cannot tell from the other.
Each failure is announced as a `rest.fault` event (method, path, status, applied), before any delay.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Fault:
    """One way for matching REST requests to fail."""

    method: str | None = None  # None: any method
    path_contains: str = ""
    status: int | None = 500  # the answer; None: the normal answer (with `delay_s` or `hold`: only late)
    code: int = 20500  # Twilio's error code in the error body
    times: int | None = 1  # matching requests that fail; None: every one
    delay_s: float = 0.0  # real seconds before answering
    hold: threading.Event | None = None  # answer only once this is set (at most `hold_max_s`)
    hold_max_s: float = 30.0
    applied: bool = False  # the request takes effect before the failure (Twilio did it; its answer is lost)
    retry_after: str | None = None  # a Retry-After header (Twilio sends one with some 429s)
    message: str = "simulated failure"
    hits: int = field(default=0, init=False)  # requests this fault has failed so far

    def matches(self, method: str, path: str) -> bool:
        """True for a request this fault is about (whether or not it still has failures left)."""
        return (self.method is None or self.method == method) and self.path_contains in path

    def wait(self) -> None:
        """Hold the answer back: the fixed delay, then the gate if there is one."""
        if self.delay_s > 0:
            threading.Event().wait(self.delay_s)
        if self.hold is not None:
            self.hold.wait(self.hold_max_s)


class Faults:
    """The faults in play, first added first matched; thread-safe (the REST API serves on many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Play `fault` for the requests it matches from now on; returns it (its `hits` count what it did)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """No more failures."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The fault this request meets (counting it), or None: the request goes through as usual."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None
