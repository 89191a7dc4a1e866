"""The holding pen: which Twilio queue a caller waits in, sharded past queue.twilio_queue_max_size.

A Twilio queue holds at most 5000 callers (1000 by default). Our order lives in Redis, so the
pen only needs room: shards are named `{prefix}-1`, `{prefix}-2`, …, and a caller goes into the
first with room. Counts are kept in one hash; a call remembers its shard, so assigning twice or
releasing twice changes nothing. The edge creates the queues through the gateway by these names.
"""
from __future__ import annotations

import redis

from callqueue.live.scripts import Lua, text
from callqueue.settings import QueueSettings, queue_settings
from core import keys
from core.config import Config

MAX_SHARDS = 1000  # 1000 × 5000 callers: far past any real hotline; bounds the script's loop

_ASSIGN = Lua("""
local ck = callkey(ARGV[1])
local current = redis.call('HGET', ck, 'pen')
if current then return current end
local prefix, size = ARGV[2], tonumber(ARGV[3])
for i = 1, tonumber(ARGV[4]) do
  local name = prefix .. '-' .. i
  if tonumber(redis.call('HGET', PEN, name) or '0') < size then
    redis.call('HINCRBY', PEN, name, 1)
    redis.call('HSET', ck, 'pen', name)
    if redis.call('TTL', ck) < 0 then redis.call('EXPIRE', ck, CALL_TTL) end
    return name
  end
end
return false
""")

_RELEASE = Lua("""
local ck = callkey(ARGV[1])
local name = redis.call('HGET', ck, 'pen')
if not name then return false end
redis.call('HDEL', ck, 'pen')
if redis.call('HINCRBY', PEN, name, -1) < 0 then redis.call('HSET', PEN, name, 0) end
return name
""")


class PenFull(RuntimeError):
    """Every shard is full (MAX_SHARDS × twilio_queue_max_size callers)."""


def shard_name(prefix: str, index: int) -> str:
    """The Twilio queue name of shard `index` (1-based); at most 40 + 1 + 4 characters, under Twilio's 64."""
    return f"{prefix}-{index}"


def assign(r: redis.Redis, call_sid: str, settings: Config | QueueSettings) -> str:
    """The Twilio queue name this caller should be `<Enqueue>`d into (the same one if asked again). 1 round trip."""
    qs = queue_settings(settings)
    # The script answers the shard's name, or false (None here) when every shard is full.
    name: bytes | str | None = _ASSIGN(r, [], [call_sid, qs.twilio_queue_prefix, qs.twilio_queue_max_size, MAX_SHARDS])
    if not name:
        raise PenFull(f"all {MAX_SHARDS} Twilio queues of {qs.twilio_queue_max_size} callers are full")
    return text(name)


def release(r: redis.Redis, call_sid: str) -> str | None:
    """The caller has left its Twilio queue (Enqueue action, status callback); returns the shard freed. 1 round trip."""
    name = _RELEASE(r, [], [call_sid])
    return text(name) if name else None


def reconcile(r: redis.Redis, name: str, current_size: int) -> None:
    """Correct a shard's count from Twilio's own CurrentQueueSize (sent with every waitUrl request). 1 round trip."""
    r.hset(keys.PEN, name, max(0, int(current_size)))


def sizes(r: redis.Redis) -> dict[str, int]:
    """Callers per shard, as we count them. 1 round trip."""
    return {text(k): int(v) for k, v in r.hgetall(keys.PEN).items()}


SIZED_TTL_S = 86400  # once a day every shard's MaxSize is checked at Twilio again (a queue deleted there comes back)


def degraded_name(settings: Config | QueueSettings) -> str:
    """The one Twilio queue callers hold in while Redis is down (no shards then: nothing counts them)."""
    return f"{queue_settings(settings).twilio_queue_prefix}-degraded"


def to_size(r: redis.Redis, settings: Config | QueueSettings) -> list[str]:
    """The Twilio queues whose MaxSize should be set to queue.twilio_queue_max_size now: every shard in use, the next
    one (so a new shard exists at its size before its first caller), and the degraded queue, less those already set
    to this size. 1 round trip."""
    qs = queue_settings(settings)
    pipe = r.pipeline(transaction=False)
    pipe.hkeys(keys.PEN)
    pipe.smembers(keys.PEN_SIZED)
    used, sized = pipe.execute()
    prefix = f"{qs.twilio_queue_prefix}-"
    indexes = [int(n[len(prefix):]) for n in map(text, used) if n.startswith(prefix) and n[len(prefix):].isdigit()]
    wanted = [shard_name(qs.twilio_queue_prefix, i) for i in range(1, max(indexes, default=0) + 2)]
    done = {text(x) for x in sized}
    return [n for n in [*wanted, degraded_name(qs)] if f"{n}:{qs.twilio_queue_max_size}" not in done]


def sized(r: redis.Redis, name: str, settings: Config | QueueSettings) -> None:
    """Twilio's queue `name` now holds at most queue.twilio_queue_max_size callers. 1 round trip."""
    pipe = r.pipeline(transaction=False)
    pipe.sadd(keys.PEN_SIZED, f"{name}:{queue_settings(settings).twilio_queue_max_size}")
    pipe.expire(keys.PEN_SIZED, SIZED_TTL_S)
    pipe.execute()
