"""Plain-value views the API and the console pages share: an agent's screen, the queue, wrap-up."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from callqueue import presence, records
from callqueue.logins import Identity
from callqueue.presence import PresenceError
from hotline.config import Config
from hotline.logs import mask_phone
from members.models import Member


def _waited_s(rec: records.CallRecord | None, now: datetime) -> float | None:
    if rec is None or rec.queued is None:
        return None
    end = rec.answered or rec.left_queue or now
    return round((end - rec.queued).total_seconds(), 1)


def agent_view(session: Session, r: redis.Redis, ident: Identity, now: datetime, config: Config) -> dict[str, Any]:
    """What `GET /api/agents/me` returns: state and, when routed a call, who is calling and why."""
    p = presence.get(r, ident.login, now)
    call = None
    if p.state == "on_call" and p.call_sid:
        rec = records.get(session, p.call_sid)
        member = None
        if rec is not None and rec.member_uid:
            m = session.scalar(select(Member).where(Member.uid == rec.member_uid))
            if m is not None:
                member = {"uid": m.uid, "name": m.name, "tier": m.tier}
        call = {
            "call_sid": p.call_sid,
            "member": member,
            "tier": rec.tier if rec else None,
            "category": rec.category if rec else None,
            "verified": bool(rec and rec.verified),
            "waited_s": _waited_s(rec, now),
        }
    return {"login": ident.login, "name": ident.name, "status": p.state, "call": call,
            "since": p.since, "wrap_up_due": p.wrap_up_due}


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
    rec = records.last_answered_by(session, login)
    if rec is None:
        raise PresenceError("there is no answered call to wrap up")
    records.note_wrapup(session, rec, disposition=disposition, notes=notes)
    if p.state == "wrap_up":
        p = presence.set_state(r, login, p.after or "available", now)
    return p.state == "available"
