"""A conference's status callbacks, posted in order on a thread of their own, as Twilio sends them: asynchronously.

The REST request or the call that caused an event never waits for the hotline's answer to its callback; a call
that ends waits (flush) for the callbacks of its conferences, so its CallResult holds them once it is joined.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from simulator.errors import SimulationError
from simulator.results import WebhookRequest
from simulator.transport import Reply

FLUSH_S = 10.0  # real seconds a call waits at its end for its conferences' callbacks to be answered

Post = Callable[[str, dict[str, str]], Reply]


class Delivery:
    """One conference's callbacks, first queued first posted; each is recorded, with its answer, in the given lists."""

    def __init__(self, post: Post, closed: threading.Event, failures: list[BaseException], who: str) -> None:
        self._post, self._closed, self._failures, self._who = post, closed, failures, who
        self._cond = threading.Condition()
        self._queue: deque[tuple[str, dict[str, str], list[list[WebhookRequest]]]] = deque()
        self._busy = False  # a thread is posting (the thread ends when the queue is empty)

    def send(self, url: str, params: dict[str, str], records: list[list[WebhookRequest]]) -> None:
        """Queue a callback; `records` are the request lists (CallResult.requests, the conference's) that get it."""
        with self._cond:
            self._queue.append((url, params, records))
            if not self._busy:
                self._busy = True
                threading.Thread(target=self._run, name=f"callbacks:{self._who}", daemon=True).start()

    def flush(self, timeout: float = FLUSH_S) -> bool:
        """Wait until every queued callback has been answered; False after `timeout` real seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._busy = False
                    self._cond.notify_all()
                    return
                url, params, records = self._queue.popleft()
            self._deliver(url, params, records)

    def _deliver(self, url: str, params: dict[str, str], records: list[list[WebhookRequest]]) -> None:
        if self._closed.is_set():
            return  # the simulator was stopped: no more webhooks
        try:
            reply = self._post(url, params)
        except Exception as exc:  # noqa: BLE001 (kept for Simulator.join_all: a test must see its callback fail)
            self._failures.append(SimulationError(f"conference {self._who}: status callback {url} failed: {exc!r}"))
            return
        request = WebhookRequest("conference-status", url, params, reply.status, reply.body)
        for record in records:
            record.append(request)
        if not 200 <= reply.status < 300:
            self._failures.append(SimulationError(
                f"conference {self._who}: status callback {url} ({params.get('StatusCallbackEvent')}) answered "
                f"{reply.status}\n{reply.body}"
            ))
