"""Transfers of a connected call: to another agent (cold or warm) or back to the queue, each one atomic in Redis.

The call hash holds one transfer at a time: `xfer_to` (the target's login), `xfer_mode` (cold | warm), `xfer_by`,
`xfer_at`, `xfer_leg` (the target's call) and `xfer_state` (ringing; for a warm transfer answered, then consulting
once the target is in the conference). The
target agent is reserved when the transfer starts (on a call, for this caller), so dispatch never offers them
another caller meanwhile.

- cold: the first agent leaves once the target rings (their wrap-up starts when their leg ends), the caller holds;
  the target becomes the call's agent when they answer; if they do not, the caller goes back to the queue at
  their original score.
- warm: the caller holds while the first agent talks to the target; `complete` hands the call over (the first
  agent to wrap-up), `cancel` or a target who does not answer keeps it with the first agent.
- to the queue: the caller is back in our order at their original score (tier, category and verification
  kept) and the agent starts wrap-up; whoever answers next sees who transferred it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, text
from callqueue.settings import QueueSettings, queue_settings
from core import keys
from core.config import Config

MODES = ("cold", "warm")

# ARGV: sid, by, to, mode, now. Answers the transfer's number (1, 2, … for the call) or why not. The first agent
# of a cold transfer starts wrap-up when their leg ends (agent_leg.completed), right after the target is rung.
_START = Lua("""
local sid, by, to, mode, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ck = callkey(sid)
if redis.call('HGET', ck, 'state') ~= 'connected' then return 'not_connected' end
if redis.call('HGET', ck, 'agent') ~= by then return 'not_yours' end
if redis.call('HGET', ck, 'xfer_to') then return 'transfer_pending' end
if to == by then return 'same_agent' end
local tk = agentkey(to)
settle_wraps(now, 100)
if redis.call('HGET', tk, 'state') ~= 'available' or not redis.call('HGET', tk, 'endpoint') then
  return 'target_unavailable'
end
agent_to(to, 'on_call', now, nil, 'transfer_offered')
redis.call('HSET', tk, 'call', sid, 'idle', now)
redis.call('HSET', ck, 'xfer_to', to, 'xfer_mode', mode, 'xfer_by', by, 'xfer_at', now, 'xfer_state', 'ringing')
return redis.call('HINCRBY', ck, 'transfers', 1)
""")

_DIALLED = Lua("""
local ck = callkey(ARGV[1])
if redis.call('HGET', ck, 'xfer_to') ~= ARGV[2] then return 0 end
redis.call('HSET', ck, 'xfer_leg', ARGV[3])
return 1
""")

# The target answered: warm → consulting; cold → they are the call's agent now. Answers the mode, or ''.
_ANSWERED = Lua("""
local ck, to, leg = callkey(ARGV[1]), ARGV[2], ARGV[3]
if redis.call('HGET', ck, 'xfer_to') ~= to or redis.call('HGET', ck, 'xfer_state') ~= 'ringing' then return '' end
local mode = redis.call('HGET', ck, 'xfer_mode')
redis.call('HDEL', agentkey(to), 'missed', 'reason')
if mode == 'warm' then
  -- consulting once they are in the conference (target_joined): a hand-over before that would reach no one
  redis.call('HSET', ck, 'xfer_state', 'answered', 'xfer_leg', leg)
  return 'warm'
end
local agents = redis.call('HGET', ck, 'agents')
redis.call('HSET', ck, 'agent', to, 'leg', leg, 'agents', agents and (agents .. ',' .. to) or to,
           'xfer_from', redis.call('HGET', ck, 'xfer_by') or '')
redis.call('HDEL', ck, 'xfer_to', 'xfer_mode', 'xfer_by', 'xfer_at', 'xfer_leg', 'xfer_state', 'muted')
return 'cold'
""")

# The warm transfer's target joined the conference (their leg ARGV[2]): the consultation begins.
_JOINED = Lua("""
local ck = callkey(ARGV[1])
if redis.call('HGET', ck, 'xfer_leg') ~= ARGV[2] or redis.call('HGET', ck, 'xfer_state') ~= 'answered' then
  return 0
