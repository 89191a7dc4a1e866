"""Dispatch: pair the best caller with the longest-idle agent atomically, and settle how it ends.

`claim_next` is one Lua script: no caller goes to two agents and no agent gets two callers,
whatever number of processes call it at once. It never talks to Twilio: it returns the pairing
and the edge asks the gateway to move the caller, calling `undo_claim` if that fails.

Call states in the call hash: waiting → offered (agent ringing) → connected (agent answered) →
ended. Each function below is one script and is idempotent: a repeated or late event finds the
state already moved on and changes nothing (it returns what was recorded the first time).
Asking for a dispatch run, only when one could pair someone, is trigger.py's part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, text
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

_CLAIM = Lua("""
local now = ARGV[1]
settle_wraps(now, 100)
for _ = 1, 100 do
  local first = redis.call('ZRANGE', AVAIL, 0, 0)
  if #first == 0 then return false end
  local login = first[1]
  local ak = agentkey(login)
  if redis.call('HGET', ak, 'state') ~= 'available' then
    redis.call('ZREM', AVAIL, login)  -- a stale entry: drop it and look again
  else
    -- Callbacks ringing a member with a better score than the best waiting caller each hold an agent:
    -- the member was promised that place, and answers into the queue seconds from now.
    if redis.call('EXISTS', CBRING) == 1 then
      local best = redis.call('ZRANGE', ORDER, 0, 0, 'WITHSCORES')
      if #best == 0 then return false end
      if redis.call('ZCARD', AVAIL) <= redis.call('ZCOUNT', CBRING, '-inf', best[2]) then return false end
    end
    local c = redis.call('ZPOPMIN', ORDER)
    if #c == 0 then return false end
    local sid = c[1]
    local ck = callkey(sid)
    -- a member whose call hash expired or moved on is dropped; the next one is tried
    if redis.call('HGET', ck, 'state') == 'waiting' then
      local idle = redis.call('ZSCORE', AVAIL, login)
      agent_to(login, 'on_call', now)
      redis.call('HSET', ak, 'call', sid, 'idle', idle)
      redis.call('HINCRBY', ck, 'offers', 1)
      redis.call('HSET', ck, 'state', 'offered', 'agent', login, 'offered', now)
      redis.call('ZADD', OFFERS, now, sid)
      local h = redis.call('HGETALL', ck)
      h[#h + 1] = 'sid'
      h[#h + 1] = sid
      h[#h + 1] = 'endpoint'
      h[#h + 1] = redis.call('HGET', ak, 'endpoint') or ''
      return h
    end
  end
end
return false
""")

_RETURN = Lua("""
local sid, login, now, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
return {caller_back(sid, login), release_agent(login, sid, now, target)}
""")

_SWEEP = Lua("""
local now, cutoff = ARGV[1], ARGV[2]
local settled = settle_wraps(now, 1000)
local stale = redis.call('ZRANGEBYSCORE', OFFERS, '-inf', cutoff, 'LIMIT', 0, 1000)
for _, sid in ipairs(stale) do
  local login = redis.call('HGET', callkey(sid), 'agent')
  caller_back(sid, login)
  release_agent(login, sid, now, 'keep')
  redis.call('ZREM', OFFERS, sid)
end
return {#settled, #stale}
""")

_ANSWERED = Lua("""
local sid, login, now = ARGV[1], ARGV[2], ARGV[3]
local ck = callkey(sid)
local st = redis.call('HGET', ck, 'state')
if st == 'offered' and redis.call('HGET', ck, 'agent') == login then
  local tier = redis.call('HGET', ck, 'tier')
  local wait = math.max(0, tonumber(now) - tonumber(redis.call('HGET', ck, 'queued')))
  redis.call('HSET', ck, 'state', 'connected', 'answered', now, 'waited', wait)
  redis.call('ZREM', OFFERS, sid)
  redis.call('ZREM', tierkey(tier), sid)
  bump(tier, 'answered', 1)
  bump(tier, 'wait_ms', wait)
  if wait <= tonumber(redis.call('HGET', ck, 'sl_ms')) then bump(tier, 'answered_sl', 1) end
  return {1, 'connected', wait, now}
end
return {0, st or '', redis.call('HGET', ck, 'waited') or -1, redis.call('HGET', ck, 'answered') or -1}
""")

_COMPLETED = Lua("""
local sid, login, now, wrap_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ck = callkey(sid)
local changed = 0
if redis.call('HGET', ck, 'state') == 'connected' and redis.call('HGET', ck, 'agent') == login then
  redis.call('HSET', ck, 'state', 'ended', 'outcome', 'answered', 'ended', now)
  changed = 1
end
local ak = agentkey(login)
local freed = 0
if redis.call('HGET', ak, 'state') == 'on_call' and redis.call('HGET', ak, 'call') == sid then
  wrap_up(login, now, wrap_ms)
  freed = 1
end
return {changed, freed}
""")

_LEAVE = Lua("""
local sid, now, reason, short_ms, wrap_ms = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local ck = callkey(sid)
local st = redis.call('HGET', ck, 'state')
if st == 'waiting' or st == 'offered' then
  local tier = redis.call('HGET', ck, 'tier')
  local wait = math.max(0, tonumber(now) - tonumber(redis.call('HGET', ck, 'queued')))
  redis.call('ZREM', ORDER, sid)
  redis.call('ZREM', tierkey(tier), sid)
  redis.call('ZREM', OFFERS, sid)
  local login = redis.call('HGET', ck, 'agent')
  -- hung up while an agent was being rung: the agent did nothing wrong and keeps their turn
  if st == 'offered' and release_agent(login, sid, now, 'keep') == 0 then login = false end
  local outcome
  if reason == 'callback' then
    outcome = 'to_callback'
    bump(tier, 'callback', 1)
  elseif reason == 'failed' then
    outcome = 'failed'
  elseif wait < short_ms then
    outcome = 'short_abandoned'
    bump(tier, 'short', 1)
  else
    outcome = 'abandoned'
    bump(tier, 'abandoned', 1)
    if wait > tonumber(redis.call('HGET', ck, 'sl_ms')) then bump(tier, 'abandoned_sl', 1) end
  end
  redis.call('HSET', ck, 'state', 'ended', 'outcome', outcome, 'left', now, 'waited', wait)
  return {1, outcome, wait, now, login or ''}
end
if st == 'connected' and reason == 'ended' then
  -- the call ended mid-conversation and the dial result has not come (yet): finish it here
  local login = redis.call('HGET', ck, 'agent')
  redis.call('HSET', ck, 'state', 'ended', 'outcome', 'answered', 'ended', now)
  local ak = agentkey(login)
  if redis.call('HGET', ak, 'state') == 'on_call' and redis.call('HGET', ak, 'call') == sid then
    wrap_up(login, now, wrap_ms)
  end
  return {1, 'answered', redis.call('HGET', ck, 'waited'), redis.call('HGET', ck, 'answered'), login}
end
return {0, redis.call('HGET', ck, 'outcome') or st or '', redis.call('HGET', ck, 'waited') or -1,
        redis.call('HGET', ck, 'left') or redis.call('HGET', ck, 'answered') or -1, ''}
""")

LEAVE_REASONS = ("hangup", "callback", "failed", "ended")


@dataclass(frozen=True)
class Offer:
    """A caller claimed for an agent: what the edge needs to move the call and what the agent sees."""

    call_sid: str
    agent: str
    endpoint: str  # "client:IDENTITY" or an E.164 number
    tier: str
    category: str
    verified: bool
    member_uid: str | None
    score: float
    queued_at: float  # epoch seconds
    offered_at: float
    attempt: int  # 1 for the first agent offered this caller, 2 after a no-answer, …
    pen: str | None  # the Twilio queue (shard) name the caller waits in
    queue_sid: str | None  # its QueueSid, when a waitUrl request reported it


@dataclass(frozen=True)
class Settled:
    """What an ending event recorded; `changed` is False when it had been recorded before."""

    changed: bool
    outcome: str  # connected | answered | abandoned | short_abandoned | to_callback | failed | '' (unknown call)
    waited_s: float | None
    at: float | None  # epoch seconds of the event as first recorded
    agent: str | None = None  # the agent freed by it, if any


def _settled(reply: list[Any]) -> Settled:
    changed, outcome, wait, at = int(reply[0]), text(reply[1]), float(reply[2]), float(reply[3])
    agent = text(reply[4]) if len(reply) > 4 and reply[4] else None
    return Settled(bool(changed), outcome, None if wait < 0 else wait / 1000, None if at < 0 else at / 1000, agent)


def claim_next(r: redis.Redis, now: Now) -> Offer | None:
    """Atomically pair the best caller with the longest-idle available agent; None if either is missing.

    Settles due wrap-ups first. 1 round trip.
    """
    reply = _CLAIM(r, [], [clock.to_ms(now)])
    if not reply:
        return None
    h = {text(reply[i]): text(reply[i + 1]) for i in range(0, len(reply), 2)}
    return Offer(
        call_sid=h["sid"], agent=h["agent"], endpoint=h["endpoint"], tier=h["tier"], category=h.get("category", ""),
        verified=h.get("verified") == "1", member_uid=h.get("member") or None, score=float(h["score"]),
        queued_at=int(h["queued"]) / 1000, offered_at=int(h["offered"]) / 1000, attempt=int(h.get("offers", 1)),
        pen=h.get("pen"), queue_sid=h.get("queue_sid"),
    )


def undo_claim(r: redis.Redis, call_sid: str, login: str, now: Now) -> tuple[bool, bool]:
    """The move failed: the caller goes back at the same score and the agent is available, keeping their turn.

    Returns (caller back, agent back). Atomic, idempotent, 1 round trip.
    """
    caller, agent = _RETURN(r, [], [call_sid, login, clock.to_ms(now), "keep"])
    return bool(caller), bool(agent)


def no_answer(
    r: redis.Redis, call_sid: str, login: str, now: Now, settings: Config | QueueSettings
) -> tuple[bool, bool]:
    """The agent did not answer: caller back at the same score, agent to queue.on_no_answer (away by default).

    Returns (caller back, agent moved). Atomic, idempotent, 1 round trip.
    """
    target = queue_settings(settings).on_no_answer
    caller, agent = _RETURN(r, [], [call_sid, login, clock.to_ms(now), target])
    return bool(caller), bool(agent)


def answered(r: redis.Redis, call_sid: str, login: str, now: Now, settings: Config | QueueSettings) -> Settled:
    """The agent picked up: the caller's wait ends; counts answered, wait and service level. 1 round trip."""
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    day, minute = clock.bucket_keys(ms, qs.tz)
    return _settled(_ANSWERED(r, [day, minute], [call_sid, login, ms]))


def completed(
    r: redis.Redis, call_sid: str, login: str, now: Now, settings: Config | QueueSettings
) -> tuple[bool, bool]:
    """The conversation ended: the call is closed as answered and the agent starts wrap-up.

    Returns (call closed now, agent moved to wrap-up). Idempotent, 1 round trip.
    """
    wrap_ms = round(queue_settings(settings).wrap_up_s * 1000)
    changed, freed = _COMPLETED(r, [], [call_sid, login, clock.to_ms(now), wrap_ms])
    return bool(changed), bool(freed)


def caller_left(r: redis.Redis, call_sid: str, now: Now, reason: str, settings: Config | QueueSettings) -> Settled:
    """A waiting or ringing caller left the queue: `hangup` (abandoned), `callback`, `failed`, or `ended`.

    `ended` (the status callback) also closes a connected call and starts the agent's wrap-up.
    A caller who hangs up while an agent is being rung is counted as abandoned and the agent is
    available again at their old place. Idempotent, 1 round trip.
    """
    if reason not in LEAVE_REASONS:
        raise ValueError(f"reason: must be one of {', '.join(LEAVE_REASONS)}")
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    day, minute = clock.bucket_keys(ms, qs.tz)
    wrap_ms = round(qs.wrap_up_s * 1000)
    return _settled(_LEAVE(r, [day, minute], [call_sid, ms, reason, qs.short_abandon_ms, wrap_ms]))


def sweep(r: redis.Redis, now: Now, settings: Config | QueueSettings, grace_s: float = 30) -> dict[str, int]:
    """For the worker: end due wrap-ups and return offers unanswered past ring timeout + grace. 1 round trip.

    An offer still open that long means the edge never reported the move or the dial result
    (a crash, a lost callback): the caller goes back at their score and the agent keeps their turn.
    """
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    cutoff = ms - round((qs.ring_timeout_s + grace_s) * 1000)
    settled, returned = _SWEEP(r, [], [ms, cutoff])
    return {"wrap_ups_ended": int(settled), "offers_returned": int(returned)}
