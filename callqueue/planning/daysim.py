"""A day of calls on a virtual clock, through the real queue code: ordering, dispatch, presence,
callbacks' pacing and score, opening hours, and the statistics counters, all against a real Redis.

Discrete events (arrival, answer, end of call, end of wrap-up, hang-up, roster change, callback
sweep and pick-up, interval snapshot) sit in a heap keyed by (epoch ms, sequence), so ties run in the
order they were scheduled and a seed gives the same day every time. After-hours callbacks are in
callqueue/planning/simcallbacks.py. The engine decides nothing the queue code
decides: who is served next and by which agent is `dispatch.claim_next`'s answer; waits are the ones
`dispatch.answered` / `caller_left` recorded. It only keeps counts (callers waiting, agents idle) to
skip calls that could not pair anyone, and stops with SimulationError if Redis disagrees.
The callers are drawn before the run (`profile.draw_callers`), so policies compare on the very same day.
"""
from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from callqueue import clock
from callqueue.hours import Calendar
from callqueue.live import dispatch, ordering, presence
from callqueue.planning.profile import INTERVAL_S, Caller
from callqueue.planning.simcallbacks import AfterHours
from callqueue.reports import stats
from callqueue.settings import QueueSettings
from core import keys

_IV_MS = INTERVAL_S * 1000
_DAY_MS = 86_400_000


class SimulationError(RuntimeError):
    """The engine's view and Redis' disagree: a bug in one of them, never a modelling choice."""


@dataclass(frozen=True)
class SimOptions:
    """Modelling choices the configuration does not hold."""

    answer_delay_s: float = 0.0  # an offered call rings the agent this long (counted as waiting)
    callback_share: float = 0.7  # of callers who find the line closed, those who book a callback
    callback_answer_p: float = 0.8  # chance a member picks up a callback attempt
    callback_pickup_s: float = 8.0
    callback_ring_timeout_s: float = 30.0
    callback_retry_s: float = 600.0
    callback_attempts: int = 3
    sweep_s: float = 5.0  # the worker's sweep period (hotline/worker.py), which dials due callbacks
    snapshots: bool = True  # read stats.live("15m") at the end of every interval


@dataclass(slots=True)
class Record:
    """What happened to one queue entry (a caller, or a member called back)."""

    sid: str
    tier: str
    arrival_ms: int  # when the caller rang (for a callback: when the member picked up)
    outcome: str = (
        "unserved"  # answered | abandoned | short_abandoned | callback | closed | callback_later | callback_failed
    )
    queued_ms: int | None = None
    score: float | None = None
    claimed_ms: int | None = None
    wait_s: float | None = None  # as dispatch recorded it (answered or left)
    agent: str | None = None
    via_callback: bool = False


@dataclass
class SimResult:
    """One simulated day: every queue entry's record, the statistics code's figures, and costs."""

    records: list[Record]
    day_stats: dict[str, Any]  # stats.live(..., "today") at the day's last millisecond
    interval_stats: list[dict[str, Any]]  # stats.live(..., "15m") at each interval's last millisecond
    settings: QueueSettings
    start_ms: int
    runtime_s: float
    queue_ops: int
    after_day_events: int = 0  # answers/hang-ups after local midnight, counted in the next day's figures
    tickets: dict[str, int] = field(default_factory=dict)


