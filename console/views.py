"""Plain-value views the API and the console pages share: the queue, the agents table, wrap-up."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from callqueue import records
from callqueue.agents.accounts import Agent
from callqueue.live import presence
from callqueue.live.presence import PresenceError
from console import call_view
from core.logs import mask_phone


def queue_view(session: Session, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Waiting callers in service order with masked numbers and seconds waited (one SQL query)."""
    sids = [row["call_sid"] for row in rows]
    numbers = dict(session.execute(
        select(records.CallRecord.call_sid, records.CallRecord.from_number).where(records.CallRecord.call_sid.in_(sids))
    ).all()) if sids else {}
    now_s = now.timestamp()
    return [
        {
            "call_sid": row["call_sid"], "position": row["position"], "tier": row["tier"],
            "category": row["category"] or None, "verified": row["verified"],
            "number": mask_phone(numbers.get(row["call_sid"])) or None,
            "waited_s": round(now_s - row["queued_at"], 1) if row["queued_at"] else None,
        }
        for row in rows
    ]


def save_wrapup(session: Session, r: redis.Redis, login: str, notes: str, disposition: str, now: datetime) -> bool:
    """Keep notes on the agent's last answered call and end their wrap-up; True if they are now available.

    Raises PresenceError while the agent is still on the call or has no answered call to wrap up.
    """
    p = presence.get(r, login, now)
    if p.state == "on_call":
        raise PresenceError("the call is still going; wrap up after it ends")
    rec = records.get(session, p.last_call) if p.last_call else records.last_answered_by(session, login)
    if rec is None:
        raise PresenceError("there is no answered call to wrap up")
    records.note_wrapup(session, rec, disposition=disposition, notes=notes, now=now)
    if p.state == "wrap_up":
        p = presence.set_state(r, login, p.after or "available", now)
    return p.state == "available"


def agents_table(session: Session, r: redis.Redis, now: datetime) -> list[dict[str, Any]]:
    """Every agent: state (and the hotline's reason for it), seconds in it, the call's state and the tier of the
    caller they are on (2 Redis + 2 SQL round trips)."""
    people = session.execute(select(Agent.login, Agent.name, Agent.role).order_by(Agent.login)).all()
    states = presence.many(r, [login for login, _, _ in people], now)
    sids = [p.call_sid for p in states if p.state == "on_call" and p.call_sid]
    tiers = dict(session.execute(
        select(records.CallRecord.call_sid, records.CallRecord.tier).where(records.CallRecord.call_sid.in_(sids))
    ).all()) if sids else {}
    now_s = now.timestamp()
    call_states = call_view.call_states(r, states)
    return [
        {"login": login, "name": name, "role": role, "state": p.state, "reason": p.reason,
         "call_state": call_states.get(login),
         "in_state_s": round(max(0.0, now_s - p.since), 1) if p.since else None,
         "caller_tier": (tiers.get(p.call_sid) or "guest") if p.state == "on_call" and p.call_sid else None,
         "wrap_up_due": p.wrap_up_due}
        for (login, name, role), p in zip(people, states, strict=True)
    ]
