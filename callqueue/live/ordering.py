"""The queue order: one sorted set, score = arrival epoch seconds − boost(tier), lowest served first.

A premium caller with a 600 s boost is served as if they had called ten minutes earlier; a
standard caller who has waited longer than that is served before a premium caller who has just
called, so every wait is bounded. Every operation is O(log n) in the number of waiting callers.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, flag, scored_range, text
from callqueue.settings import QueueSettings, queue_settings
from core import keys
from core.config import Config

_ENQUEUE = Lua("""
local sid = ARGV[1]
local ck = callkey(sid)
local state = redis.call('HGET', ck, 'state')
local new = 0
if not state then
  local tier, score, now = ARGV[2], ARGV[3], ARGV[4]
  redis.call('HSET', ck, 'state', 'waiting', 'tier', tier, 'score', score, 'queued', now, 'sl_ms', ARGV[5],
             'category', ARGV[6], 'verified', ARGV[7], 'member', ARGV[8], 'offers', 0)
  redis.call('EXPIRE', ck, CALL_TTL)
  -- NX: a member already in the order keeps its score, whatever a retried request says
  redis.call('ZADD', ORDER, 'NX', score, sid)
  redis.call('ZADD', tierkey(tier), 'NX', now, sid)
  bump(tier, 'offered', 1)
  state, new = 'waiting', 1
end
local rank = redis.call('ZRANK', ORDER, sid)
return {new, state, redis.call('HGET', ck, 'score'), redis.call('HGET', ck, 'queued'), rank or -1,
        redis.call('ZCARD', AVAIL)}
""")

_REMOVE = Lua("""
local sid = ARGV[1]
local ck = callkey(sid)
local tier = redis.call('HGET', ck, 'tier')
local n = redis.call('ZREM', ORDER, sid)
if tier then redis.call('ZREM', tierkey(tier), sid) end
redis.call('ZREM', OFFERS, sid)
local state = redis.call('HGET', ck, 'state')
if state == 'waiting' or state == 'offered' then
  redis.call('HSET', ck, 'state', 'ended', 'outcome', 'removed', 'left', ARGV[2])
end
return n
""")


# The waitUrl's whole read in one script (it is three quarters of all webhook requests): the call hash
# (noting the Twilio QueueSid when given), the caller's rank, the answers per minute over the estimate's
# window, and one more hash the edge names (the IVR session), so a hold-loop request costs 1 round trip.
_WAIT_STATUS = Lua("""
local sid, qsid, extra = ARGV[1], ARGV[2], ARGV[3]
local first, last = tonumber(ARGV[4]), tonumber(ARGV[5])
local ck = callkey(sid)
if qsid ~= '' and redis.call('EXISTS', ck) == 1 then redis.call('HSET', ck, 'queue_sid', qsid) end
local rank = redis.call('ZRANK', ORDER, sid)
local total, oldest = 0, -1
for m = first, last do
  for _, v in ipairs(redis.call('HMGET', MINUTEKEY .. m, unpack(ARGV, 6))) do
    if v then
      local n = tonumber(v)
      if n > 0 and oldest < 0 then oldest = m end
      total = total + n
    end
  end
end
local more = {}
if extra ~= '' then more = redis.call('HGETALL', extra) end
return {redis.call('HGETALL', ck), rank or -1, total, oldest, more}
""".replace("MINUTEKEY", repr(keys.stats_minute(0)[:-1])))


@dataclass(frozen=True)
class Enqueued:
    """The caller's place after `enqueue`; `new` is False when the call was already known."""

    call_sid: str
    new: bool
    state: str  # waiting | offered | connected | ended
    score: float
    queued_at: float  # epoch seconds the call first joined the queue
    position: int | None  # 1-based, None unless waiting
    agents_available: int = 0  # so the edge asks for a dispatch only when someone could answer


