"""Every webhook sent twice, as Twilio does when it retries: a transport around the simulator's that records both
answers and what each changed, and a flow (no rq worker: the test dispatches, and moves the caller into the
conference once their agent has answered) on a standing clock."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from callqueue.live.conference import conference_name
from simulator.transport import Reply
from tests.support.clocks import StepClock
from tests.support.common import PUBLIC_URL
from tests.support.flow import Flow, in_process_flow
from tests.support.twilio_faults import changes, snapshot
from webhooks.outbound import legs
from webhooks.outbound.dispatcher import dispatch_all


@dataclass
class Replayed:
    """One webhook request sent twice: both answers, and what each changed."""

    url: str
    endpoint: str
    first: Reply
    second: Reply
    by_first: dict[str, tuple[Any, Any]]
    by_second: dict[str, tuple[Any, Any]]


class TwiceTransport:
    """Wraps the simulator's transport: every request is sent, then sent again, as a Twilio retry would be.

    The simulator follows the first answer. One request (pair) at a time, holding `lock`; the test takes the
    same lock to dispatch, so the snapshots around a pair see only what the pair did.
    """

    def __init__(
        self, inner: Any, app: Any, clock: StepClock, services: Any, twiml_check: Callable[[str], None]
    ) -> None:
        self.inner, self.clock, self.services, self.twiml_check = inner, clock, services, twiml_check
        self.adapter = app.url_map.bind("hotline.test")
        self.lock = threading.RLock()
        self.pairs: list[Replayed] = []

    def post(self, url: str, params: dict[str, str]) -> Reply:
        path = url.removeprefix(PUBLIC_URL).split("?")[0]
        endpoint = self.adapter.match(path, method="POST")[0]
        with self.lock:
            self.clock.tick(1)
            s0 = snapshot(self.services)
            first = self.inner.post(url, params)
            s1 = snapshot(self.services)
            second = self.inner.post(url, dict(params))
            s2 = snapshot(self.services)
            if second.status == 200 and second.body.strip():
                self.twiml_check(second.body)
            self.pairs.append(Replayed(url, endpoint, first, second, changes(s0, s1), changes(s1, s2)))
        return first

    def assert_idempotent(self) -> set[str]:
        """Both answers equal, nothing changed by the repeat; returns the endpoints replayed."""
        assert self.pairs
        for p in self.pairs:
            assert p.second == p.first, (
                f"POST {p.url} answered differently the second time:\n{p.first.body}\n---\n{p.second.body}"
            )
            assert not p.by_second, f"POST {p.url} changed state again the second time: {p.by_second}"
        return {p.endpoint for p in self.pairs}

    def dispatch(self, svc: Any) -> int:
        """The dispatch job's work, between two request pairs."""
        with self.lock:
            return dispatch_all(svc)

    def bridge(self, flow: Flow, caller: str, endpoint: str) -> None:
        """The bridge job's work, between two request pairs: once `endpoint`'s leg (e.g. "client:ann") is in the
        caller's conference (its /voice/agent/answer answered, twice), the caller is moved in."""
        flow.sim.events.wait("conference.join", timeout=20, endpoint=endpoint, conference=conference_name(caller))
        with self.lock:
            assert legs.bridge(flow.svc, caller) == "moved"


@contextmanager
def replaying(services: Any, folder: Path, twiml_check: Callable[[str], None], start: datetime,
              extra: str = "") -> Iterator[tuple[Flow, StepClock, TwiceTransport]]:
    """A flow (no rq worker: the test dispatches) whose simulator sends every webhook twice, on a standing clock."""
    clock = StepClock(start)
    with in_process_flow(services, folder, workers=0, clock=clock, extra=extra) as flow:
        twice = TwiceTransport(flow.sim.net.transport, flow.app, clock, services, twiml_check)
        flow.sim.net.transport = twice
        yield flow, clock, twice
