"""Dispatch: pair the best caller with the longest-idle agent atomically, and settle how it ends.

`claim_next` is one Lua script: no caller goes to two agents and no agent gets two callers,
whatever number of processes call it at once. It never talks to Twilio: it returns the pairing
and the edge asks the gateway to ring the agent, calling `undo_claim` if that fails.

Call states in the call hash: waiting → offered (the agent's device rings; the caller still holds in
their Twilio queue) → connected (the agent answered; both meet in the call's conference) → ended.
Each function below is one script and is idempotent: a repeated or late event finds the state
already moved on and changes nothing (it returns what was recorded the first time). An offer that
comes to nothing is missed.py's; the agent's leg ending is agent_leg.py's; transfers are transfer.py's; asking
for a dispatch run is trigger.py's. (A little over 300 lines: the claim, the answer and the caller's leaving are
one state machine, each script reading the fields the others write.)
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
      agent_to(login, 'on_call', now, nil, 'offered')
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
  release_agent(login, sid, now, 'keep', 'offer_stale')
  redis.call('ZREM', OFFERS, sid)
end
return {#settled, #stale}
""")

_ANSWERED = Lua("""
local sid, login, now, leg = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ck = callkey(sid)
local st = redis.call('HGET', ck, 'state')
local rung = redis.call('HGET', ck, 'leg')
-- a leg of an earlier offer to the same agent answering late is not this offer's answer
if st == 'offered' and redis.call('HGET', ck, 'agent') == login and (not rung or leg == '' or rung == leg) then
  local tier = redis.call('HGET', ck, 'tier')
  redis.call('ZREM', OFFERS, sid)
  redis.call('ZREM', tierkey(tier), sid)
  local agents = redis.call('HGET', ck, 'agents')
  redis.call('HSET', ck, 'agents', agents and (agents .. ',' .. login) or login)
  if leg ~= '' then redis.call('HSET', ck, 'leg', leg) end
  redis.call('HDEL', agentkey(login), 'missed', 'reason')  -- an answered offer ends a run of missed ones
  if redis.call('HEXISTS', ck, 'answered') == 1 then
    -- back from a transfer to the queue: the call was answered (and counted) once already
    redis.call('HSET', ck, 'state', 'connected')
    return {1, 'connected', redis.call('HGET', ck, 'waited'), redis.call('HGET', ck, 'answered')}
  end
  local wait = math.max(0, tonumber(now) - tonumber(redis.call('HGET', ck, 'queued')))
  redis.call('HSET', ck, 'state', 'connected', 'answered', now, 'waited', wait)
  bump(tier, 'answered', 1)
  bump(tier, 'wait_ms', wait)
  if wait <= tonumber(redis.call('HGET', ck, 'sl_ms')) then bump(tier, 'answered_sl', 1) end
  return {1, 'connected', wait, now}
end
return {0, st or '', redis.call('HGET', ck, 'waited') or -1, redis.call('HGET', ck, 'answered') or -1}
""")