end
redis.call('HSET', ck, 'xfer_state', 'consulting')
return 1
""")

# A warm transfer completes: the target is the call's agent, the first agent starts wrap-up. Answers the first
# agent's leg (to hang up), or '' when no consultation is under way.
_COMPLETE = Lua("""
local sid, now, wrap_ms = ARGV[1], ARGV[2], ARGV[3]
local ck = callkey(sid)
if redis.call('HGET', ck, 'xfer_state') ~= 'consulting' then return '' end
local by, to = redis.call('HGET', ck, 'agent'), redis.call('HGET', ck, 'xfer_to')
local leg = redis.call('HGET', ck, 'xfer_leg')
local old_leg = redis.call('HGET', ck, 'leg') or ''
local agents = redis.call('HGET', ck, 'agents')
redis.call('HSET', ck, 'agent', to, 'leg', leg, 'agents', agents and (agents .. ',' .. to) or to, 'xfer_from', by)
redis.call('HDEL', ck, 'xfer_to', 'xfer_mode', 'xfer_by', 'xfer_at', 'xfer_leg', 'xfer_state', 'muted')
local ak = agentkey(by)
if redis.call('HGET', ak, 'state') == 'on_call' and redis.call('HGET', ak, 'call') == sid then
  wrap_up(by, now, wrap_ms)
end
return old_leg
""")

# The transfer ends without a hand-over (cancelled, or the target missed it). The target is free again (a missed
# transfer counts as a missed offer of theirs when `missed` is 1). Answers {mode, target leg, target} or {}.
_DROP = Lua("""
local sid, now, missed, only_to, only_leg = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_missed, away = tonumber(ARGV[6]), ARGV[7]
local ck = callkey(sid)
local to = redis.call('HGET', ck, 'xfer_to')
if not to or (only_to ~= '' and to ~= only_to) then return {} end
local mode, leg = redis.call('HGET', ck, 'xfer_mode'), redis.call('HGET', ck, 'xfer_leg') or ''
if only_leg ~= '' and leg ~= '' and leg ~= only_leg then return {} end  -- an older leg of the same target
redis.call('HDEL', ck, 'xfer_to', 'xfer_mode', 'xfer_by', 'xfer_at', 'xfer_leg', 'xfer_state')
local tk = agentkey(to)
if redis.call('HGET', tk, 'state') == 'on_call' and redis.call('HGET', tk, 'call') == sid then
  local target, why = 'keep', 'transfer_ended'
  if missed == '1' and redis.call('HINCRBY', tk, 'missed', 1) >= max_missed and away ~= 'available' then
    target, why = away, 'missed_offer'  -- a transfer not answered counts as a missed offer
  elseif missed == '1' then
    target = 'available'
  end
  release_agent(to, sid, now, target, why)
  if redis.call('HGET', tk, 'state') ~= 'available' and why == 'missed_offer' then
    redis.call('HSET', tk, 'reason', 'missed_offers')
    redis.call('HDEL', tk, 'missed')
  end
end
local first = redis.call('HGET', ck, 'agent')
local fk = agentkey(first or '')
local first_on = redis.call('HGET', fk, 'state') == 'on_call' and redis.call('HGET', fk, 'call') == sid
if mode == 'cold' and not first_on then
  -- the first agent left already: the caller goes back to the queue at their original score
  redis.call('HSET', ck, 'state', 'waiting', 'xfer_from', first or '')
  redis.call('HDEL', ck, 'agent', 'leg', 'held', 'muted', 'caller_in', 'conf_sid', 'caller_joined')
  redis.call('ZADD', ORDER, redis.call('HGET', ck, 'score'), sid)
  redis.call('ZADD', tierkey(redis.call('HGET', ck, 'tier')), redis.call('HGET', ck, 'queued'), sid)
  mode = 'requeued'
end
return {mode, leg, to}
""")

# Back to the queue: the caller waits again at their original score; the agent starts wrap-up. Answers the
# transfer's number or why not.
_TO_QUEUE = Lua("""
local sid, by, now, wrap_ms = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ck = callkey(sid)
if redis.call('HGET', ck, 'state') ~= 'connected' then return 'not_connected' end
if redis.call('HGET', ck, 'agent') ~= by then return 'not_yours' end
if redis.call('HGET', ck, 'xfer_to') then return 'transfer_pending' end
redis.call('HSET', ck, 'state', 'waiting', 'xfer_from', by)
redis.call('HDEL', ck, 'agent', 'leg', 'held', 'muted', 'conf_sid', 'caller_in', 'caller_joined')
local n = redis.call('HINCRBY', ck, 'transfers', 1)
redis.call('ZADD', ORDER, redis.call('HGET', ck, 'score'), sid)
redis.call('ZADD', tierkey(redis.call('HGET', ck, 'tier')), redis.call('HGET', ck, 'queued'), sid)
local ak = agentkey(by)
if redis.call('HGET', ak, 'state') == 'on_call' and redis.call('HGET', ak, 'call') == sid then
  wrap_up(by, now, wrap_ms)
