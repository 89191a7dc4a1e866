"""Every Redis key the hotline uses, named in one place (Python functions and their Lua twins), all under `hl:`.

No other module spells a key (tests/unit/test_layout.py checks the sources; a whole-call test checks what a run
leaves in Redis). rq's own keys (`rq:*`) are rq's business.

| key | type | holds (owner) |
|---|---|---|
| `hl:q:order` | ZSET | waiting CallSids, score = arrival epoch s − boost(tier), lowest first (callqueue/live) |
| `hl:q:tier:{tier}` | ZSET | the tier's CallSids still waiting (incl. ringing an agent), score = queued ms |
| `hl:q:offers` | ZSET | CallSids offered to an agent and not yet answered, score = offered epoch ms |
| `hl:call:{sid}` | HASH | one queued call: state, tier, score, queued, agent, offered, answered, pen (TTL) |
| `hl:holds:{sid}` | ZSET | the caller's hold and unhold events by SequenceNumber, for the hold time (TTL) |
| `hl:ivr:{sid}` | HASH | one call's IVR session: step, language, tier, verification (TTL; ivr/session.py) |
| `hl:reply:{sid}` | STRING | the IVR's last answer, for a request Twilio repeats (TTL; webhooks/routes/replay.py) |
| `hl:pinfail:{e164}` | STRING | wrong PINs from one calling number this hour (members/verification.py) |
| `hl:agent:{login}` | HASH | one agent's presence: state, since, endpoint, call, idle, wrap_due, after |
| `hl:agents:available` | ZSET | available agents, score = epoch ms they became available (lowest = longest idle) |
| `hl:agents:wrapup` | ZSET | agents in wrap-up, score = epoch ms the wrap-up ends |
| `hl:agents:in:{state}` | SET | logins per presence state (counts by SCARD) |
| `hl:pen` | HASH | Twilio queue (shard) name → callers we put there |
| `hl:pen:sized` | SET | `{shard}:{max size}` of the Twilio queues whose MaxSize we set (TTL a day: checked again) |
| `hl:dispatch:pending` | STRING | a dispatch run is queued (at most one at a time) |
| `hl:cb:ringing` | ZSET | callback tickets ringing the member (`t{id}`), score = the ticket's queue score |
| `hl:cb:dialer`, `hl:cb:again` | STRING | one dialling pass at a time; "go round once more" (webhooks/outbound) |
| `hl:st:d:{YYYY-MM-DD}` | HASH | counters of one hotline-local day, fields `{tier}:{counter}` (TTL 8 days) |
| `hl:st:m:{epoch minute}` | HASH | counters of one minute, same fields (TTL 2 hours) |
| `hl:rebuilt`, `hl:rebuild:lock`, `hl:kept` | STRING | rebuilt from SQL; one rebuild at a time; Redis kept its data |
| `hl:outbox:callbacks`, `hl:outbox:records` | HASH, LIST | what Redis keeps for SQL while the database is down |
| `hl:presence:log` | LIST | agents' state changes (JSON: login, from, to, at, why) until written to SQL |
| `hl:presence:drain` | STRING | the sweep writing that log to SQL (its owner's token, with a TTL) |
| `hl:sim:scratch` | STRING | a database the day simulation may flush (callqueue/planning) |

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
PEN_SIZED = PREFIX + "pen:sized"
DISPATCH_PENDING = PREFIX + "dispatch:pending"
CB_RINGING = PREFIX + "cb:ringing"
CB_DIALER_LOCK = PREFIX + "cb:dialer"
CB_DIALER_AGAIN = PREFIX + "cb:again"
REBUILT = PREFIX + "rebuilt"
REBUILD_LOCK = PREFIX + "rebuild:lock"
KEPT = PREFIX + "kept"
OUTBOX_CALLBACKS = PREFIX + "outbox:callbacks"
OUTBOX_RECORDS = PREFIX + "outbox:records"
PRESENCE_LOG = PREFIX + "presence:log"
PRESENCE_DRAIN_LOCK = PREFIX + "presence:drain"
PRESENCE_LOG_MAX = 100_000  # a day of busy changes; kept in Redis only until the sweep writes them to SQL
SIM_SCRATCH = PREFIX + "sim:scratch"

CALL_TTL_S = 2 * 86400  # a call hash outlives any wait and the callbacks about it
DAY_TTL_S = 8 * 86400  # today's live figures; history comes from SQL
MINUTE_TTL_S = 2 * 3600  # the 15-minute window needs 15 of these

AGENT_STATES = ("available", "on_call", "wrap_up", "away", "offline")


def call(sid: str) -> str:
    """The queue's hash of one call."""
    return f"{PREFIX}call:{sid}"


def holds(sid: str) -> str:
    """The hold and unhold events of one call's caller."""
    return f"{PREFIX}holds:{sid}"


def ivr_session(sid: str) -> str:
    """The IVR session of one call."""
    return f"{PREFIX}ivr:{sid}"


def reply(sid: str) -> str:
    """The IVR's last answer to one call (replayed to a repeated request)."""
    return f"{PREFIX}reply:{sid}"


def pin_failures(e164: str) -> str:
    """Wrong PINs from one calling number (withheld numbers share one key)."""
    return f"{PREFIX}pinfail:{e164 or 'withheld'}"


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


# The same names for Lua, prepended to every script (callqueue/live/scripts.py); keep in step with the functions above.
LUA_KEYS = f"""
local ORDER = '{ORDER}'
local OFFERS = '{OFFERS}'
local AVAIL = '{AVAILABLE}'
local WRAP = '{WRAPUP}'
local PEN = '{PEN}'
local CBRING = '{CB_RINGING}'
local CALL_TTL = {CALL_TTL_S}
local PRESLOG = '{PRESENCE_LOG}'
local PRESLOG_MAX = {PRESENCE_LOG_MAX}
local function callkey(sid) return '{PREFIX}call:' .. sid end
local function tierkey(tier) return '{PREFIX}q:tier:' .. tier end
local function agentkey(login) return '{PREFIX}agent:' .. login end
local function statekey(state) return '{PREFIX}agents:in:' .. state end
"""
