"""Presence that corrects itself: the console's heartbeat, agents gone silent, and extending a wrap-up.

An agent's console (or `hotline agent`) says it is there every few seconds; whoever changes their own state is
there too (presence.set_state notes `seen`). An agent not heard from for presence.heartbeat_timeout_s while
available, away or in wrap-up is set offline by the worker's sweep (reason `heartbeat_lost`), so no call is
offered to a browser tab closed an hour ago; a device that reports itself unregistered does the same at once
(`device_unregistered`). An agent on a call is left to the call's own events (their leg ends with the device).
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, text
from callqueue.settings import QueueSettings, queue_settings
from core.config import Config

DEVICE_STATES = ("registered", "unregistered", "unknown")

# ARGV: login, now, device. Answers the agent's state after the beat ('' for an unknown agent).
_BEAT = Lua("""
local login, now, device = ARGV[1], ARGV[2], ARGV[3]
local k = agentkey(login)
local state = redis.call('HGET', k, 'state')
if not state then return '' end
redis.call('HSET', k, 'seen', now, 'device', device)
if device == 'unregistered' then
  -- nothing can ring this agent: never offer them a call
  if state == 'available' or state == 'away' then
    redis.call('HDEL', k, 'after')
    agent_to(login, 'offline', now, nil, 'device_unregistered')
    redis.call('HSET', k, 'reason', 'device_unregistered')
    state = 'offline'
  elseif state == 'wrap_up' or state == 'on_call' then
    redis.call('HSET', k, 'after', 'offline')
  end
end
return state
""")

# ARGV: now, cutoff (ms). Every available, away or wrap-up agent not seen since cutoff goes offline.
_SILENT = Lua("""
local now, cutoff = ARGV[1], tonumber(ARGV[2])
settle_wraps(now, 1000)
local gone = {}
for _, state in ipairs({'available', 'away', 'wrap_up'}) do
  for _, login in ipairs(redis.call('SMEMBERS', statekey(state))) do
    local k = agentkey(login)
    local seen = tonumber(redis.call('HGET', k, 'seen') or redis.call('HGET', k, 'since') or '0')
    if seen < cutoff then
      redis.call('HDEL', k, 'after')
      agent_to(login, 'offline', now, nil, 'heartbeat_lost')
      redis.call('HSET', k, 'reason', 'heartbeat_lost')
      gone[#gone + 1] = login
    end
  end
end
return gone
""")

# ARGV: login, now, extra ms, max ms. Answers the new due time, or 0 when the agent is not in wrap-up.
_EXTEND = Lua("""
local login, now, extra, max_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
settle_wraps(now, 100)
local k = agentkey(login)
if redis.call('HGET', k, 'state') ~= 'wrap_up' then return 0 end
local since = tonumber(redis.call('HGET', k, 'since'))
local due = math.min(tonumber(redis.call('HGET', k, 'wrap_due')) + extra, since + max_ms)
redis.call('HSET', k, 'wrap_due', due, 'seen', now)
redis.call('ZADD', WRAP, due, login)
return due
""")


@dataclass(frozen=True)
class Beat:
    """What a heartbeat found: the agent's state after it ('' for an unknown agent)."""

    state: str


def beat(r: redis.Redis, login: str, now: Now, device: str = "unknown") -> Beat:
    """The agent's console is there (`device`: registered, unregistered or unknown). An unregistered device sets
    an available or away agent offline at once (after their call or wrap-up otherwise). 1 round trip."""
    if device not in DEVICE_STATES:
        raise ValueError(f"device: must be one of {', '.join(DEVICE_STATES)}")
    return Beat(text(_BEAT(r, [], [login, clock.to_ms(now), device])))


def silent_offline(r: redis.Redis, now: Now, settings: Config | QueueSettings) -> list[str]:
    """Set offline every available, away or wrap-up agent not heard from for presence.heartbeat_timeout_s; return
    who. The worker's sweep calls this. 1 round trip."""
    cutoff = clock.to_ms(now) - round(queue_settings(settings).heartbeat_timeout_s * 1000)
    return [text(x) for x in _SILENT(r, [], [clock.to_ms(now), cutoff])]


def extend_wrap_up(r: redis.Redis, login: str, now: Now, seconds: float,
                   settings: Config | QueueSettings) -> float | None:
    """Give the agent `seconds` more wrap-up, up to queue.wrap_up_max_s from its start; the new due time (epoch
    seconds), or None when they are not in wrap-up. 1 round trip."""
    if not 0 < seconds <= 3600:
        raise ValueError("seconds: must be more than 0 and at most 3600")
    max_ms = round(queue_settings(settings).wrap_up_max_s * 1000)
    due = int(_EXTEND(r, [], [login, clock.to_ms(now), round(seconds * 1000), max_ms]))
    return due / 1000 if due else None
