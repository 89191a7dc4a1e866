"""The call session: a Redis hash per CallSid (`hl:ivr:{sid}`, core/keys.py, with a TTL): the caller's IVR progress.

Fields (all strings in Redis), read by the queue and the agent screen too:
  caller        E.164 caller ID, "" when withheld or not a phone number
  lang          language key the caller hears (zh, en, …)
  step          menu | pin | uid | offer | queue | end
  node          current menu node (step "menu")
  tries         failed tries (silence, bad key) at the current prompt
  seq           transition counter, carried in action URLs: a repeated request changes nothing twice
  member_id     SQL id of the member the caller claims to be ("" if none)
  uid           that member's number
  tier          verified tier, "guest" until verified
  verified      "1" when the PIN was checked in this call
  category      the menu category the caller chose (for the queue and the agent screen)
  after         where verification leads: menu (at the start of the call) | queue (when an agent was asked for)
  locked        why verification was refused in this call: "" | member | number
  lock_minutes  minutes the member stays locked (as said to the caller)
  sms           prompt names of the text messages already sent in this call (space-separated)
  started_at    ISO time the session was opened
  closed        "1" when the line was closed for the caller at the start (the after-hours flow)
  opens         ISO time the line opens next for the caller (said after hours)
  cb_reason     why a callback is being booked: "" | after_hours | long_wait | caller_request
  cb_phone      the number to call back, once chosen (E.164)
  cb_ticket     the ticket number this call is a callback for, or the one it booked
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import redis
from redis.commands.core import Script

from callqueue.recovery.rebuild import Rejoined
from core import keys
from ivr.replies import QUEUE

TTL_S = 6 * 3600  # longer than any call, queue wait included; refreshed on every write

# Create the hash unless it exists; either way return what is stored (one round trip, atomic).
_OPEN = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True)
class CallState:
    """A call's IVR progress: what the session hash holds, typed."""

    caller: str = ""
    lang: str = "zh"
    step: str = "menu"
    node: str = "main"
    tries: int = 0
    seq: int = 0
    member_id: int | None = None
    uid: str = ""
    tier: str = "guest"
    verified: bool = False
    category: str = ""
    after: str = "menu"
    locked: str = ""
    lock_minutes: int = 0
    sms: str = ""
    started_at: str = ""
    closed: bool = False
    opens: str = ""
    cb_reason: str = ""
    cb_phone: str = ""
    cb_ticket: str = ""

    def to_fields(self) -> dict[str, str]:
        """The Redis hash fields."""
        out = {}
        for k, v in asdict(self).items():
            out[k] = "1" if v is True else "0" if v is False else "" if v is None else str(v)
        return out

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> CallState:
        """Parse a hash (tolerating missing or damaged fields: they take their defaults)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data.get(f.name)
            if raw is None:
                continue
            raw = raw.decode() if isinstance(raw, bytes) else str(raw)
            if f.name in ("tries", "seq", "lock_minutes"):
                if raw.isdigit():
                    values[f.name] = int(raw)
            elif f.name == "member_id":
                values[f.name] = int(raw) if raw.isdigit() else None
            elif f.name in ("verified", "closed"):
                values[f.name] = raw == "1"
            else:
                values[f.name] = raw
        return cls(**values)


_scripts: list[Script] = []


def _open_script(r: redis.Redis) -> Script:
    """The open-session script, built once per process (it runs by EVALSHA on whichever client is given)."""
    if not _scripts:
        _scripts.append(r.register_script(_OPEN))
    return _scripts[0]


def parse(data: dict[str, Any] | None) -> CallState | None:
    """A stored hash as a CallState; None when there is no session."""
    return CallState.from_fields(data) if data else None


def open_session(r: redis.Redis, sid: str, initial: CallState, ttl_s: int = TTL_S) -> CallState:
    """Create the session for `sid` with `initial` unless one exists; return the stored one (idempotent)."""
    flat: list[str] = []
    for k, v in initial.to_fields().items():
        flat += [k, v]
    stored = _open_script(r)(keys=[keys.ivr_session(sid)], args=[ttl_s, *flat], client=r)
    pairs = dict(zip(stored[0::2], stored[1::2], strict=True))  # HGETALL's flat field, value, … list
    return CallState.from_fields(pairs)


def save(pipe: Any, sid: str, old: CallState, new: CallState, ttl_s: int = TTL_S) -> None:
    """Queue on `pipe` (a pipeline or a client) the writes that turn `old` into `new`, and refresh the TTL."""
    before, after = old.to_fields(), new.to_fields()
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if changed:
        pipe.hset(keys.ivr_session(sid), mapping=changed)
    pipe.expire(keys.ivr_session(sid), ttl_s)


def restore_session(r: redis.Redis, rejoined: Rejoined) -> None:
    """The session of a caller the rebuild put back in the queue (callqueue/recovery/rebuild.py): holding, with
    what the whisper and the hold loop read. An existing session is kept (idempotent, as `open_session`)."""
    open_session(r, rejoined.call_sid, CallState(
        caller=rejoined.caller, lang=rejoined.lang, step=QUEUE, tier=rejoined.tier, verified=rejoined.verified,
        uid=rejoined.uid, category=rejoined.category, cb_ticket=rejoined.cb_ticket, started_at=rejoined.started_at,
    ))
