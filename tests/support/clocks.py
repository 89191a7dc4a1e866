"""Clocks for the tests: fixed instants for the domain tests, and clocks an app runs on that the test moves."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai


def at(seconds: float) -> datetime:
    """T0 plus `seconds` (the queue tests: time is injected, never read from the wall)."""
    return T0 + timedelta(seconds=seconds)


class RunningClock:
    """A clock that starts at a fixed instant and runs with real time; `advance` jumps it (opening hours, retries)."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._base, self._t0 = start, time.monotonic()

    def __call__(self) -> datetime:
        with self._lock:
            return self._base + timedelta(seconds=time.monotonic() - self._t0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._base += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        """Jump to `at` (never backwards in a test: it only moves on)."""
        with self._lock:
            self._base, self._t0 = at, time.monotonic()


class FakeClock:
    """The wall clock plus an offset the test moves forward: time still flows (arrivals stay distinct),
    and `advance` jumps it (waits longer than a boost or a service level without sleeping).

    Starts at least half an hour before the hotline's local midnight, so that "today" cannot change
    during a test.
    """

    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self._lock = threading.Lock()
        now = datetime.now(UTC)
        local = now.astimezone(ZoneInfo(tz))
        midnight = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz)) + timedelta(days=1)
        self._offset = min(timedelta(0), midnight - timedelta(minutes=30) - now)

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


class StepClock:
    """Fixed instants: it moves only when told (`tick`), so a request and its repeat see the same time."""

    def __init__(self, start: datetime) -> None:
        self._t, self._lock = start, threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._t

    def tick(self, seconds: float = 1.0) -> None:
        with self._lock:
            self._t += timedelta(seconds=seconds)
