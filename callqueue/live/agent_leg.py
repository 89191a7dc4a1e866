"""The agent's leg ends after they answered: the agent starts wrap-up, and the call is over, or (a transfer under
way) passes to its target, or (the caller never reached the conference) the caller is back in line.

The caller's own end (dispatch.caller_left with `ended`) may come first or second: whichever comes second finds
the call settled and changes nothing. A leg of an agent who no longer has the call (they transferred it) only
ends that agent's part.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, text
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

_COMPLETED = Lua("""
local sid, login, now, wrap_ms, may_hand_over = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ck = callkey(sid)
local outcome, handed = '', ''
if redis.call('HGET', ck, 'state') == 'connected' and redis.call('HGET', ck, 'agent') == login then
  if redis.call('HGET', ck, 'xfer_to') then
    local xstate = redis.call('HGET', ck, 'xfer_state')
    local answered = xstate == 'consulting' or xstate == 'answered'
    if answered and may_hand_over ~= '1' then
      outcome = 'transferring'  -- whether they hung up (the target takes over) is the conference's to say
    elseif answered then
      -- the first agent left mid-consultation: the target has the caller now
      handed = redis.call('HGET', ck, 'xfer_to')
      local agents = redis.call('HGET', ck, 'agents')
      redis.call('HSET', ck, 'agent', handed, 'leg', redis.call('HGET', ck, 'xfer_leg') or '',
                 'agents', agents and (agents .. ',' .. handed) or handed, 'xfer_from', login)
      redis.call('HDEL', ck, 'xfer_to', 'xfer_mode', 'xfer_by', 'xfer_at', 'xfer_leg', 'xfer_state', 'muted')
      outcome = 'handed_over'
    else
      -- the target still rings: they take the caller when they answer, as in a cold transfer
      redis.call('HSET', ck, 'xfer_mode', 'cold')
      outcome = 'transferring'
    end
  elseif redis.call('HGET', ck, 'caller_in') ~= '1' then
    -- the agent left before the caller was moved in: the caller, still in their Twilio queue, is back in line
    redis.call('HSET', ck, 'state', 'waiting')
    redis.call('HDEL', ck, 'agent', 'leg', 'held', 'muted', 'conf_sid', 'caller_joined')
    redis.call('ZADD', ORDER, redis.call('HGET', ck, 'score'), sid)
    redis.call('ZADD', tierkey(redis.call('HGET', ck, 'tier')), redis.call('HGET', ck, 'queued'), sid)
    outcome = 'requeued'
  else
    redis.call('HSET', ck, 'state', 'ended', 'outcome', 'answered', 'ended', now)
    outcome = 'ended'
  end
end
local ak = agentkey(login)
local freed = 0
if redis.call('HGET', ak, 'state') == 'on_call' and redis.call('HGET', ak, 'call') == sid then
  local talked = string.find(',' .. (redis.call('HGET', ck, 'agents') or '') .. ',', ',' .. login .. ',', 1, true)
  if talked then
    wrap_up(login, now, wrap_ms)
  else
    -- they picked up as the caller left (the offer had ended): nothing to wrap up, and their turn is kept
    redis.call('ZREM', OFFERS, sid)
    release_agent(login, sid, now, 'keep', 'caller_left')
  end
  freed = 1
end
return {outcome, freed, handed}
""")

@dataclass(frozen=True)
class Left:
    """What an agent's leaving their call did (`outcome`: ended | requeued | handed_over | transferring | '')."""

    outcome: str  # '' when it had been recorded before, or the agent was not the call's agent
    freed: bool  # the agent went to wrap-up now
    handed_to: str | None  # handed_over: the transfer target who has the caller now


def completed(r: redis.Redis, call_sid: str, login: str, now: Now, settings: Config | QueueSettings, *,
              may_hand_over: bool = False) -> Left:
    """The agent's leg ended after answering: the agent starts wrap-up, and the call is closed as answered, or
    (the caller never reached the conference) back in line, or passed to the transfer target.

    `may_hand_over`: the conference says the agent hung up (ReasonParticipantLeft participant_hung_up) while
    consulting a warm transfer's target, who then takes the caller. Their leg's own end cannot tell that from the
    conference ending under them (the caller hung up), so it never hands over. Idempotent, 1 round trip."""
    wrap_ms = round(queue_settings(settings).wrap_up_s * 1000)
    outcome, freed, handed = _COMPLETED(r, [], [call_sid, login, clock.to_ms(now), wrap_ms,
                                                "1" if may_hand_over else "0"])
    return Left(text(outcome), bool(freed), text(handed) or None)
