"""One function per webhook step: the Redis transition, then the SQL record from what Redis recorded.

The edge calls these and commits. Redis decides what happened (atomically, once); the record is
written from Redis's answer, with the times Redis first recorded, so a retried or late webhook
writes the same values again (a no-op). When Redis knows nothing of a call (state lost), the
record settles the outcome from its own timestamps (records.close_call).

| webhook step | call |
|---|---|
| /voice/incoming | `arrived` |
| PIN accepted | `verified` |
| return `<Enqueue>` (and again after a no-answer) | `join_queue` → the Twilio queue name |
| waitUrl | `waiting` → position, estimate, max wait passed |
| agent available / caller joined / caller back | `dispatch` in a loop → Offer, then the agent's leg rung |
| the agent's leg could not be placed | `ring_failed` |
| the agent's leg placed | `agent_dialled` |
| agent leg answered (its TwiML requested) | `agent_answered` (then the caller is moved into the conference) |
| agent leg ended unanswered / after answering | `agent_missed` / `agent_left` |
| the caller asks for the conference (moved in) | `conference.caller_moved` |
| `<Enqueue action>` | `queue_result` |
| /voice/status | `call_status` |
"""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy.orm import Session

from callqueue import clock, handling, records
from callqueue.clock import Now
from callqueue.live import agent_leg, conference, estimate, missed, ordering, pen
from callqueue.live import dispatch as dsp
from callqueue.live.dispatch import Offer, Settled
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

LEFT = ("abandoned", "short_abandoned", "to_callback", "failed")
TERMINAL_CALL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
ANSWERED_DIAL = ("completed", "answered")
QUEUE_RESULT_REASON = {"hangup": "hangup", "leave": "callback", "error": "failed", "system-error": "failed"}


@dataclass(frozen=True)
class Joined:
    """The caller's place and the Twilio queue to `<Enqueue>` them into (None: the call has ended)."""

    call_sid: str
    queue_name: str | None
    position: int | None
    score: float
    new: bool
    state: str
    agents_available: int = 0


@dataclass(frozen=True)
class WaitInfo:
    """What the waitUrl announces."""

    state: str | None
    position: int | None
    waited_s: float
    max_wait_exceeded: bool
    estimate: estimate.Estimate
    extra: dict[str, str] = field(default_factory=dict)  # the hash the edge asked to read along (its IVR session)


def arrived(session: Session, call_sid: str, *, from_number: str | None, now: Now) -> None:
    """/voice/incoming: open the call record (idempotent). One SQL statement."""
    records.record_arrival(session, call_sid, from_number=from_number, now=now)


def verified(session: Session, call_sid: str, *, tier: str, member_uid: str | None, now: Now) -> None:
    """The PIN was accepted: record tier and member. One SQL statement."""
    records.mark_verified(session, call_sid, tier=tier, member_uid=member_uid, now=now)


def join_queue(
    session: Session, r: redis.Redis, call_sid: str, *, tier: str, now: Now, settings: Config | QueueSettings,
    category: str = "", verified: bool = False, member_uid: str | None = None, from_number: str | None = None,
    score: float | None = None,
) -> Joined:
    """Before returning `<Enqueue>`: place the caller in our order and pick the Twilio queue. 2 round trips.

    Idempotent: a retry, or the caller coming back after an agent did not answer, keeps the score.
    `score`: a callback call's ticket score (keeps the original caller's place).
    """
    e = ordering.enqueue(r, call_sid, tier=tier, now=now, settings=settings, category=category,
                         verified=verified, member_uid=member_uid, score=score)
    name = pen.assign(r, call_sid, settings) if e.state in ("waiting", "offered") else None
    records.note_queued(session, call_sid, tier=tier, category=category or None, verified=verified,
                        member_uid=member_uid, score=e.score, queued_at=e.queued_at, from_number=from_number)
    return Joined(call_sid, name, e.position, e.score, e.new, e.state, e.agents_available)


def waiting(
    r: redis.Redis, call_sid: str, now: Now, settings: Config | QueueSettings, *,
    queue_sid: str | None = None, extra_hash: str = "",
) -> WaitInfo:
    """waitUrl: place in our order, time waited, estimate, whether to offer a callback, `extra_hash`. 1 round trip."""
    w = ordering.wait_status(r, call_sid, now, settings, queue_sid=queue_sid, extra_hash=extra_hash)
    st = w.caller
    est = estimate.from_rate(st.position or 1, w.answered, estimate.span_s(w.oldest_minute, clock.to_ms(now)))
    return WaitInfo(st.state, st.position, st.waited_s, st.max_wait_exceeded, est, w.extra)


def dispatch(session: Session, r: redis.Redis, now: Now) -> Offer | None:
    """Claim the best caller for the longest-idle agent and record the offer; None when nothing to pair. 1 round trip.

    The edge then moves the caller (gateway) to the TwiML that dials `offer.endpoint`.
    """
    offer = dsp.claim_next(r, now)
    if offer is not None:
        records.note_offered(session, offer.call_sid, agent=offer.agent, attempt=offer.attempt, now=offer.offered_at)
    return offer


def ring_failed(r: redis.Redis, offer: Offer, now: Now) -> None:
    """The agent's leg could not be placed: the caller back at their place, the agent available (keeping their
    turn). Idempotent (undo_claim), 1 round trip."""
    dsp.undo_claim(r, offer.call_sid, offer.agent, now)


