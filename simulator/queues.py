"""Twilio's call queues: FIFO holding pens, created on demand, with Twilio's own figures."""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from simulator.control import CallControl

DEFAULT_MAX_SIZE = 1000
LARGEST_MAX_SIZE = 5000
LONGEST_NAME = 64


@dataclass(eq=False)
class Member:
    """A call waiting in a queue; its wait is measured on the call's own simulated clock."""

    call_sid: str
    control: CallControl
    queue: Queue
    enqueued_at: float
    date_enqueued: datetime = field(default_factory=lambda: datetime.now(UTC))

    def wait_time(self) -> int:
        """Whole simulated seconds spent in the queue so far."""
        return int(self.control.now - self.enqueued_at)


@dataclass(eq=False)
class Queue:
    """One named queue."""

    sid: str
    friendly_name: str
    max_size: int
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    members: list[Member] = field(default_factory=list)

    def average_wait_time(self) -> int:
        """Mean wait of the callers now in the queue, in whole seconds (0 when empty)."""
        waits = [m.wait_time() for m in self.members]
        return int(sum(waits) / len(waits)) if waits else 0


class QueueFull(Exception):
    """The queue already holds max_size callers."""

    def __init__(self, queue: Queue) -> None:
        super().__init__(f"queue {queue.friendly_name!r} is full ({queue.max_size})")
        self.queue = queue


class QueueRegistry:
    """All queues of the account; every method is atomic under one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._by_sid: dict[str, Queue] = {}

    def create(self, friendly_name: str, max_size: int = DEFAULT_MAX_SIZE) -> Queue:
        """A new queue; ValueError for a taken or too-long name or a size outside 1..5000."""
        if not friendly_name or len(friendly_name) > LONGEST_NAME:
            raise ValueError(f"FriendlyName must be 1 to {LONGEST_NAME} characters")
        if not 1 <= max_size <= LARGEST_MAX_SIZE:
            raise ValueError(f"MaxSize must be between 1 and {LARGEST_MAX_SIZE}, not {max_size}")
        with self.lock:
            if self.named(friendly_name) is not None:
                raise ValueError(f"a queue named {friendly_name!r} already exists")
            queue = Queue("QU" + uuid.uuid4().hex, friendly_name, max_size)
            self._by_sid[queue.sid] = queue
            return queue

    def named(self, friendly_name: str) -> Queue | None:
        """The queue with this name, if any."""
        with self.lock:
            return next((q for q in self._by_sid.values() if q.friendly_name == friendly_name), None)

    def get(self, sid: str) -> Queue | None:
        """The queue with this sid, if any."""
        with self.lock:
            return self._by_sid.get(sid)

    def all(self) -> list[Queue]:
        """Every queue, oldest first."""
        with self.lock:
            return list(self._by_sid.values())

    def join(self, friendly_name: str, call_sid: str, control: CallControl) -> Member:
        """Put a call at the back of the named queue (created on demand); QueueFull when it is full."""
        with self.lock:
            queue = self.named(friendly_name) or self.create(friendly_name)
            if len(queue.members) >= queue.max_size:
                raise QueueFull(queue)
            member = Member(call_sid, control, queue, control.now)
            queue.members.append(member)
            return member

    def remove(self, member: Member) -> bool:
        """Take a member out; False when something else (REST, another path) already did."""
        with self.lock:
            if member in member.queue.members:
                member.queue.members.remove(member)
                return True
            return False

    def find(self, queue_sid: str, call_sid: str) -> Member | None:
        """The member of that queue for `call_sid` ("Front": the first one)."""
        with self.lock:
            queue = self._by_sid.get(queue_sid)
            if queue is None or not queue.members:
                return None
            if call_sid == "Front":
                return queue.members[0]
            return next((m for m in queue.members if m.call_sid == call_sid), None)

    def member_of(self, call_sid: str) -> Member | None:
        """The queue membership of a call, if it is queued anywhere."""
        with self.lock:
            return next((m for q in self._by_sid.values() for m in q.members if m.call_sid == call_sid), None)

    def position(self, member: Member) -> int:
        """1-based place in line (0 once it has left)."""
        with self.lock:
            members = member.queue.members
            return members.index(member) + 1 if member in members else 0

    def wait_params(self, member: Member) -> dict[str, str]:
        """The queue fields Twilio adds to every waitUrl request."""
        with self.lock:
            queue = member.queue
            return {
                "QueueSid": queue.sid,
                "QueuePosition": str(self.position(member)),
                "QueueTime": str(member.wait_time()),
                "AvgQueueTime": str(queue.average_wait_time()),
                "CurrentQueueSize": str(len(queue.members)),
                "MaxQueueSize": str(queue.max_size),
            }