class _Day:
    """One run: the event loop and the engine's counts; every decision is a call into the queue code."""

    def __init__(self, r: redis.Redis, calls: Sequence[Caller], roster: Sequence[int], qs: QueueSettings,
                 calendar: Calendar | None, opts: SimOptions, start_ms: int, intervals: int) -> None:
        self.r, self.qs, self.cal, self.o = r, qs, calendar, opts
        self.start_ms, self.end_ms = start_ms, start_ms + intervals * _IV_MS
        self.heap: list[tuple[int, bool, int, str, Any]] = []
        self.seq = 0
        self.records: dict[str, Record] = {}
        self.entries: dict[str, Caller] = {}  # queue entry sid → the caller (a callback's is the booker)
        self.state: dict[str, str] = {}  # sid → waiting | offered | connected | ended
        self.waiting = 0
        self.idle: set[str] = set()
        self.busy: set[str] = set()
        self.leaving: set[str] = set()  # busy agents going offline after this call
        self.off = [f"ag{n:04d}" for n in range(max(roster, default=0), 0, -1)]  # popped from the end: ag0001 first
        self.desk = AfterHours(self)
        self.ops = 0
        self.after_day = 0
        self.snapshots: list[dict[str, Any]] = []
        self.wrap_ms = round(qs.wrap_up_s * 1000)
        self.answer_ms = round(opts.answer_delay_s * 1000)
        # Each takes (now, the event's data), whose type depends on the event: a Caller, a sid, a login, …
        self.handlers: dict[str, Callable[[int, Any], None]] = {
            "arrive": self.arrive, "answer": self.answer, "end": self.end, "free": self.free, "hangup": self.hangup,
            "roster": self.roster, "snapshot": self.snapshot,
            "sweep": self.desk.sweep, "pickup": self.desk.pickup, "noanswer": self.desk.noanswer,
        }
        presence.ensure_known(self.r, [(a, f"client:{a}") for a in self.off], start_ms / 1000)
        for c in calls:
            self.push(c.arrival_ms, "arrive", c)
        for i, n in enumerate(roster):
            if i == 0 or n != roster[i - 1]:
                self.push(start_ms + i * _IV_MS, "roster", n)
        if opts.snapshots:
            for i in range(intervals):
                self.push(start_ms + (i + 1) * _IV_MS - 1, "snapshot", i)

    def push(self, at: int, kind: str, data: Any) -> None:
        """Schedule an event."""
        self.seq += 1
        # A wrap-up ending at t goes first among events at t: claim_next settles wrap-ups due by t, so
        # the agent must already count as idle here when another event at t asks for a dispatch.
        heapq.heappush(self.heap, (at, kind != "free", self.seq, kind, data))

    def run(self) -> None:
        """Process events until none is left."""
        while self.heap:
            at, _, _, kind, data = heapq.heappop(self.heap)
            self.handlers[kind](at, data)
        self.desk.finish()

    # --- callers ------------------------------------------------------------------------------
    def arrive(self, now: int, c: Caller) -> None:
        """A caller rings: into the queue when open for their tier, else to the callback desk."""
        rec = self.records[c.sid] = Record(c.sid, c.tier, c.arrival_ms)
        if self.cal is not None and not self.cal.is_open(clock.from_ms(now), c.tier):
            rec.outcome = self.desk.closed(now, c)
        else:
            self.join(now, c, rec, None)

    def join_callback(self, now: int, c: Caller, score: float) -> None:
        """A member called back joins the queue with the ticket's score (a queue entry of its own)."""
        sid = c.sid + "-cb"
        self.join(now, c, self.records.setdefault(sid, Record(sid, c.tier, now, via_callback=True)), score)

    def join(self, now: int, c: Caller, rec: Record, score: float | None) -> None:
        """Enqueue (ordering.enqueue) and schedule the caller's hang-up at the end of their patience."""
        e = ordering.enqueue(self.r, rec.sid, tier=c.tier, now=now / 1000, settings=self.qs, score=score)
        self.ops += 1
        rec.queued_ms, rec.score = now, e.score
        self.entries[rec.sid] = c
        self.state[rec.sid] = "waiting"
        self.waiting += 1
        if c.patience_ms is not None:
            self.push(now + c.patience_ms, "hangup", rec.sid)
        self.dispatch(now)

    def dispatch(self, now: int) -> None:
        """Claim callers for idle agents while both exist (claim_next chooses who and whom)."""
        while self.waiting and self.idle:
            offer = dispatch.claim_next(self.r, now / 1000)
            self.ops += 1
            if offer is None:
                if self.desk.ringing:
                    return  # agents held for callbacks ringing members with a better place (dispatch's rule)
                raise SimulationError(f"at {now}: {self.waiting} waiting and {len(self.idle)} idle, but no claim")
            sid, agent = offer.call_sid, offer.agent
            if agent not in self.idle or self.state.get(sid) != "waiting":
                raise SimulationError(f"at {now}: claimed {sid} ({self.state.get(sid)}) for {agent}, "
                                      f"who is {'idle' if agent in self.idle else 'not idle'} here")
            self.idle.remove(agent)
            self.busy.add(agent)
            self.waiting -= 1
            self.state[sid] = "offered"
            rec = self.records[sid]
            rec.claimed_ms, rec.agent = now, agent
            if self.answer_ms:
                self.push(now + self.answer_ms, "answer", sid)
            else:
                self.answer(now, sid)

    def answer(self, now: int, sid: str) -> None:
        """The agent picks up (dispatch.answered records the wait)."""
        if self.state[sid] != "offered":
            return  # hung up while the agent's phone rang
        rec = self.records[sid]
        settled = dispatch.answered(self.r, sid, rec.agent or "", now / 1000, self.qs)
        self.ops += 1
        self.state[sid] = "connected"
        rec.outcome, rec.wait_s = "answered", settled.waited_s
        self.after_day += now >= self.start_ms + _DAY_MS
        self.push(now + self.entries[sid].handle_ms, "end", sid)

    def end(self, now: int, sid: str) -> None:
        """The conversation ends, the caller hanging up (dispatch.caller_left, `ended`): the agent's wrap-up starts."""
        agent = self.records[sid].agent or ""
        dispatch.caller_left(self.r, sid, now / 1000, "ended", self.qs)
        self.ops += 1
        self.state[sid] = "ended"
        if self.wrap_ms:
            self.push(now + self.wrap_ms, "free", agent)
        else:
            self.free(now, agent)

    def free(self, now: int, agent: str) -> None:
        """A wrap-up ends: the agent is idle (or off duty, if leaving) and may take the next caller."""
        self.busy.discard(agent)
        if agent in self.leaving:
            self.leaving.discard(agent)
            self.off.append(agent)
        else:
            self.idle.add(agent)
            # Another wrap-up ending this same millisecond is settled by claim_next too: count it idle first.
            if not (self.heap and self.heap[0][0] == now and self.heap[0][3] == "free"):
                self.dispatch(now)

    def hangup(self, now: int, sid: str) -> None:
        """The caller's patience ran out: if still waiting, they leave (dispatch.caller_left)."""
        st = self.state[sid]
        if st not in ("waiting", "offered"):
            return
        settled = dispatch.caller_left(self.r, sid, now / 1000, "hangup", self.qs)
        self.ops += 1
        rec = self.records[sid]
        rec.outcome, rec.wait_s = settled.outcome, settled.waited_s
        self.after_day += now >= self.start_ms + _DAY_MS
        self.state[sid] = "ended"
        if st == "waiting":
            self.waiting -= 1
        elif rec.agent:  # the ringing agent keeps their turn (dispatch's rule)
            self.busy.discard(rec.agent)
            self.idle.add(rec.agent)
            self.dispatch(now)

    # --- agents -------------------------------------------------------------------------------
    def roster(self, now: int, target: int) -> None:
        """Bring agents on or take them off duty: idle ones go at once, busy ones after their call."""
        on = len(self.idle) + len(self.busy) - len(self.leaving)
        t = now / 1000
        while on < target and self.leaving:  # cancel a planned departure before calling someone in
            a = min(self.leaving)
            self.leaving.remove(a)
            presence.after_wrap_up(self.r, a, "available")
            on += 1
        while on < target:
            a = self.off.pop()
            presence.set_state(self.r, a, "available", t)
            self.idle.add(a)
            on += 1
        for a in sorted(self.idle, reverse=True)[: max(0, on - target)]:
            presence.set_state(self.r, a, "offline", t)  # settles a due wrap-up first, as the console would
            self.idle.remove(a)
            self.off.append(a)
            on -= 1
        for a in sorted(self.busy - self.leaving, reverse=True)[: max(0, on - target)]:
            presence.after_wrap_up(self.r, a, "offline")
            self.leaving.add(a)
        self.ops += 1
        self.dispatch(now)

    def snapshot(self, now: int, i: int) -> None:
        """The statistics code's figures for the quarter hour ending now."""
        self.snapshots.append(stats.live(self.r, now / 1000, self.qs, "15m"))
        self.ops += 2