@dataclass(frozen=True)
class CallerStatus:
    """What the waitUrl needs to tell a caller."""

    call_sid: str
    state: str | None  # None: unknown call
    tier: str | None
    position: int | None
    waited_s: float
    max_wait_exceeded: bool
    score: float | None
    pen: str | None
    queue_sid: str | None


def score_for(tier: str, now: Now, settings: Config | QueueSettings) -> float:
    """The order score of a caller of `tier` arriving at `now`: epoch seconds minus the tier's boost."""
    return clock.to_epoch(now) - queue_settings(settings).boost(tier)


def enqueue(
    r: redis.Redis, call_sid: str, *, tier: str, now: Now, settings: Config | QueueSettings,
    category: str = "", verified: bool = False, member_uid: str | None = None, score: float | None = None,
) -> Enqueued:
    """Put a caller in the order, once per CallSid (a retried webhook changes nothing). 1 round trip.

    `score` overrides the computed one: a callback call keeps the score of the call it replaces.
    Counts the call as offered to the queue (first time only).
    """
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    s = score if score is not None else score_for(tier, ms / 1000, qs)
    day, minute = clock.bucket_keys(ms, qs.tz)
    new, state, stored_score, queued, rank, available = _ENQUEUE(
        r, [day, minute],
        [call_sid, tier, repr(float(s)), ms, qs.service_level_ms(tier), category, flag(verified), member_uid or ""],
    )
    return Enqueued(
        call_sid=call_sid, new=bool(new), state=text(state), score=float(stored_score),
        queued_at=int(queued) / 1000, position=int(rank) + 1 if int(rank) >= 0 else None,
        agents_available=int(available),
    )


def enqueue_many(
    r: redis.Redis, calls: Iterable[tuple[str, str]], now: Now, settings: Config | QueueSettings, chunk: int = 1000,
) -> int:
    """Enqueue many (call_sid, tier) pairs arriving 1 ms apart from `now` (bench, demo data); return how many were new.

    One pipeline per `chunk` calls: ceil(n / chunk) round trips.
    """
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    new = 0
    pipe = r.pipeline(transaction=False)
    for i, (sid, tier) in enumerate(calls):
        t = ms + i
        _ENQUEUE(pipe, clock.bucket_keys(t, qs.tz),
                 [sid, tier, repr(t / 1000 - qs.boost(tier)), t, qs.service_level_ms(tier), "", "0", ""])
        if len(pipe) >= chunk:
            new += sum(int(reply[0]) for reply in pipe.execute())
    if len(pipe):
        new += sum(int(reply[0]) for reply in pipe.execute())
    return new


def remove(r: redis.Redis, call_sid: str, now: Now) -> bool:
    """Take a caller out of the order without counting an outcome (an operator's action). 1 round trip."""
    return bool(_REMOVE(r, [], [call_sid, clock.to_ms(now)]))


def position(r: redis.Redis, call_sid: str) -> int | None:
    """1-based place in service order, None when not waiting. 1 round trip (ZRANK, O(log n))."""
    rank = r.zrank(keys.ORDER, call_sid)  # an int; None when not in the order (a list only with WITHSCORE)
    return rank + 1 if isinstance(rank, int) else None


def original_score(r: redis.Redis, call_sid: str) -> float | None:
    """The score a call joined with (a callback ticket keeps it). 1 round trip."""
    value = r.hget(keys.call(call_sid), "score")
    return None if value is None else float(value)




def status(r: redis.Redis, call_sid: str, now: Now, settings: Config | QueueSettings) -> CallerStatus:
    """The caller's state, position, time waited and whether the tier's max wait is passed. 1 round trip."""
    qs = queue_settings(settings)
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.call(call_sid))
    pipe.zrank(keys.ORDER, call_sid)
    h, rank = pipe.execute()
    return _caller_status(call_sid, {text(k): text(v) for k, v in h.items()}, -1 if rank is None else int(rank),
                          clock.to_ms(now), qs)


