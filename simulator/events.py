"""A log of what happens inside the simulator that tests can wait on without sleeping."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One happening: `kind` such as "queue.joined", the call it concerns, and details."""

    seq: int
    kind: str
    call_sid: str
    data: dict[str, Any] = field(default_factory=dict)

    def matches(self, kind: str, after: int, match: dict[str, Any]) -> bool:
        """True for an event of `kind`, later than `after`, whose fields equal `match`."""
        if self.kind != kind or self.seq <= after:
            return False
        fields = {"call_sid": self.call_sid, **self.data}
        return all(fields.get(k) == v for k, v in match.items())


class EventLog:
    """Append-only and thread-safe; waiters see past events too, so there is no race to start waiting first.

    Kinds: call.started, call.answered, call.ended (status), heard (party: main, wait or whisper;
    verb; text; emitted before the time it takes passes), queue.joined (queue, queue_sid,
    position), queue.left (queue, result), dial.ringing / dial.answered / dial.connected /
    dial.ended (endpoint, dial_call_sid, status), sms.sent (to, body), rest (method, path);
    device.ringing / device.answered / device.declined / device.ended (identity, endpoint, status: devices.py);
    conference.start / end / join / leave / hold / unhold / mute / unmute / modify / announced (conference,
    conference_sid, label, endpoint; leave and end: reason), conference.refused (conference, code, why) and met
    (conference, conference_sid, endpoint; met, met_label: a party the call hears for the first time in a stay):
    conferences.py; callback.answered (a conference's status callback, once the hotline has answered it: event, the
    StatusCallbackEvent; conference; status, the answer's; call_sid, the participant's, if any): network.py; for
    remote-controlled calls only (softphone.py): gather (party, timeout), input (party; digits, speech or silence).
    The heard party is also conference-wait, hold or announce in a conference.
    """

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()

    def emit(self, kind: str, call_sid: str = "", **data: Any) -> Event:
        """Record an event and wake every waiter."""
        with self._cond:
            event = Event(len(self._events) + 1, kind, call_sid, data)
            self._events.append(event)
            self._cond.notify_all()
        return event

    def wait(self, kind: str, timeout: float = 10.0, after: int = 0, **match: Any) -> Event:
        """The first event of `kind` after seq `after` matching `match`; AssertionError after `timeout` real seconds."""
        with self._cond:
            found = self._cond.wait_for(lambda: self._find(kind, after, match), timeout)
        if found is None:
            raise AssertionError(f"no {kind} event matching {match} within {timeout:g} s; events: {self.kinds()}")
        return found

    def since(self, after: int, timeout: float, **match: Any) -> tuple[list[Event], int]:
        """Every event later than seq `after` whose fields equal `match`, waiting up to `timeout` real seconds
        for the first one (the softphone's long poll), and the last seq looked at (the next `after`)."""
        def found() -> list[Event]:
            new = self._events[max(0, after):]  # seq n is at index n - 1
            return [e for e in new if all({"call_sid": e.call_sid, **e.data}.get(k) == v for k, v in match.items())]

        with self._cond:
            return self._cond.wait_for(found, timeout) or [], len(self._events)

    def last_seq(self) -> int:
        """The seq of the latest event (0 before any)."""
        with self._cond:
            return len(self._events)

    def _find(self, kind: str, after: int, match: dict[str, Any]) -> Event | None:
        return next((e for e in self._events if e.matches(kind, after, match)), None)

    def all(self, kind: str | None = None, **match: Any) -> list[Event]:
        """Every event so far (of `kind`, matching `match`)."""
        with self._cond:
            return [e for e in self._events if kind is None or e.matches(kind, 0, match)]

    def kinds(self) -> list[str]:
        """The kinds of all events so far, in order (for failure messages)."""
        with self._cond:
            return [e.kind for e in self._events]
