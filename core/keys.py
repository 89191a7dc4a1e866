"""Every Redis key the queue uses, named in one place (Python functions and their Lua twins).

Layout (prefix `hl:`):

| key | type | holds |
|---|---|---|
| `hl:q:order` | ZSET | waiting CallSids, score = arrival epoch s − boost(tier); lowest served first |
| `hl:q:tier:{tier}` | ZSET | CallSids of the tier still waiting (incl. ringing an agent), score = queued epoch ms |
| `hl:q:offers` | ZSET | CallSids offered to an agent and not yet answered, score = offered epoch ms |
| `hl:call:{sid}` | HASH | one queued call: state, tier, score, queued, agent, offered, answered, pen, … (TTL) |
| `hl:agent:{login}` | HASH | one agent's presence: state, since, endpoint, call, idle, wrap_due, after |
| `hl:agents:available` | ZSET | available agents, score = epoch ms they became available (lowest = longest idle) |
| `hl:agents:wrapup` | ZSET | agents in wrap-up, score = epoch ms the wrap-up ends |
| `hl:agents:in:{state}` | SET | logins per presence state (counts by SCARD) |
| `hl:pen` | HASH | Twilio queue (shard) name → callers we put there |
| `hl:cb:ringing` | ZSET | callback tickets ringing the member (`t{id}`), score = the ticket's queue score: an agent is held for each |
| `hl:st:d:{YYYY-MM-DD}` | HASH | counters of one hotline-local day, fields `{tier}:{counter}` (TTL 8 days) |
| `hl:st:m:{epoch minute}` | HASH | counters of one minute, same fields (TTL 2 hours) |

Lua scripts build the per-call and per-agent names from `LUA_KEYS`, generated from the same constants,
so one Redis (or a Sentinel-managed primary) is assumed, not a Redis Cluster.
"""
from __future__ import annotations

PREFIX = "hl:"
ORDER = PREFIX + "q:order"
OFFERS = PREFIX + "q:offers"
AVAILABLE = PREFIX + "agents:available"
WRAPUP = PREFIX + "agents:wrapup"
PEN = PREFIX + "pen"
CB_RINGING = PREFIX + "cb:ringing"

CALL_TTL_S = 2 * 86400  # a call hash outlives any wait and the callbacks about it
DAY_TTL_S = 8 * 86400  # today's live figures; history comes from SQL
MINUTE_TTL_S = 2 * 3600  # the 15-minute window needs 15 of these

AGENT_STATES = ("available", "on_call", "wrap_up", "away", "offline")

# Counter names in the statistics hashes (field = f"{tier}:{counter}").
COUNTERS = ("offered", "answered", "wait_ms", "answered_sl", "abandoned", "abandoned_sl", "short", "callback")


def call(sid: str) -> str:
    """The hash of one call."""
    return f"{PREFIX}call:{sid}"


def tier_waiting(tier: str) -> str:
    """The waiting callers of one tier, by time queued."""
    return f"{PREFIX}q:tier:{tier}"


def agent(login: str) -> str:
    """The presence hash of one agent."""
    return f"{PREFIX}agent:{login}"


def agents_in(state: str) -> str:
    """The set of agents in `state`."""
    return f"{PREFIX}agents:in:{state}"


def stats_day(day: str) -> str:
    """Counters of one hotline-local day (`YYYY-MM-DD`)."""
    return f"{PREFIX}st:d:{day}"


def stats_minute(minute: int) -> str:
    """Counters of one minute (epoch seconds // 60)."""
    return f"{PREFIX}st:m:{minute}"


def counter_field(tier: str, counter: str) -> str:
    """The field of a statistics hash for one tier's counter."""
    return f"{tier}:{counter}"


# The same names for Lua, prepended to every script (scripts.py); keep in step with the functions above.
LUA_KEYS = f"""
local ORDER = '{ORDER}'
local OFFERS = '{OFFERS}'
local AVAIL = '{AVAILABLE}'
local WRAP = '{WRAPUP}'
local PEN = '{PEN}'
local CBRING = '{CB_RINGING}'
local CALL_TTL = {CALL_TTL_S}
local function callkey(sid) return '{PREFIX}call:' .. sid end
local function tierkey(tier) return '{PREFIX}q:tier:' .. tier end
local function agentkey(login) return '{PREFIX}agent:' .. login end
local function statekey(state) return '{PREFIX}agents:in:' .. state end
"""
