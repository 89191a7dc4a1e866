"""The hotline's rq jobs by name, and how each is queued: edges queue them after their commit; the worker runs them.

rq stores a job's function as a dotted path, so the paths below are a contract with jobs already queued:
the functions live in hotline/jobs.py and must stay there (tests/unit/test_layout.py checks every path resolves).
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rq is loaded by the processes that queue jobs (core/services.py), not by whoever reads a name
    from rq import Queue

QUEUE = "hotline"
DISPATCH = "hotline.jobs.dispatch"
CALLBACK = "hotline.jobs.callback"
TICKET_SMS = "hotline.jobs.ticket_sms"
SWEEP = "hotline.jobs.sweep"  # registered by the cron scheduler (hotline/worker.py), never queued by hand
BRIDGE = "hotline.jobs.bridge"
END_LEGS = "hotline.jobs.end_legs"
HAND_OVER = "hotline.jobs.hand_over"
REQUEUE = "hotline.jobs.requeue"
JOBS = (DISPATCH, CALLBACK, TICKET_SMS, SWEEP, BRIDGE, END_LEGS, HAND_OVER, REQUEUE)
CALL_STEP = {"job_timeout": 60, "result_ttl": 0, "failure_ttl": 86400}  # a connected call's REST follow-ups


class JobQueue:
    """The hotline's rq queue with one method per job: each job's name and options are spelled here only."""

    def __init__(self, queue: Queue) -> None:
        self.rq = queue

    def dispatch(self) -> None:
        """Pair waiting callers with available agents (at most one run pending: callqueue.live.trigger.request_run)."""
        self.rq.enqueue(DISPATCH, job_timeout=120, result_ttl=0, failure_ttl=3600)

    def ticket_sms(self, ticket_id: int) -> None:
        """Text a member their ticket number (a failure is retried by rq, kept a day for a look)."""
        self.rq.enqueue(TICKET_SMS, ticket_id, job_timeout=30, result_ttl=0, failure_ttl=86400)

    def callback(self, ticket_id: int, job_id: str, at: datetime | None) -> None:
        """Dial due tickets at `at` (None: now); `job_id` names the attempt, so a repeat replaces the job."""
        opts = {"job_id": job_id, "job_timeout": 120, "result_ttl": 0, "failure_ttl": 86400}
        if at is None:
            self.rq.enqueue(CALLBACK, ticket_id, **opts)
        else:
            self.rq.enqueue_at(at, CALLBACK, ticket_id, **opts)

    def bridge(self, caller: str) -> None:
        """Move the caller into their call's conference (their agent has answered); at the front of the queue:
        the agent is hearing the whisper and the caller's move must not wait behind a dispatch run."""
        self.rq.enqueue(BRIDGE, caller, at_front=True, **CALL_STEP)

    def end_legs(self, legs: tuple[str, ...]) -> None:
        """Hang up agents' legs nobody needs any more (the caller left while they rang, or never joined), or a caller
        stranded in a conference their agent had left."""
        if legs:
            self.rq.enqueue(END_LEGS, ",".join(legs), at_front=True, **CALL_STEP)

    def hand_over(self, caller: str) -> None:
        """The call changed hands: the new agent ends the conference when leaving; the caller is taken off hold."""
        self.rq.enqueue(HAND_OVER, caller, at_front=True, **CALL_STEP)

    def requeue(self, caller: str) -> None:
        """Take the caller out of the conference back to the queue (a cold transfer nobody took)."""
        self.rq.enqueue(REQUEUE, caller, at_front=True, **CALL_STEP)
