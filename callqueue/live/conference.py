"""A connected call's conference: its name, the agent's leg, who is in it, hold and mute, as Redis knows them.

Every connected call is a conference of its own (`conference_name`). The agent's device is rung by a call of its
own (the "leg") that joins the conference after a whisper; the caller joins once the agent has answered. What the
hotline asked for (hold, mute) is set here at once, and the conference's status callbacks confirm it: they may
come late, twice or out of order, so hold time is counted from Twilio's own events ordered by SequenceNumber
(`hold_event`), never from the order they arrive in.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from callqueue.live.scripts import Lua, member_range, text
from core import keys

PREFIX = "hl-"  # + the caller's CallSid: 37 characters, within Twilio's 64 for a conference name
HOLDS_TTL_S = keys.CALL_TTL_S

# Note the leg rung for the agent who was offered the call (only while that offer stands). A leg answered before
# Calls create's reply reached the dispatcher (the answer webhook noted it: connected, same agent, same leg) is
# in use too: ending it would leave the caller, moved in meanwhile, alone in a conference of their own.
_DIALLED = Lua("""
local ck, login, leg = callkey(ARGV[1]), ARGV[2], ARGV[3]
local st, agent = redis.call('HGET', ck, 'state'), redis.call('HGET', ck, 'agent')
if st == 'offered' and agent == login then
  redis.call('HSET', ck, 'leg', leg)
  return 1
