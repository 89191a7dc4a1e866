"""What the softphone shows of the agent's call: its state (ringing, connected, held, consulting, wrap-up), since
when, hold and mute, the transfer under way and who passed the call on; and the line (waiting per tier)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import redis

from callqueue.live import conference
from callqueue.live.conference import LiveCall
from callqueue.live.presence import AgentPresence
from callqueue.live.scripts import text
from callqueue.reports import stats
from core import keys
from core.config import Config


def call_state(live: LiveCall, p: AgentPresence, login: str) -> tuple[str, str, float | None] | None:
    """(state, role, since epoch s) of the agent's part in the call, or None when they have no part in it now.

    role: `agent` (the call is theirs, or offered to them) or `target` (it is being transferred to them).
    """
    xfer = live.transfer
    if xfer is not None and xfer.to == login and live.agent != login:
        return ("ringing" if xfer.state == "ringing" else "consulting"), "target", xfer.at
    if live.agent != login:
        return None
    if live.state == "offered":
        return "ringing", "agent", p.since
    if live.state != "connected":
        return None
    if xfer is not None and xfer.state == "consulting":
        return "consulting", "agent", xfer.at
    if live.held:
        return "held", "agent", live.held_at
    return "connected", "agent", live.answered_at


def call_states(r: redis.Redis, people: list[AgentPresence]) -> dict[str, str]:
    """Each on-call agent's call state (ringing, connected, held, consulting), by login. 1 round trip."""
    on_call = [p for p in people if p.state == "on_call" and p.call_sid]
    if not on_call:
        return {}
    pipe = r.pipeline(transaction=False)
    for p in on_call:
        pipe.hgetall(keys.call(p.call_sid or ""))
    out = {}
    for p, h in zip(on_call, pipe.execute(), strict=True):  # one reply per HGETALL queued
        live = conference.parse(p.call_sid or "", {text(k): text(v) for k, v in h.items()})
        found = call_state(live, p, p.login)
        if found is not None:
            out[p.login] = found[0]
    return out


def live_fields(r: redis.Redis, p: AgentPresence, now: datetime) -> dict[str, Any] | None:
    """The call's live fields for an agent on a call (None when the call has moved on without them)."""
    if p.state != "on_call" or not p.call_sid:
        return None
    live = conference.live_call(r, p.call_sid)
    found = call_state(live, p, p.login)
    if found is None:
        return None
    state, role, since = found
    xfer = live.transfer
    return {
        "state": state, "role": role, "in_state_s": _seconds_since(since, now),
        "held": live.held, "muted": live.muted, "joined": live.caller_joined,
        "transfer": None if xfer is None else {"to": xfer.to, "mode": xfer.mode, "by": xfer.by, "state": xfer.state},
        "transferred_by": (xfer.by if role == "target" and xfer else None) or live.transferred_by,
        "agents": list(live.agents),
    }


def wrap_up_fields(p: AgentPresence, now: datetime, agents: str | None) -> dict[str, Any]:
    """The live fields of the call an agent is wrapping up (its context stays on screen)."""
    return {"state": "wrap_up", "role": "agent", "in_state_s": _seconds_since(p.since, now), "held": False,
            "muted": False, "joined": False, "transfer": None, "transferred_by": None,
            "agents": [a for a in (agents or "").split(",") if a]}


def line(r: redis.Redis, now: datetime, config: Config) -> dict[str, Any]:
    """How many wait per tier and the longest wait, overall and per tier (no caller's personal data)."""
    per_tier = stats.tier_waiting(r, now, config)
    rows = [{"tier": tier, "label": config.tiers.get(tier, {}).get("label", {}), "waiting": t["waiting"],
             "longest_wait_s": round(t["longest_wait_s"], 1) if t["waiting"] else None}
            for tier, t in per_tier.items()]
    waits = [row["longest_wait_s"] for row in rows if row["longest_wait_s"] is not None]
    return {"waiting": sum(row["waiting"] for row in rows), "longest_wait_s": max(waits) if waits else None,
            "tiers": rows}


def presence_rows(p: AgentPresence, now: datetime) -> dict[str, Any]:
    """Seconds in state and the hotline's reason for it, for the agents table."""
    return {"in_state_s": _seconds_since(p.since, now), "reason": p.reason}


def _seconds_since(since: float | None, now: datetime) -> float | None:
    return None if since is None else round(max(0.0, now.timestamp() - since), 1)

