"""An offer that came to nothing: the agent's device rang out or was declined.

The caller never left their Twilio queue (the agent is rung first; the caller is moved only once the agent has
answered), so putting them back is only our order: same score, same place. The agent goes to the back of the
line, so the next offer goes to someone else first; after presence.max_missed_offers misses in a row they go
to queue.on_no_answer (away by default) with the reason `missed_offers`, which they and supervisors see.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, text
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

# The agent's leg rang out or was declined: the caller is back at the same score, and the agent is back in
# line (the end of it: the next offer goes to someone else first) or, after max_missed offers in a row,
# in the state `target` (queue.on_no_answer) with the reason said. A state chosen for after the call wins.
_MISSED = Lua("""
local sid, login, now, max_missed, target = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local ak = agentkey(login)
if redis.call('HGET', callkey(sid), 'state') == 'ended' then
  -- the caller left while this leg rang (dispatch.caller_left kept the agent for it): free, at their place, no miss
  redis.call('ZREM', OFFERS, sid)
  if release_agent(login, sid, now, 'keep', 'caller_left') == 0 then return {0, 0, '', 0} end
  return {0, 1, redis.call('HGET', ak, 'state'), 0}
end
local back = caller_back(sid, login)
if redis.call('HGET', ak, 'state') ~= 'on_call' or redis.call('HGET', ak, 'call') ~= sid then
  return {back, 0, '', 0}
end
local missed = redis.call('HINCRBY', ak, 'missed', 1)
local to = 'available'
if missed >= max_missed and target ~= 'available' then to = target end
release_agent(login, sid, now, to, 'missed_offer')
local now_state = redis.call('HGET', ak, 'state')
if now_state ~= 'available' then
  redis.call('HSET', ak, 'reason', 'missed_offers')
  redis.call('HDEL', ak, 'missed')
end
return {back, 1, now_state, missed}
""")


@dataclass(frozen=True)
class Missed:
    """What a missed offer did: the caller back in line, the agent moved, and to which state."""

    caller_back: bool
    agent_moved: bool
    agent_state: str  # available (back of the line) | away (queue.on_no_answer, reason missed_offers) | …
    missed_in_a_row: int


def no_answer(r: redis.Redis, call_sid: str, login: str, now: Now, settings: Config | QueueSettings) -> Missed:
    """The agent's leg rang out or was declined: the caller is back at the same score; the agent goes to the back
    of the line, or after presence.max_missed_offers misses in a row to queue.on_no_answer (away by default,
    with the reason `missed_offers`). Atomic, idempotent (a repeat finds nothing to move), 1 round trip."""
    qs = queue_settings(settings)
    back, moved, state, missed = _MISSED(
        r, [], [call_sid, login, clock.to_ms(now), qs.max_missed_offers, qs.on_no_answer])
    return Missed(bool(back), bool(moved), text(state), int(missed))