end
return n
""")


class TransferRefused(ValueError):
    """A transfer the call's state does not allow; `reason` is a stable code, the message says it to people."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "not_connected": "the call is not connected to an agent",
        "not_yours": "only the agent on the call can transfer it",
        "transfer_pending": "a transfer of this call is already under way",
        "same_agent": "the call is already yours",
        "target_unavailable": "that agent is not available",
        "no_transfer": "no transfer of this call is under way",
        "not_consulting": "the target is not on the line yet",
    }

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGES.get(reason, reason))
        self.reason = reason


@dataclass(frozen=True)
class Dropped:
    """A transfer that ended without a hand-over: its mode (`requeued`: the caller went back to the queue), the
    target and their leg (to hang up if ringing)."""

    mode: str
    target: str
    target_leg: str | None


def _wrap_ms(settings: Config | QueueSettings) -> int:
    return round(queue_settings(settings).wrap_up_s * 1000)


def start(r: redis.Redis, call_sid: str, by: str, to: str, mode: str, now: Now) -> int:
    """Begin a transfer of `by`'s call to the agent `to`: the target is reserved (on a call, for this caller).
    Returns the transfer's number for the call (1, 2, …). TransferRefused when the call or the target does not
    allow it. 1 round trip."""
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}")
    result = _START(r, [], [call_sid, by, to, mode, clock.to_ms(now)])
    if not isinstance(result, int):
        raise TransferRefused(text(result))
    return result


def target_dialled(r: redis.Redis, call_sid: str, to: str, leg: str) -> bool:
    """The target's device is being rung by call `leg`. 1 round trip."""
    return bool(_DIALLED(r, [], [call_sid, to, leg]))


def target_answered(r: redis.Redis, call_sid: str, to: str, leg: str) -> str | None:
    """The target answered: "warm" (they consult with the first agent) or "cold" (the call is theirs now); None
    when this is no transfer of theirs any more (cancelled meanwhile). Idempotent, 1 round trip."""
    mode = text(_ANSWERED(r, [], [call_sid, to, leg]))
    return mode or None


def target_joined(r: redis.Redis, call_sid: str, leg: str) -> bool:
    """The warm transfer's target (on `leg`) is in the conference: they consult with the first agent now.
    1 round trip."""
    return bool(_JOINED(r, [], [call_sid, leg]))


def complete(r: redis.Redis, call_sid: str, now: Now, settings: Config | QueueSettings) -> str:
    """Hand a warm transfer over: the target is the call's agent; returns the first agent's leg (to hang up).
    TransferRefused("not_consulting") when the target is not on the line yet. 1 round trip."""
    leg: str = text(_COMPLETE(r, [], [call_sid, clock.to_ms(now), _wrap_ms(settings)]))
    if not leg:
        pending = r.hexists(keys.call(call_sid), "xfer_to")
        raise TransferRefused("not_consulting" if pending else "no_transfer")
    return leg


def drop(r: redis.Redis, call_sid: str, now: Now, settings: Config | QueueSettings, *, missed: bool,
         target: str = "", leg: str = "") -> Dropped | None:
    """End the transfer under way without a hand-over (cancelled, or `missed`: the target did not answer, which
    counts as a missed offer of theirs). The caller stays with the first agent, or, when that agent has left (a
    cold transfer), goes back to the queue at their original score: mode `requeued`. `target`/`leg`: only if the
    transfer is to that agent on that leg (a late event of an older transfer changes nothing). None when there
    is none. 1 round trip."""
    qs = queue_settings(settings)
    reply = _DROP(r, [], [call_sid, clock.to_ms(now), "1" if missed else "0", target, leg, qs.max_missed_offers,
                          qs.on_no_answer])
    if not reply:
        return None
    mode, dropped_leg, to = (text(x) for x in reply)
    return Dropped(mode, to, dropped_leg or None)


def to_queue(r: redis.Redis, call_sid: str, by: str, now: Now, settings: Config | QueueSettings) -> int:
    """`by`'s caller goes back to the queue at their original score; `by` starts wrap-up. Returns the transfer's
    number for the call. TransferRefused when the call does not allow it. 1 round trip."""
    result = _TO_QUEUE(r, [], [call_sid, by, clock.to_ms(now), _wrap_ms(settings)])
    if not isinstance(result, int):
        raise TransferRefused(text(result))
    return result