# KEYS: the counters of now (day, minute), then those of the call's answer (ARGV[6] says which answer they are
# for: '' when unknown; the script asks for them, answering {-1, answered}, when it has an answer to take back).
_LEAVE = Lua("""
local sid, now, reason, short_ms, wrap_ms, keys_of = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local ck = callkey(sid)
local st = redis.call('HGET', ck, 'state')
-- An answer the caller never heard: their agent picked up, but they were never moved into the conference (they
-- left their Twilio queue during the whisper, or were back in line after that agent left first) nor transferred
-- (which needs them in it). Leaving the queue then, they abandon: the answer is taken back.
local answered = redis.call('HGET', ck, 'answered')
local unheard = answered and redis.call('HGET', ck, 'caller_in') ~= '1' and not redis.call('HGET', ck, 'xfer_from')
if st == 'connected' and reason == 'ended' then unheard = false end  -- the status callback alone: below
if st == 'waiting' or st == 'offered' or (st == 'connected' and unheard) then
  if unheard and answered ~= keys_of then return {-1, answered} end  -- KEYS[3..4] are not its counters
  local tier = redis.call('HGET', ck, 'tier')
  local wait = math.max(0, tonumber(now) - tonumber(redis.call('HGET', ck, 'queued')))
  redis.call('ZREM', ORDER, sid)
  redis.call('ZREM', tierkey(tier), sid)
  local login = redis.call('HGET', ck, 'agent')
  -- still ringing (to be cancelled), or answered and alone in the conference (to be ended: the agent is free,
  -- to wrap-up, when that leg has ended, so their device never holds two calls: agent_leg.py)
  local leg = st ~= 'waiting' and redis.call('HGET', ck, 'leg') or ''
  if st == 'offered' and leg ~= '' then
    -- hung up while the agent's device rang: the agent did nothing wrong and keeps their turn, once that leg has
    -- stopped ringing (missed.py, on its status), so their device never rings for two callers at once. The offer
    -- stays in OFFERS: the sweep frees them if that status never comes.
  else
    redis.call('ZREM', OFFERS, sid)
    -- hung up while the agent's call was being placed: it is cancelled as soon as it is (agent_dialled)
    if st == 'offered' and release_agent(login, sid, now, 'keep', 'caller_left') == 0 then login = false end
  end
  if answered and not unheard then
    -- transferred back to the queue after an answer: an answered call still, not an abandon
    redis.call('HSET', ck, 'state', 'ended', 'outcome', 'answered', 'ended', now)
    return {1, 'answered', redis.call('HGET', ck, 'waited'), answered, login or '', leg}
  end
  if unheard then
    local waited = tonumber(redis.call('HGET', ck, 'waited'))
    local in_sl = waited <= tonumber(redis.call('HGET', ck, 'sl_ms'))
    for _, k in ipairs({KEYS[3], KEYS[4]}) do
      redis.call('HINCRBY', k, tier .. ':answered', -1)
      redis.call('HINCRBY', k, tier .. ':wait_ms', -waited)
      if in_sl then redis.call('HINCRBY', k, tier .. ':answered_sl', -1) end
    end
    redis.call('HDEL', ck, 'answered', 'waited')
  end
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
  return {1, outcome, wait, now, login or '', leg, unheard and 1 or 0}
end
if st == 'connected' and reason == 'ended' then
  -- the caller's call ended mid-conversation, before the agent's leg reported its end: finish it here
  local login = redis.call('HGET', ck, 'agent')
  redis.call('HSET', ck, 'state', 'ended', 'outcome', 'answered', 'ended', now)
  local ak = agentkey(login)
  if redis.call('HGET', ak, 'state') == 'on_call' and redis.call('HGET', ak, 'call') == sid then
    wrap_up(login, now, wrap_ms)
  end
  -- legs the conference will not end for us: the agent's, when the caller never joined it; a transfer target's
  local legs = {}
  local leg, xleg = redis.call('HGET', ck, 'leg'), redis.call('HGET', ck, 'xfer_leg')
  if leg and redis.call('HGET', ck, 'caller_in') ~= '1' then legs[#legs + 1] = leg end
  local to = redis.call('HGET', ck, 'xfer_to')
  if to then
    if xleg and redis.call('HGET', ck, 'xfer_state') == 'ringing' then legs[#legs + 1] = xleg end
    release_agent(to, sid, now, 'keep', 'caller_left')
    redis.call('HDEL', ck, 'xfer_to', 'xfer_mode', 'xfer_by', 'xfer_at', 'xfer_leg', 'xfer_state')
  end
  return {1, 'answered', redis.call('HGET', ck, 'waited'), redis.call('HGET', ck, 'answered'), login,
          table.concat(legs, ',')}
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
    legs: tuple[str, ...] = ()  # agents' calls still ringing or open that nothing else will end: to hang up
    unheard: bool = False  # the caller left after an answer they never heard: that answer was taken back


def _settled(reply: list[Any]) -> Settled:
    changed, outcome, wait, at = int(reply[0]), text(reply[1]), float(reply[2]), float(reply[3])
    agent = text(reply[4]) if len(reply) > 4 and reply[4] else None
    legs = tuple(x for x in text(reply[5]).split(",") if x) if len(reply) > 5 and reply[5] else ()
    unheard = len(reply) > 6 and int(reply[6]) == 1
    return Settled(bool(changed), outcome, None if wait < 0 else wait / 1000, None if at < 0 else at / 1000, agent,
                   legs, unheard)


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


def answered(r: redis.Redis, call_sid: str, login: str, now: Now, settings: Config | QueueSettings,
             leg: str = "") -> Settled:
    """The agent picked up (`leg`: their call): the caller's wait ends; counts answered, wait and service level.
    1 round trip."""
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    day, minute = clock.bucket_keys(ms, qs.tz)
    return _settled(_ANSWERED(r, [day, minute], [call_sid, login, ms, leg]))


def caller_left(r: redis.Redis, call_sid: str, now: Now, reason: str, settings: Config | QueueSettings) -> Settled:
    """A waiting or ringing caller left the queue: `hangup` (abandoned), `callback`, `failed`, or `ended`.

    `ended` (the status callback) also closes a connected call and starts the agent's wrap-up.
    A caller who hangs up while an agent is being rung is counted as abandoned and the agent is
    available again at their old place. So is one who leaves their Twilio queue after their agent answered but
    before they were moved into the conference (during the whisper): the answer, which they never heard, is taken
    back (`Settled.unheard`). Idempotent, 1 round trip (2 when an answer is taken back: its counters are found
    from its time).
    """
    if reason not in LEAVE_REASONS:
        raise ValueError(f"reason: must be one of {', '.join(LEAVE_REASONS)}")
    qs = queue_settings(settings)
    ms = clock.to_ms(now)
    day, minute = clock.bucket_keys(ms, qs.tz)
    wrap_ms = round(qs.wrap_up_s * 1000)
    answer_keys, answer_ms = [day, minute], ""
    for _ in range(3):  # the answer's time never changes once recorded: the second round finds it as asked
        reply = _LEAVE(r, [day, minute, *answer_keys], [call_sid, ms, reason, qs.short_abandon_ms, wrap_ms, answer_ms])
        if int(reply[0]) != -1:
            return _settled(reply)
        answer_ms = text(reply[1])
        answer_keys = list(clock.bucket_keys(int(answer_ms), qs.tz))
    raise RuntimeError(f"call {call_sid}: its answer's time kept changing")


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