def simulate(r: redis.Redis, calls: Sequence[Caller], roster: Sequence[int], qs: QueueSettings, *,
             calendar: Calendar | None, start_ms: int, intervals: int,
             options: SimOptions | None = None) -> SimResult:
    """Run the callers through the queue code on an EMPTY Redis database (flushed first; a database
    holding anything but an earlier simulation is refused with SimulationError).

    `roster[i]` agents are on duty from interval i (the last value holds after the roster ends);
    `calendar` None means always open. Statistics are read for the local day starting at `start_ms`.
    """
    # Flushing the live queue would end every call in progress: only an empty database, or one a
    # simulation marked as its own, is ever flushed.
    if r.dbsize() and not r.exists(keys.SIM_SCRATCH):
        raise SimulationError("refusing to flush a Redis database that holds data and is not a simulation's scratch")
    r.flushdb()
    r.set(keys.SIM_SCRATCH, "1")  # this database may be flushed again
    t0 = time.perf_counter()
    day = _Day(r, calls, roster, qs, calendar, options or SimOptions(), start_ms, intervals)
    day.run()
    today = stats.live(r, (start_ms + _DAY_MS - 1) / 1000, qs, "today")
    return SimResult(
        records=list(day.records.values()), day_stats=today, interval_stats=day.snapshots, settings=qs,
        start_ms=start_ms, runtime_s=time.perf_counter() - t0, queue_ops=day.ops + 2,
        after_day_events=day.after_day, tickets=dict(day.desk.counts),
    )
