"""Agents' live state in Redis: offline, available, on_call, wrap_up, away, and since when.

"Longest idle" is a sorted set of available agents scored by when they became available. A
wrap-up ends at a due time kept in a sorted set; nothing sleeps: reads report a due wrap-up as
over, and the dispatcher, `counts` and `settle_wrap_ups` (for the worker) make it so in Redis.
An agent on a call cannot change state by hand; the call's own events move them (dispatch.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from callqueue import clock
from callqueue.clock import Now
from callqueue.live.scripts import Lua, text
from core import keys

MANUAL_STATES = ("available", "away", "offline")  # what an agent may choose; on_call/wrap_up follow calls

_SET_STATE = Lua("""
local login, state, now, endpoint, why = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
settle_wraps(now, 100)
local k = agentkey(login)
if endpoint ~= '' then redis.call('HSET', k, 'endpoint', endpoint) end
redis.call('HSET', k, 'seen', now)  -- whoever sets the state is there: a heartbeat too
local cur = redis.call('HGET', k, 'state')
local result = 'changed'
if cur == 'on_call' then
  result = 'refused'
elseif state == 'available' and not redis.call('HGET', k, 'endpoint') then
  result = 'no_endpoint'
elseif cur == state then
  result = 'same'  -- an available agent clicking "available" again keeps their place in line
else
  redis.call('HDEL', k, 'after', 'reason', 'missed')  -- the agent's own choice: an old reason no longer holds
  agent_to(login, state, now, nil, why)
end
local h = redis.call('HGETALL', k)
table.insert(h, 1, result)
return h
""")

_AFTER = Lua("""
local k = agentkey(ARGV[1])
if redis.call('HGET', k, 'state') == 'on_call' or redis.call('HGET', k, 'state') == 'wrap_up' then
  redis.call('HSET', k, 'after', ARGV[2])
  return 1
end
return 0
""")

_SETTLE = Lua("""
return settle_wraps(ARGV[1], tonumber(ARGV[2]))
""")

_COUNTS = Lua("""
settle_wraps(ARGV[1], 1000)
local out = {}
for i = 2, #ARGV do out[#out + 1] = redis.call('SCARD', statekey(ARGV[i])) end
return out
""")

_ENSURE = Lua("""
local added = 0
for i = 1, #ARGV, 3 do
  local login, endpoint, now = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local k = agentkey(login)
  if redis.call('EXISTS', k) == 0 then
    agent_to(login, 'offline', now, nil, 'registered')
    added = added + 1
  end
  if endpoint ~= '' then redis.call('HSET', k, 'endpoint', endpoint) end
end
return added
""")


class PresenceError(ValueError):
    """A state change that is not allowed now (the message says why)."""


@dataclass(frozen=True)
class AgentPresence:
    """One agent's live state as a plain value."""

    login: str
    state: str
    since: float | None  # epoch seconds the state began
    endpoint: str | None  # "client:IDENTITY" or an E.164 number
    call_sid: str | None
    wrap_up_due: float | None
    after: str | None  # the state chosen for after the wrap-up
    reason: str | None = None  # why the hotline (not the agent) set this state: missed_offers, heartbeat_lost, …
    seen: float | None = None  # epoch seconds the agent's console (or terminal) was last heard from
    last_call: str | None = None  # the call of the agent's latest wrap-up (kept through it, and after)


def _view(login: str, h: dict[str, str], now_ms: int) -> AgentPresence:
    state = h.get("state", "offline")
    since = int(h["since"]) if "since" in h else None
    due = int(float(h["wrap_due"])) if h.get("wrap_due") else None
    if state == "wrap_up" and due is not None and due <= now_ms:
        # Lazily over: report what settling will make it, from the due time.
        state, since, due = h.get("after") or "available", due, None
    return AgentPresence(
        login=login, state=state, since=None if since is None else since / 1000, endpoint=h.get("endpoint"),
        call_sid=h.get("call"), wrap_up_due=None if due is None else due / 1000,
        after=h.get("after") if state in ("on_call", "wrap_up") else None,
        reason=h.get("reason") or None, seen=int(h["seen"]) / 1000 if h.get("seen") else None,
        last_call=h.get("last_call") or None,
    )


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def set_state(r: redis.Redis, login: str, state: str, now: Now, *, endpoint: str | None = None,
              why: str = "agent") -> AgentPresence:
    """An agent chooses available, away or offline (idempotent). 1 round trip.

    From wrap-up, "available" ends the wrap-up early and "away"/"offline" apply at once.
    Raises PresenceError while the agent is on a call, or for "available" with no endpoint known.
    """
    if state not in MANUAL_STATES:
        raise PresenceError(f"state: must be one of {', '.join(MANUAL_STATES)}")
    ms = clock.to_ms(now)
    reply = _SET_STATE(r, [], [login, state, ms, endpoint or "", why])
    result, h = text(reply[0]), _pairs(reply[1:])
    if result == "refused":
        raise PresenceError(f"{login} is on a call; the call's end sets the next state")
    if result == "no_endpoint":
        raise PresenceError(f"{login} has no endpoint (Twilio Client identity or phone) to ring")
    return _view(login, h, ms)


def after_wrap_up(r: redis.Redis, login: str, state: str) -> bool:
    """Choose the state an agent enters when the current call's wrap-up ends (default available). 1 round trip.

    Returns False when the agent is neither on a call nor in wrap-up (use set_state then).
    """
    if state not in MANUAL_STATES:
        raise PresenceError(f"state: must be one of {', '.join(MANUAL_STATES)}")
    return bool(_AFTER(r, [], [login, state]))


def get(r: redis.Redis, login: str, now: Now) -> AgentPresence:
    """An agent's state as of `now` (a due wrap-up reads as over). 1 round trip; writes nothing."""
    h = {text(k): text(v) for k, v in r.hgetall(keys.agent(login)).items()}
    return _view(login, h, clock.to_ms(now))


def settle_wrap_ups(r: redis.Redis, now: Now, limit: int = 1000) -> list[str]:
    """End every wrap-up due by `now` (the worker calls this periodically); return who moved. 1 round trip."""
    return [text(x) for x in _SETTLE(r, [], [clock.to_ms(now), limit])]


def many(r: redis.Redis, logins: Iterable[str], now: Now) -> list[AgentPresence]:
    """The presence of each of `logins`, in order (a wrap-up past its due time reads as over). 1 round trip."""
    logins = list(logins)
    pipe = r.pipeline(transaction=False)
    for login in logins:
        pipe.hgetall(keys.agent(login))
    ms = clock.to_ms(now)
    # One reply per HGETALL queued: as many as logins.
    replies = zip(logins, pipe.execute(), strict=True)
    return [_view(login, {text(k): text(v) for k, v in h.items()}, ms) for login, h in replies]


def counts(r: redis.Redis, now: Now) -> dict[str, int]:
    """Agents per state, after settling due wrap-ups. 1 round trip."""
    reply = _COUNTS(r, [], [clock.to_ms(now), *keys.AGENT_STATES])
    return {state: int(n) for state, n in zip(keys.AGENT_STATES, reply, strict=True)}  # one count per state asked




def ensure_known(r: redis.Redis, agents: Iterable[tuple[str, str | None]], now: Now) -> int:
    """Register agents (login, endpoint) not yet in Redis as offline and refresh endpoints. 1 round trip.

    Returns how many were added. Agents Redis already knows keep their state.
    """
    args: list[object] = []
    ms = clock.to_ms(now)
    for login, endpoint in agents:
        args += [login, endpoint or "", ms]
    return int(_ENSURE(r, [], args)) if args else 0
