"""A call's simulated clock and the interruptions (REST updates, hang-ups) that cut its waits short."""
from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

from simulator.errors import SimulationError


class Interrupt(Exception):
    """Something outside the call's TwiML changed its course; raised inside the call's own thread."""


class Redirected(Interrupt):
    """The REST API gave the call new TwiML to run."""

    def __init__(self, url: str, method: str = "POST") -> None:
        super().__init__(f"redirected to {url}")
        self.url = url
        self.method = method


class HungUp(Interrupt):
    """The call ends: `by` is "caller" (the script or handle) or "api" (a REST Status update)."""

    def __init__(self, status: str = "completed", by: str = "caller") -> None:
        super().__init__(f"{status} by {by}")
        self.status = status
        self.by = by


class LegEnded(Interrupt):
    """The party on the other end of a <Dial> hung up (their leg was completed over REST)."""


class Woken(Interrupt):
    """What a call in a conference hears must change (simulator/conference.py): a watched condition came true,
    or the watched alarm time came, during a wait. Never pending: raised by the waiting thread itself."""


class CallControl:
    """Simulated time for one call: a wait costs `scale` real seconds per simulated second; an interrupt wakes it."""

    def __init__(self, scale: float, max_seconds: float) -> None:
        self.scale = scale
        self.max_seconds = max_seconds
        self.now = 0.0  # simulated seconds since the call started; written only by the call's thread
        self._cond = threading.Condition()
        self._pending: Interrupt | None = None
        self._patience: dict[str, tuple[float, str]] = {}  # reason -> (when, who hangs up)
        self._watch: Callable[[], bool] | None = None  # see watching()
        self._alarm = math.inf

    def interrupt(self, exc: Interrupt) -> bool:
        """Deliver `exc` to the call's thread; False when the call is already ending (nothing more can change it)."""
        with self._cond:
            if isinstance(self._pending, HungUp):
                return False
            self._pending = exc
            self._cond.notify_all()
            return True

    def ending(self) -> bool:
        """True once a hang-up has been delivered but not yet acted on."""
        with self._cond:
            return isinstance(self._pending, HungUp)

    def check(self) -> None:
        """Raise the pending interrupt, if any (called between verbs and after every request)."""
        with self._cond:
            exc, self._pending = self._pending, None
        if exc is not None:
            raise exc
        if self._watch is not None and (self.now >= self._alarm or self._watch()):
            raise Woken("watched state changed")

    @contextlib.contextmanager
    def watching(self, changed: Callable[[], bool], alarm_at: float | None = None) -> Iterator[None]:
        """Within the block, every wait and check raises Woken once `changed()` holds (checked under the lock without
        taking other locks; whoever makes it true calls poke()) or simulated time reaches `alarm_at`."""
        saved = self._watch, self._alarm
        self._watch, self._alarm = changed, math.inf if alarm_at is None else alarm_at
        try:
            yield
        finally:
            self._watch, self._alarm = saved

    def hang_up_after(self, reason: str, seconds: float | None, by: str = "caller") -> None:
        """`by` (the caller; "callee": an agent's device) hangs up `seconds` from now for `reason` (None: forget it)."""
        if seconds is None:
            self._patience.pop(reason, None)
        else:
            self._patience[reason] = (self.now + seconds, by)

    def poke(self) -> None:
        """Wake a wait() whose `until` condition may have become true (the softphone's remote input)."""
        with self._cond:
            self._cond.notify_all()

    def wait(self, seconds: float | None, until: Callable[[], bool] | None = None) -> None:
        """Spend `seconds` of simulated time (None: until interrupted).

        Raises the interrupt that cuts the wait short, HungUp when the caller's patience runs
        out first, and SimulationError past the call's maximum duration. With `until` (checked
        under the lock; whoever makes it true calls poke()), the wait also ends, quietly, as soon
        as it holds: a remote caller's keys end a <Gather>'s listening (simulator/softphone.py).
        """
        self.check()
        target = math.inf if seconds is None else self.now + max(0.0, seconds)
        patience, who = min(self._patience.values(), default=(math.inf, "caller"))
        alarm = self._alarm if self._watch is not None else math.inf
        # An open-ended wait is event-driven: it ends on an interrupt or the caller's patience, never by itself.
        limit = math.inf if seconds is None else self.max_seconds
        end = max(self.now, min(target, patience, limit, alarm))
        ready = until or (lambda: False)
        watched = self._watch or (lambda: False)
        started = time.monotonic()
        with self._cond:
            if end == math.inf:
                while self._pending is None and not ready() and not watched():
                    self._cond.wait()
            else:
                deadline = started + (end - self.now) * self.scale
                while (self._pending is None and not ready() and not watched()
                       and (remaining := deadline - time.monotonic()) > 0):
                    self._cond.wait(remaining)
            interrupted = self._pending is not None
            satisfied = not interrupted and until is not None and until()
            woken = not interrupted and not satisfied and watched()
        if interrupted or satisfied or woken:
            if self.scale > 0:
                self.now = min(end, self.now + (time.monotonic() - started) / self.scale)
            self.check()
            if satisfied:
                return
        self.now = end
        if end >= limit:
            raise SimulationError(f"the call passed its maximum of {self.max_seconds:g} simulated seconds")
        if end >= patience and end < target:
            raise HungUp("completed", by=who)
        if end >= alarm and end < target:
            raise Woken("alarm")
