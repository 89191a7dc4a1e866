"""Lua scripts: a shared library of state transitions, and a loader that runs them with EVALSHA.

Every queue change that touches more than one key is one script, so it is atomic across any
number of web and worker processes and costs one round trip (plus one SCRIPT LOAD the first
time a server sees it). Times are passed in as whole epoch milliseconds and scores as decimal
strings, never formatted by Lua (whose tostring keeps only 14 significant digits).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast, overload

import redis
from redis.commands.core import Script

from core import keys

# Helpers shared by the scripts. `at` values are epoch ms (strings or numbers).
LIB = keys.LUA_KEYS + f"""
local DAY_TTL = {keys.DAY_TTL_S}
local MIN_TTL = {keys.MINUTE_TTL_S}

-- Move an agent to `state`, keeping the per-state sets, the available set and the wrap-up set in step, and log
-- the change (who, from, to, when, why) for SQL (callqueue/agents/presence_log.py drains it).
-- avail_score: when the agent counts as idle from (kept on undo so nobody loses their turn).
local function agent_to(login, state, at, avail_score, why)
  local k = agentkey(login)
  local old = redis.call('HGET', k, 'state')
  if old then redis.call('SREM', statekey(old), login) end
  if old ~= state then
    -- a wrap-up's end names the call it was about (last_call), so SQL can tell one that ran out unsaved
    local wrapped = old == 'wrap_up' and redis.call('HGET', k, 'last_call') or nil
    redis.call('RPUSH', PRESLOG, cjson.encode({{login = login, from = old or '', to = state, at = tonumber(at),
                                                why = why or '', call = wrapped}}))
    redis.call('LTRIM', PRESLOG, -PRESLOG_MAX, -1)
  end
  redis.call('SADD', statekey(state), login)
  redis.call('HSET', k, 'state', state, 'since', at)
  if state == 'available' then
    redis.call('ZADD', AVAIL, avail_score or at, login)
  else
    redis.call('ZREM', AVAIL, login)
  end
  if state ~= 'wrap_up' then
    redis.call('ZREM', WRAP, login)
    redis.call('HDEL', k, 'wrap_due')
  end
  if state ~= 'on_call' then redis.call('HDEL', k, 'call', 'idle') end
end

-- Wrap-ups whose time is up: the agent enters the state they chose (available unless they said
-- otherwise) at the due time, so "longest idle" counts from when they really became free.
local function settle_wraps(now, limit)
  local due = redis.call('ZRANGEBYSCORE', WRAP, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  local moved = {{}}
  for i = 1, #due, 2 do
    local login, at = due[i], due[i + 1]
    local after = redis.call('HGET', agentkey(login), 'after') or 'available'
    redis.call('HDEL', agentkey(login), 'after')
    agent_to(login, after, at, at, 'wrap_up_due')
    moved[#moved + 1] = login
  end
  return moved
end

-- Start an agent's wrap-up (or make them available at once when wrap_ms is 0) of the call they are on, which
-- their screen keeps showing and their disposition is saved on (last_call).
local function wrap_up(login, now, wrap_ms)
  local call = redis.call('HGET', agentkey(login), 'call')
  if call then redis.call('HSET', agentkey(login), 'last_call', call) end
  if tonumber(wrap_ms) > 0 then
    agent_to(login, 'wrap_up', now, nil, 'call_ended')
    local due = tonumber(now) + tonumber(wrap_ms)
    redis.call('ZADD', WRAP, due, login)
    redis.call('HSET', agentkey(login), 'wrap_due', due)
  else
    local after = redis.call('HGET', agentkey(login), 'after') or 'available'
    redis.call('HDEL', agentkey(login), 'after')
    agent_to(login, after, now, nil, 'call_ended')
  end
end

-- Free an agent whose offer of call `sid` came to nothing (no-op unless that is their call).
-- target: 'keep' (available again at their old idle time: they keep their turn), 'available'
-- (back of the line), 'away' or 'offline'. A state the agent chose for after this call wins.
local function release_agent(login, sid, now, target, why)
  if not login then return 0 end
  local ak = agentkey(login)
  if redis.call('HGET', ak, 'state') ~= 'on_call' or redis.call('HGET', ak, 'call') ~= sid then return 0 end
  local after = redis.call('HGET', ak, 'after')
  redis.call('HDEL', ak, 'after')
  if after and after ~= 'available' and (target == 'keep' or target == 'available') then target = after end
  if target == 'keep' then
    agent_to(login, 'available', now, redis.call('HGET', ak, 'idle'), why or 'offer_ended')
  else
    agent_to(login, target, now, nil, why or 'offer_ended')
  end
  return 1
end

-- Put an offered caller back in the order at their original score (no-op unless offered to `login`).
local function caller_back(sid, login)
  local ck = callkey(sid)
  if redis.call('HGET', ck, 'state') ~= 'offered' or redis.call('HGET', ck, 'agent') ~= login then return 0 end
  redis.call('HSET', ck, 'state', 'waiting')
  redis.call('HDEL', ck, 'agent', 'leg')
  redis.call('ZADD', ORDER, redis.call('HGET', ck, 'score'), sid)
  redis.call('ZREM', OFFERS, sid)
  return 1
end

-- Count an event in the day and minute hashes given as KEYS[1], KEYS[2].
local function bump(tier, counter, n)
  local f = tier .. ':' .. counter
  redis.call('HINCRBY', KEYS[1], f, n)
  redis.call('HINCRBY', KEYS[2], f, n)
  redis.call('EXPIRE', KEYS[1], DAY_TTL)
  redis.call('EXPIRE', KEYS[2], MIN_TTL)
end
"""


class Lua:
    """One script (LIB + body), registered lazily and run on whichever client or pipeline is given."""

    def __init__(self, body: str) -> None:
        self.source = LIB + body
        self._script: Script | None = None

    def __call__(self, r: Any, keys_: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        """EVALSHA (loading the script on NOSCRIPT); on a pipeline the call is queued."""
        if self._script is None:
            client = r if isinstance(r, redis.Redis) else redis.Redis()  # no connection is made here
            self._script = client.register_script(self.source)
        return self._script(keys=list(keys_), args=list(args), client=r)


@overload
def text(value: bytes | str) -> str: ...


@overload
def text(value: None) -> None: ...


def text(value: bytes | str | None) -> str | None:
    """A reply value as str (clients with decode_responses=False return bytes); None stays None."""
    return value.decode() if isinstance(value, bytes) else value


def member_range(r: redis.Redis, key: str, start: int, stop: int) -> list[str]:
    """ZRANGE from `start` to `stop` (inclusive): the members, as str. 1 round trip."""
    # Known by construction: without WITHSCORES the reply is the members; redis-py annotates every form of
    # ZRANGE's reply (scored pairs too) as one union.
    return [text(member) for member in cast(list[bytes | str], r.zrange(key, start, stop))]


def scored_range(r: redis.Redis, key: str, start: int, stop: int) -> list[tuple[str, float]]:
    """ZRANGE … WITHSCORES from `start` to `stop` (inclusive) as (member, score) pairs. 1 round trip."""
    # Known by construction: WITHSCORES answers (member, score) pairs; redis-py annotates every form of ZRANGE's
    # reply (plain members too) as one union.
    pairs = cast(list[tuple[bytes | str, float]], r.zrange(key, start, stop, withscores=True))
    return [(text(member), float(score)) for member, score in pairs]


def flag(b: bool) -> str:
    """A boolean as the '1'/'0' stored in hashes."""
    return "1" if b else "0"