end
if st == 'connected' and agent == login and redis.call('HGET', ck, 'leg') == leg then return 1 end
return 0
""")

# A hold or unhold event of the caller, as Twilio reported it (KEYS[1]: the call's hold log). The flag follows
# the event with the highest SequenceNumber, whatever order the callbacks arrive in.
_HOLD_EVENT = Lua("""
local ck, seq, on, at = callkey(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('EXISTS', ck) == 0 then return 0 end
redis.call('ZADD', KEYS[1], seq, seq .. ':' .. on .. ':' .. at)
redis.call('EXPIRE', KEYS[1], ARGV[5])
local last = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
local flag = string.match(last, '^%d+:(%a+):')
redis.call('HSET', ck, 'held', flag == 'on' and '1' or '0')
return 1
""")


def conference_name(call_sid: str) -> str:
    """The conference of the call `call_sid` (the caller's CallSid)."""
    return PREFIX + call_sid


def caller_of(conference: str) -> str | None:
    """The caller's CallSid from a conference name of ours, or None for any other name."""
    return conference[len(PREFIX):] if conference.startswith(PREFIX) else None


@dataclass(frozen=True)
class LiveCall:
    """What Redis knows of a call between dispatch and its end: enough to allow or refuse a control."""

    call_sid: str
    state: str | None  # waiting | offered | connected | ended | None (unknown)
    agent: str | None  # the agent offered the call, or talking to the caller
    leg: str | None  # that agent's leg (CallSid)
    conference_sid: str | None
    held: bool
    muted: bool
    agents: tuple[str, ...]  # every agent who has talked with the caller, in order
    outcome: str | None = None  # how it ended (answered, to_callback, …), once ended
    caller_in: bool = False  # the caller was moved into the conference
    caller_joined: bool = False  # and Twilio reported them in it (participant-join): there is someone to hold
    transfer: Transfer | None = None  # the transfer under way, if any
    transferred_by: str | None = None  # the agent who sent the caller back to the queue, if one did
    tier: str | None = None
    answered_at: float | None = None  # epoch seconds the call was first answered
    held_at: float | None = None  # epoch seconds the caller was last put on hold


@dataclass(frozen=True)
class Transfer:
    """A transfer under way: to whom, how, by whom, since when, the target's leg, ringing or consulting."""

    to: str
    mode: str  # cold | warm
    by: str
    at: float  # epoch seconds
    leg: str | None
    state: str  # ringing | consulting


def live_call(r: redis.Redis, call_sid: str) -> LiveCall:
    """The call's live state. 1 round trip."""
    return parse(call_sid, {text(k): text(v) for k, v in r.hgetall(keys.call(call_sid)).items()})


def parse(call_sid: str, h: dict[str, str]) -> LiveCall:
    """A LiveCall from the call hash's fields."""
    xfer = None
    if h.get("xfer_to"):
        xfer = Transfer(to=h["xfer_to"], mode=h.get("xfer_mode", "cold"), by=h.get("xfer_by", ""),
                        at=int(h.get("xfer_at") or 0) / 1000, leg=h.get("xfer_leg") or None,
                        state=h.get("xfer_state", "ringing"))
    return LiveCall(
        call_sid=call_sid, state=h.get("state"), agent=h.get("agent") or None, leg=h.get("leg") or None,
        conference_sid=h.get("conf_sid") or None, held=h.get("held") == "1", muted=h.get("muted") == "1",
        agents=tuple(a for a in h.get("agents", "").split(",") if a), outcome=h.get("outcome") or None,
        caller_in=h.get("caller_in") == "1", caller_joined=h.get("caller_joined") == "1", transfer=xfer,
        transferred_by=h.get("xfer_from") or None,
        tier=h.get("tier") or None, answered_at=int(h["answered"]) / 1000 if h.get("answered") else None,
        held_at=int(h["held_at"]) / 1000 if h.get("held_at") else None,
    )


def dialled(r: redis.Redis, call_sid: str, login: str, leg: str) -> bool:
    """The agent's device is being rung by call `leg` for this offer (so a caller who leaves can cancel it)."""
    return bool(_DIALLED(r, [], [call_sid, login, leg]))


# The caller is being moved into the conference of their agent's call (only while that agent has it).
_CALLER_MOVED = Lua("""
local ck = callkey(ARGV[1])
if redis.call('HGET', ck, 'state') == 'connected' and redis.call('HGET', ck, 'agent') == ARGV[2] then
  redis.call('HSET', ck, 'caller_in', '1')
  return 1
end
return 0
""")


def caller_moved(r: redis.Redis, call_sid: str, agent: str) -> bool:
    """The caller asks for the conference TwiML (moved out of their queue): True when `agent` still has the call,
    which from now on ends when the conference does. 1 round trip."""
    return bool(_CALLER_MOVED(r, [], [call_sid, agent]))


# A participant joined the call's conference. Connected: noted (the conference's sid; the caller in it). Ended, and
# the caller joined a conference other than their agent's: their agent hung up while they were being moved in, so
# nobody will ever start this one: 'stranded', once per call. Otherwise nothing is written (a late join must not
# recreate an expired hash, nor name a conference that is over).
_JOINED = Lua("""
local ck, conf, label = callkey(ARGV[1]), ARGV[2], ARGV[3]
local st = redis.call('HGET', ck, 'state')
if st == 'connected' then
  redis.call('HSET', ck, 'conf_sid', conf)
  if label == 'caller' then redis.call('HSET', ck, 'caller_joined', '1') end
  return 'noted'
end
if st == 'ended' and label == 'caller' and redis.call('HGET', ck, 'conf_sid') ~= conf
   and redis.call('HSETNX', ck, 'stranded_in', conf) == 1 then
  return 'stranded'
end
return ''
""")


def joined(r: redis.Redis, call_sid: str, conference_sid: str, label: str = "") -> str:
    """A participant (`label`) joined the call's conference: `noted` (its sid, by which the Participant resource is
    addressed, and that the caller is in it), `stranded` (the caller, after their agent had left: to be hung up;
    said once), or '' (nothing to do). 1 round trip."""
    return str(text(_JOINED(r, [], [call_sid, conference_sid, label])) or "")


# A mute or unmute event of the agent's leg (ARGV[2]): the flag follows the highest SequenceNumber seen.
_MUTE_EVENT = Lua("""
local ck, leg, seq, on = callkey(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('HGET', ck, 'leg') ~= leg then return 0 end
if tonumber(redis.call('HGET', ck, 'mute_seq') or '-1') > seq then return 0 end
redis.call('HSET', ck, 'muted', on, 'mute_seq', seq)
return 1
""")


def mute_event(r: redis.Redis, call_sid: str, leg: str, sequence: int, on: bool) -> bool:
    """A participant-mute (on) or participant-unmute event of the leg `leg`: the call's `muted` flag follows it
    when that is the agent's leg and no later event was seen. 1 round trip."""
    return bool(_MUTE_EVENT(r, [], [call_sid, leg, sequence, "1" if on else "0"]))


def set_flag(r: redis.Redis, call_sid: str, name: str, on: bool, at_ms: int = 0) -> None:
    """Set the call's `held` or `muted` flag (what the hotline asked Twilio for); `at_ms`: since when. 1 round trip."""
    if name not in ("held", "muted"):
        raise ValueError(f"flag: {name!r}")
    if at_ms:
        r.hset(keys.call(call_sid), mapping={name: "1" if on else "0", f"{name}_at": str(at_ms)})
    else:
        r.hset(keys.call(call_sid), name, "1" if on else "0")


def hold_event(r: redis.Redis, call_sid: str, sequence: int, on: bool, at_ms: int) -> bool:
    """A participant-hold (on) or participant-unhold event of the caller; False for an unknown call. Repeats and
    any order give the same log. 1 round trip."""
    return bool(_HOLD_EVENT(r, [keys.holds(call_sid)], [call_sid, sequence, "on" if on else "off", at_ms,
                                                         HOLDS_TTL_S]))


@dataclass(frozen=True)
class Handling:
    """How a connected call went, for its record: the agents in turn, the caller's holds, the transfers."""

    agents: tuple[str, ...]
    hold_count: int
    hold_s: float
    transfers: int


def handling(r: redis.Redis, call_sid: str, until_ms: int) -> Handling:
    """The call's handling figures as Redis has them (a hold still on counts up to `until_ms`). 1 round trip."""
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.call(call_sid), "agents", "transfers")
    pipe.zrange(keys.holds(call_sid), 0, -1)
    (agents, transfers), events = pipe.execute()
    count, held_s = _hold_totals([text(e) for e in events], until_ms)
    return Handling(tuple(a for a in (text(agents) or "").split(",") if a), count, held_s, int(transfers or 0))


def hold_totals(r: redis.Redis, call_sid: str, until_ms: int) -> tuple[int, float]:
    """How many times the caller was put on hold, and for how many seconds in all (a hold still on counts up to
    `until_ms`), from the events in SequenceNumber order. 1 round trip."""
    return _hold_totals(member_range(r, keys.holds(call_sid), 0, -1), until_ms)


def _hold_totals(members: list[str], until_ms: int) -> tuple[int, float]:
    events = [e.split(":") for e in members]
    count, total_ms, since = 0, 0, None
    for _seq, flag, at in events:
        if flag == "on" and since is None:
            count, since = count + 1, int(at)
        elif flag == "off" and since is not None:
            total_ms, since = total_ms + max(0, int(at) - since), None
    if since is not None:
        total_ms += max(0, until_ms - since)
    return count, total_ms / 1000