@dataclass(frozen=True)
class WaitStatus:
    """`status` plus the answers measured in the estimate's window and the extra hash asked for."""

    caller: CallerStatus
    answered: int  # answers in the window
    oldest_minute: int | None  # the first minute (epoch s // 60) with an answer, None with none
    extra: dict[str, str]


def wait_status(
    r: redis.Redis, call_sid: str, now: Now, settings: Config | QueueSettings, *,
    queue_sid: str | None = None, window_minutes: int = clock.WINDOW_MINUTES, extra_hash: str = "",
) -> WaitStatus:
    """The waitUrl's read: caller status, answers over the last `window_minutes`, and `extra_hash`. 1 round trip.

    Notes `queue_sid` on a known call (the REST move needs it); never creates a call hash.
    """
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    last = ms // 60000
    fields = [keys.counter_field(t, "answered") for t in qs.tiers]
    h, rank, total, oldest, more = _WAIT_STATUS(
        r, [], [call_sid, queue_sid or "", extra_hash, last - (window_minutes - 1), last, *fields])
    return WaitStatus(
        caller=_caller_status(call_sid, _pairs(h), int(rank), ms, qs), answered=int(total),
        oldest_minute=None if int(oldest) < 0 else int(oldest), extra=_pairs(more),
    )


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _caller_status(call_sid: str, h: dict[str, str], rank: int, now_ms: int, qs: QueueSettings) -> CallerStatus:
    tier = h.get("tier")
    waited = max(0, now_ms - int(h["queued"])) / 1000 if "queued" in h else 0.0
    limit = qs.max_wait_s.get(tier or "")
    return CallerStatus(
        call_sid=call_sid, state=h.get("state"), tier=tier,
        position=None if rank < 0 else rank + 1, waited_s=waited,
        max_wait_exceeded=limit is not None and h.get("state") == "waiting" and waited >= float(limit),
        score=float(h["score"]) if "score" in h else None, pen=h.get("pen"), queue_sid=h.get("queue_sid"),
    )


class TierWaiting(TypedDict):
    """One tier in `tier_summary`: callers waiting and the longest current wait in seconds."""

    waiting: int
    longest_wait_s: float


def tier_summary(r: redis.Redis, tiers: list[str], now: Now) -> dict[str, TierWaiting]:
    """Per tier: callers waiting (incl. ringing an agent) and the longest current wait in seconds.

    1 round trip (ZCARD and the first member of each tier's set: O(log n) each).
    """
    pipe = r.pipeline(transaction=False)
    for tier in tiers:
        pipe.zcard(keys.tier_waiting(tier))
        pipe.zrange(keys.tier_waiting(tier), 0, 0, withscores=True)
    replies = pipe.execute()
    ms = clock.to_ms(now)
    out: dict[str, TierWaiting] = {}
    for i, tier in enumerate(tiers):
        count, first = replies[2 * i], replies[2 * i + 1]
        longest = max(0, ms - int(first[0][1])) / 1000 if first else 0.0
        out[tier] = {"waiting": int(count), "longest_wait_s": longest}
    return out






def in_order(r: redis.Redis, start: int = 0, count: int = 50) -> list[dict[str, Any]]:
    """Waiting callers in service order, from 0-based `start`: sid, position, score, tier, queued_at.

    2 round trips (ZRANGE, then one pipeline of HMGET): O(log n + count).
    """
    members = scored_range(r, keys.ORDER, start, start + count - 1)
    pipe = r.pipeline(transaction=False)
    for sid, _ in members:
        pipe.hmget(keys.call(sid), "tier", "queued", "category", "verified")
    rows = pipe.execute() if members else []
    out = []
    # One HMGET reply per member.
    for i, ((sid, score), (tier, queued, category, verified)) in enumerate(zip(members, rows, strict=True)):
        out.append({
            "call_sid": sid, "position": start + i + 1, "score": score, "tier": text(tier),
            "queued_at": int(queued) / 1000 if queued else None, "category": text(category),
            "verified": text(verified) == "1",
        })
    return out
