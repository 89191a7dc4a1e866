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
| agent available / caller joined / caller back | `dispatch` in a loop → Offer, then gateway move |
| gateway move failed | `move_failed` |
| agent leg answered (whisper URL) | `agent_answered` |
| `<Dial action>` | `dial_result` → "done" or "requeue" (then `join_queue` + `<Enqueue>` again) |
| `<Enqueue action>` | `queue_result` |
| /voice/status | `call_status` |
"""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy.orm import Session

from callqueue import clock, records
from callqueue.clock import Now
from callqueue.live import dispatch as dsp
from callqueue.live import estimate, ordering, pen
from callqueue.live.dispatch import Offer, Settled
from callqueue.settings import QueueSettings, queue_settings
from core import keys
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


def move_failed(
    session: Session,
    r: redis.Redis,
    offer: Offer,
    now: Now,
    settings: Config | QueueSettings,
    *,
    caller_gone: bool = False,
) -> Settled | None:
    """The gateway could not move the caller: back in line and agent freed (undo_claim).

    `caller_gone`: Twilio says the call is over or no longer queued (404): the caller left instead.
    """
    if caller_gone:
        s = dsp.caller_left(r, offer.call_sid, now, "hangup", settings)
        _record_left(session, offer.call_sid, s)
        return s
    dsp.undo_claim(r, offer.call_sid, offer.agent, now)
    return None


def agent_answered(
    session: Session, r: redis.Redis, call_sid: str, agent: str, now: Now, settings: Config | QueueSettings
) -> Settled:
    """The agent picked up (their leg requested the whisper): the caller's wait ends. 1 round trip."""
    s = dsp.answered(r, call_sid, agent, now, settings)
    if s.outcome == "connected" and s.at is not None:
        records.note_answered(session, call_sid, agent=agent, now=s.at)
    return s


def dial_result(
    session: Session, r: redis.Redis, call_sid: str, agent: str, dial_status: str, now: Now,
    settings: Config | QueueSettings,
) -> str:
    """`<Dial action>`: "done" after a conversation (agent to wrap-up), "requeue" when the agent did not answer,
    "gone" when the caller hung up meanwhile (nothing left to do but hang up). 1-3 round trips.

    On "requeue" the caller is already back at the same score: call `join_queue` and return `<Enqueue>`.
    """
    records.note_dial_status(session, call_sid, dial_status)
    if dial_status in ANSWERED_DIAL:
        agent_answered(session, r, call_sid, agent, now, settings)  # no-op when the whisper reported it
        dsp.completed(r, call_sid, agent, now, settings)
        return "done"
    if dial_status == "canceled":
        # The caller hung up while the agent's phone rang: an abandon, and the agent did nothing wrong
        # (they keep their turn instead of being set away for a missed call).
        _record_left(session, call_sid, dsp.caller_left(r, call_sid, now, "hangup", settings))
        return "gone"
    caller_back, _ = dsp.no_answer(r, call_sid, agent, now, settings)
    # a retried dial action finds the caller already waiting: still "requeue"
    return "requeue" if caller_back or r.hget(keys.call(call_sid), "state") == "waiting" else "gone"


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


def call_status(
    session: Session, r: redis.Redis, call_sid: str, status: str, now: Now, settings: Config | QueueSettings,
) -> records.CallRecord | None:
    """/voice/status: on a final status, close everything still open for the call. 2 round trips."""
    if status not in TERMINAL_CALL_STATUSES:
        return None
    pen.release(r, call_sid)
    s = dsp.caller_left(r, call_sid, now, "ended", settings)
    _record_left(session, call_sid, s)
    if s.outcome == "answered" and s.at is not None and s.agent:
        records.note_answered(session, call_sid, agent=s.agent, now=s.at)
    return records.close_call(session, call_sid, call_status=status, now=now,
                              short_abandon_s=queue_settings(settings).short_abandon_s)


def _record_left(session: Session, call_sid: str, s: Settled) -> None:
    """Write an unanswered exit Redis recorded, at the time Redis first recorded it."""
    if s.outcome in LEFT and s.at is not None:
        records.note_left(session, call_sid, outcome=s.outcome, now=s.at, waited_s=s.waited_s)
