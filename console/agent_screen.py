"""What an agent's screen shows: their state, the routed caller's context, and their own figures today."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from callqueue import clock, handling, records
from callqueue.agents.logins import Identity
from callqueue.callbacks import tickets
from callqueue.live import presence
from callqueue.records import CallRecord
from callqueue.settings import queue_settings
from console import call_view
from core.config import Config
from core.logs import mask_phone
from members.models import Member

RECENT_CALLS = 5


def _waited_s(rec: CallRecord | None, now: datetime) -> float | None:
    if rec is None or rec.queued is None:
        return None
    end = rec.answered or rec.left_queue or now
    return round((end - rec.queued).total_seconds(), 1)


def _ticket(t: tickets.Ticket) -> dict[str, Any]:
    return {"number": t.number, "status": t.status, "reason": t.reason, "category": t.category,
            "created": t.created.isoformat(), "due": t.due.isoformat(), "attempts": t.attempts,
            "closed": t.closed.isoformat() if t.closed else None}


def _last_calls(session: Session, rec: CallRecord) -> list[dict[str, Any]]:
    """Earlier calls from the same member or number, newest first (indexed on both)."""
    who = [c for c in (CallRecord.member_uid == rec.member_uid if rec.member_uid else None,
                       CallRecord.from_number == rec.from_number if rec.from_number else None) if c is not None]
    if not who:
        return []
    rows = session.scalars(select(CallRecord).where(or_(*who), CallRecord.call_sid != rec.call_sid)
                           .order_by(CallRecord.arrived.desc(), CallRecord.id.desc()).limit(RECENT_CALLS))
    return [{"arrived": r.arrived.isoformat() if r.arrived else None, "category": r.category, "outcome": r.outcome,
             "agent": r.agent_login, "disposition": r.disposition, "notes": r.notes} for r in rows]


def caller_context(session: Session, call_sid: str, now: datetime, config: Config) -> dict[str, Any]:
    """Who the routed caller is and why they call: shown while the agent's phone rings and during the call."""
    rec = records.get(session, call_sid)
    member = None
    if rec is not None and rec.member_uid:
        m = session.scalar(select(Member).where(Member.uid == rec.member_uid))
        if m is not None:
            member = {"uid": m.uid, "name": m.name, "tier": m.tier}
    tier = (rec.tier if rec else None) or (member["tier"] if member else "guest")
    category = rec.category if rec else None
    callback = tickets.by_call(session, call_sid)
    phone = callback.phone if callback else (rec.from_number if rec else None)
    return {
        "call_sid": call_sid,
        "connected": bool(rec and rec.answered),
        "member": member,
        "number": mask_phone(phone) or None,
        "tier": tier,
        "tier_label": config.tiers.get(tier, {}).get("label", {}),
        "category": category,
        "category_label": config["categories"].get(category or "", {}),
        "verified": bool(rec and rec.verified),
        "waited_s": _waited_s(rec, now),
        "callback": callback.number if callback else None,
        "tickets": [_ticket(t) for t in tickets.for_caller(session, phone, member["uid"] if member else None)],
        "last_calls": _last_calls(session, rec) if rec else [],
    }


def device_of(endpoint: str | None, offline: bool) -> dict[str, Any]:
    """How the agent's calls reach them: the browser's SDK (a real account), the simulator's device for their
    identity (offline), or their phone."""
    if endpoint and endpoint.startswith("client:"):
        return {"mode": "simulated" if offline else "sdk", "identity": endpoint.removeprefix("client:"),
                "endpoint": endpoint}
    return {"mode": "phone", "identity": None, "endpoint": mask_phone(endpoint) or None}


def agent_view(session: Session, r: redis.Redis, ident: Identity, now: datetime, config: Config,
               offline: bool = True) -> dict[str, Any]:
    """What `GET /api/agents/me` returns: state (and the hotline's reason for it), the call with its context and
    state (kept through wrap-up), the device, and the line."""
    p = presence.get(r, ident.login, now)
    call = None
    if p.state == "on_call" and p.call_sid:
        fields = call_view.live_fields(r, p, now)
        if fields is not None:
            call = {**caller_context(session, p.call_sid, now, config), **fields}
    elif p.state == "wrap_up":
        rec = records.get(session, p.last_call) if p.last_call else records.last_answered_by(session, ident.login)
        if rec is not None:
            call = {**caller_context(session, rec.call_sid, now, config),
                    **call_view.wrap_up_fields(p, now, rec.agents)}
    max_due = None
    if p.state == "wrap_up" and p.since is not None:
        max_due = p.since + queue_settings(config).wrap_up_max_s
    return {"login": ident.login, "name": ident.name, "role": ident.role, "status": p.state, "reason": p.reason,
            "call": call, "since": p.since, "in_state_s": call_view.presence_rows(p, now)["in_state_s"],
            "wrap_up_due": p.wrap_up_due, "wrap_up_max_due": max_due, "device": device_of(p.endpoint, offline),
            "line": call_view.line(r, now, config), "as_of": now.isoformat()}


def handle_seconds(rec: CallRecord, wrap_up_s: float, now: datetime) -> float | None:
    """Talk time plus after-call work: answered → the wrap-up's end (saved early, or its time limit);
    None while the call or its wrap-up is still going."""
    if rec.answered is None or rec.ended is None:
        return None
    limit = rec.ended + timedelta(seconds=wrap_up_s)
    done = max(min(rec.wrapped_up, limit) if rec.wrapped_up else limit, rec.ended)
    if done > now:
        return None
    return done.timestamp() - rec.answered.timestamp()


def today_figures(session: Session, login: str, now: datetime, config: Config) -> dict[str, Any]:
    """The agent's own day (in the hotline's time zone): calls taken (answered, or passed to them), mean handle
    time of those they answered, their callers' holds, and the transfers they made."""
    qs = queue_settings(config)
    start = clock.from_ms(clock.day_start_ms(clock.to_ms(now), qs.tz))
    R = CallRecord
    rows = session.scalars(select(R).where(
        or_(R.agent_login == login, R.agents.like(f"%{login}%")), R.answered >= start,
        R.answered <= clock.canonical(now)))
    wrap_s = float(config["queue"]["wrap_up_s"])
    taken, handled, holds, hold_s = 0, [], 0, 0.0
    for rec in rows:
        if rec.agent_login != login and login not in (rec.agents or "").split(","):
            continue  # a login that only contains this one
        taken += 1
        holds, hold_s = holds + (rec.hold_count or 0), hold_s + (rec.hold_s or 0.0)
        h = handle_seconds(rec, wrap_s, clock.canonical(now)) if rec.agent_login == login else None
        if h is not None:
            handled.append(h)
    T = handling.CallTransfer
    transfers = session.scalar(select(func.count()).select_from(T).where(
        T.from_agent == login, T.started >= start, T.started <= clock.canonical(now))) or 0
    return {"calls_taken": taken, "handled": len(handled),
            "mean_handle_s": round(sum(handled) / len(handled), 1) if handled else None,
            "holds": holds, "hold_s": round(hold_s, 1), "transfers": transfers}
