"""The day simulation's after-hours callbacks (callqueue/planning/daysim.py): tickets booked while the line is closed,
dialled from the opening at the pace `callbacks.plan` sets, joining the queue with `after_hours_score`.

Tickets live in memory (SQL tickets add nothing to the order); what orders and paces them is the real
code: `hours.Calendar.next_opening` for the due time, `callbacks.after_hours_score` for the kept place,
`callbacks.plan` for how many to dial at each sweep (every `sweep_s`, as the worker's sweep), and the
`hl:cb:ringing` set through which dispatch holds an agent for a ringing member.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callqueue import clock
from callqueue.callbacks import attempts
from callqueue.callbacks.tickets import Ticket
from callqueue.live import presence
from callqueue.planning.profile import Caller
from core import keys

SWEEP, PICKUP, NOANSWER = "sweep", "pickup", "noanswer"


@dataclass(slots=True)
class SimTicket:
    """A callback ticket in the simulation."""

    id: int
    caller: Caller
    score: float
    due_ms: int
    attempts: int = 0


class AfterHours:
    """Books, paces and dials callback tickets for one simulated day (`day` is the engine: push, join, …)."""

    def __init__(self, day: Any) -> None:
        self.day = day
        self.tickets: list[SimTicket] = []
        self.ringing: dict[int, SimTicket] = {}
        self.counts = {"booked": 0, "later": 0, "closed": 0, "dialled": 0, "failed": 0}
        self.sweep_at: int | None = None

    def closed(self, now: int, c: Caller) -> str:
        """A caller found the line closed: book a ticket (or not); returns the caller's outcome."""
        d, o = self.day, self.day.o
        if c.draws[0] >= o.callback_share:
            self.counts["closed"] += 1
            return "closed"
        booked = clock.from_ms(now)
        opens = d.cal.next_opening(booked, c.tier)
        self.counts["booked"] += 1
        if opens is None or clock.to_ms(opens) >= d.end_ms:
            self.counts["later"] += 1
            return "callback_later"  # called back on a later day: outside this simulation
        score = attempts.after_hours_score(opens, booked, d.qs.boost(c.tier))
        self.tickets.append(SimTicket(len(self.tickets) + 1, c, score, clock.to_ms(opens)))
        self.wake(clock.to_ms(opens))
        return "callback"

    def wake(self, at: int) -> None:
        """Make sure a sweep runs at `at` (one pending sweep at a time: the earliest)."""
        if self.sweep_at is None or at < self.sweep_at:
            self.sweep_at = at
            self.day.push(at, SWEEP, at)

    def sweep(self, now: int, tag: int) -> None:
        """The worker's pass: dial the due tickets that `callbacks.plan` says agents can take now."""
        if tag != self.sweep_at:
            return  # superseded by an earlier sweep
        self.sweep_at = None
        d = self.day
        due = sorted((t for t in self.tickets if t.due_ms <= now), key=lambda t: (t.score, t.id))[:100]
        # plan() dials a ticket only if an available agent is left after the callers ahead (>= 0) and the
        # callbacks ringing: with no more idle agents than ringing callbacks it dials none, so skip the reads.
        if due and len(d.idle) > len(self.ringing):
            presence.settle_wrap_ups(d.r, now / 1000)  # the worker's sweep does this first
            available = int(d.r.zcard(keys.AVAILABLE))
            d.ops += 2
            at = clock.from_ms(now)
            byid = {t.id: t for t in due}

            def ahead(v: Ticket) -> int:  # asked only up to the first ticket that does not fit: few reads
                d.ops += 1
                return int(d.r.zcount(keys.ORDER, "-inf", f"({v.score!r}"))

            chosen = attempts.plan(
                [self.view(t) for t in due], available_agents=available, ringing=len(self.ringing),
                callers_ahead=ahead, is_open=lambda v: d.cal is None or d.cal.is_open(at, v.tier))
            for v in chosen:
                self.ring(now, byid[v.id])
        if now >= d.end_ms:
            return  # the day is over: what is left is dialled another day (`finish`)
        if any(t.due_ms <= now for t in self.tickets):
            self.wake(now + int(d.o.sweep_s * 1000))
        elif self.tickets:
            self.wake(min(t.due_ms for t in self.tickets))

    def view(self, t: SimTicket) -> Ticket:
        """The ticket as the callbacks module sees it."""
        return Ticket(id=t.id, number=str(t.id), status="scheduled", tier=t.caller.tier, phone="", lang="zh",
                      reason="after_hours", score=t.score, category=None, member_uid=None,
                      created=clock.from_ms(t.caller.arrival_ms), due=clock.from_ms(t.due_ms), attempts=t.attempts,
                      max_attempts=self.day.o.callback_attempts, call_sid=None, closed=None, note=None)

    def ring(self, now: int, t: SimTicket) -> None:
        """Dial a ticket: hold an agent for it while the member's phone rings."""
        d = self.day
        self.tickets.remove(t)
        t.attempts += 1
        self.counts["dialled"] += 1
        self.ringing[t.id] = t
        # What webhooks/callback_dialer.hold_agent does: dispatch keeps an agent for this member.
        d.r.zadd(keys.CB_RINGING, {f"t{t.id}": t.score})
        d.ops += 1
        if t.caller.draws[t.attempts] < d.o.callback_answer_p:
            d.push(now + int(d.o.callback_pickup_s * 1000), PICKUP, t)
        else:
            d.push(now + int(d.o.callback_ring_timeout_s * 1000), NOANSWER, t)

    def _release(self, t: SimTicket) -> None:
        del self.ringing[t.id]
        self.day.r.zrem(keys.CB_RINGING, f"t{t.id}")
        self.day.ops += 1

    def pickup(self, now: int, t: SimTicket) -> None:
        """The member answered: they join the queue with the ticket's score."""
        self._release(t)
        self.day.join_callback(now, t.caller, t.score)

    def noanswer(self, now: int, t: SimTicket) -> None:
        """Nobody answered: try again after the retry delay, or give up after the last attempt."""
        d = self.day
        self._release(t)
        if t.attempts >= d.o.callback_attempts:
            d.records[t.caller.sid].outcome = "callback_failed"
            self.counts["failed"] += 1
        else:
            t.due_ms = now + int(d.o.callback_retry_s * 1000)
            self.tickets.append(t)
            self.wake(t.due_ms)
        d.dispatch(now)

    def finish(self) -> None:
        """End of the day: tickets not dialled (or not reached) wait for another day."""
        for t in self.tickets:
            self.day.records[t.caller.sid].outcome = "callback_later"
            self.counts["later"] += 1
        self.tickets.clear()