def agent_dialled(r: redis.Redis, call_sid: str, agent: str, leg: str) -> bool:
    """The offered agent's device is being rung by call `leg` (Calls create). 1 round trip."""
    return conference.dialled(r, call_sid, agent, leg)


def agent_answered(
    session: Session, r: redis.Redis, call_sid: str, agent: str, now: Now, settings: Config | QueueSettings,
    leg: str = "",
) -> Settled:
    """The agent picked up (their leg requested its TwiML): the caller's wait ends. 1 round trip."""
    s = dsp.answered(r, call_sid, agent, now, settings, leg)
    if s.outcome == "connected" and s.at is not None:
        records.note_answered(session, call_sid, agent=agent, now=s.at)
    return s


def agent_missed(
    session: Session, r: redis.Redis, call_sid: str, agent: str, leg_status: str, now: Now,
    settings: Config | QueueSettings,
) -> missed.Missed:
    """The agent's leg ended unanswered (`leg_status`: no-answer, busy, failed, canceled): the caller, still in
    their Twilio queue, is back at the same score; the agent to the back of the line or, after missing
    presence.max_missed_offers in a row, away. 1 round trip."""
    m = missed.no_answer(r, call_sid, agent, now, settings)
    if m.caller_back:
        records.note_dial_status(session, call_sid, leg_status)
    return m


def agent_left(
    session: Session, r: redis.Redis, call_sid: str, agent: str, now: Now, settings: Config | QueueSettings,
    *, may_hand_over: bool = False,
) -> agent_leg.Left:
    """The agent's leg ended after answering: the agent starts wrap-up, and the conversation is over (or, with a
    transfer under way, passes to its target; or, when the caller never reached the conference, the caller is
    back in line). `may_hand_over`: agent_leg.completed. A repeat, or the caller's own end first, changes nothing
    live; the record's dial status is `completed` whichever end came first. 1 round trip."""
    left = agent_leg.completed(r, call_sid, agent, now, settings, may_hand_over=may_hand_over)
    if left.outcome == "ended":
        records.note_dial_status(session, call_sid, "completed")
    elif not left.outcome:
        # The caller's end came first and closed the call: the leg's end is still the record's latest dial status
        # when the record names this agent (so the record does not depend on which end Twilio reported first).
        records.note_dial_status(session, call_sid, "completed", agent=agent)
    return left


def queue_result(
    session: Session, r: redis.Redis, call_sid: str, result: str, now: Now, settings: Config | QueueSettings,
) -> Settled | None:
    """`<Enqueue action>`: the caller left the Twilio queue; settle why. 1-2 round trips.

    hangup → abandoned; leave → to_callback; error/system-error → failed; queue-full → that shard
    is marked full and the caller keeps their place (return `<Enqueue>` to `join_queue`'s new name);
    redirected/bridged → nothing: the dispatch flow owns the call.
    """
    records.note_queue_result(session, call_sid, result)
    shard = pen.release(r, call_sid)
    if result == "queue-full":
        if shard:
            pen.reconcile(r, shard, queue_settings(settings).twilio_queue_max_size)
        return None
    reason = QUEUE_RESULT_REASON.get(result)
    if reason is None:
        return None
    s = dsp.caller_left(r, call_sid, now, reason, settings)
    _record_left(session, call_sid, s)
    return s


def left_for_callback(
    session: Session, r: redis.Redis, call_sid: str, now: Now, settings: Config | QueueSettings,
) -> Settled:
    """The caller booked a callback from the hold loop: out of the order (`to_callback`), before their <Leave>."""
    pen.release(r, call_sid)
    s = dsp.caller_left(r, call_sid, now, "callback", settings)
    _record_left(session, call_sid, s)
    return s


@dataclass(frozen=True)
class Ended:
    """What a call's final status closed: its record, and agents' legs nothing else will end (to hang up)."""

    record: records.CallRecord
    legs: tuple[str, ...]
    freed_agent: str | None


def call_status(
    session: Session, r: redis.Redis, call_sid: str, status: str, now: Now, settings: Config | QueueSettings,
) -> Ended | None:
    """/voice/status: on a final status, close everything still open for the call, and write how an answered
    call was handled (holds, agents, transfers). 2 round trips, 3 for an answered call."""
    if status not in TERMINAL_CALL_STATUSES:
        return None
    pen.release(r, call_sid)
    s = dsp.caller_left(r, call_sid, now, "ended", settings)
    _record_left(session, call_sid, s)
    if s.outcome == "answered" and s.at is not None and s.agent:
        records.note_answered(session, call_sid, agent=s.agent, now=s.at)
    if s.outcome == "answered":
        handling_figures(session, r, call_sid, now)
    rec = records.close_call(session, call_sid, call_status=status, now=now,
                             short_abandon_s=queue_settings(settings).short_abandon_s)
    return Ended(rec, s.legs, s.agent if s.changed else None)


def handling_figures(session: Session, r: redis.Redis, call_sid: str, now: Now) -> None:
    """Write how the answered call was handled (agents, holds, transfers) as Redis has it now. 1 round trip."""
    h = conference.handling(r, call_sid, clock.to_ms(now))
    handling.note_handling(session, call_sid, agents=h.agents, hold_count=h.hold_count, hold_s=h.hold_s,
                           transfers=h.transfers)


def _record_left(session: Session, call_sid: str, s: Settled) -> None:
    """Write an unanswered exit Redis recorded, at the time Redis first recorded it."""
    if s.outcome in LEFT and s.at is not None:
        records.note_left(session, call_sid, outcome=s.outcome, now=s.at, waited_s=s.waited_s, unheard=s.unheard)
