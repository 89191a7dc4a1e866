"""Booking a callback at the edge: the ticket in SQL (committed first), its job and text, and leaving the queue."""

from __future__ import annotations

import logging
from datetime import datetime

from callqueue.callbacks import attempts, tickets
from callqueue.live import calls as queue_calls
from callqueue.live import ordering
from callqueue.settings import queue_settings
from core.context import db
from core.logs import log_event, mask_phone
from core.services import Services
from ivr.callback_steps import when_params
from ivr.flow import GUEST, HOLD_REASONS, Say, say
from ivr.session import CallState
from members.phones import can_text
from webhooks.outbound.callback_dialer import calendar_of, schedule
from webhooks.outbound.dispatcher import request_dispatch

log = logging.getLogger("hotline.callbacks")


def open_ticket_notice(svc: Services, state: CallState) -> tuple[Say, ...]:
    """'You already have ticket N' for a caller whose number has an open ticket (one SELECT)."""
    found = tickets.open_for_phone(db(), state.caller) if state.caller else None
    return (say("ticket_exists", state.lang, number=spell_ticket(found.number)),) if found else ()


def spell_ticket(number: str) -> str:
    """A ticket number digit by digit, as it is read out."""
    return " ".join(number)


def book(svc: Services, sid: str, state: CallState, phone: str, now: datetime) -> list[Say]:
    """Book the callback the caller confirmed and say its number (or the open ticket the number already has).

    After hours the ticket is due at the next opening for the caller's tier and ordered as if they had
    called then; from the hold loop it keeps the caller's queue score and is due at once, dialled when
    their turn comes. The ticket is committed before anything is said; its job is enqueued after.
    """
    cfg = svc.config
    tier = state.tier if state.verified else GUEST
    hold = state.cb_reason in HOLD_REASONS
    if hold:
        score = ordering.original_score(svc.redis, sid)
        score = ordering.score_for(tier, now, cfg) if score is None else score
        due = now
    else:
        opens = datetime.fromisoformat(state.opens) if state.opens else calendar_of(svc).next_opening(now, tier) or now
        score = attempts.after_hours_score(opens, now, queue_settings(cfg).boost(tier))
        due = max(opens, now)
    created = tickets.create(
        db(), phone=phone, tier=tier, lang=state.lang, reason=state.cb_reason or "after_hours", score=score, due=due,
        now=now, max_attempts=cfg["callbacks"]["max_attempts"], category=state.category or None,
        member_uid=state.uid if state.verified else None, source_call_sid=sid,
    )
    db().commit()
    t = created.ticket
    if created.new:
        schedule(svc, t)
        if cfg["callbacks"]["sms_confirmation"] and can_text(t.phone):
            svc.jobs().ticket_sms(t.id)
        log_event(log, "callback booked", call_sid=sid, ticket=t.number, to=mask_phone(t.phone), tier=t.tier,
                  reason=t.reason, due=t.due.isoformat())
    if hold:
        left = queue_calls.left_for_callback(db(), svc.redis, sid, now, cfg)
        db().commit()
        svc.jobs().end_legs(left.legs)  # the agent's device rang for this caller: it stops
        if left.agent:
            request_dispatch(svc)  # an agent was being rung for this caller: free for the next one
    number = spell_ticket(t.number)
    if not created.own:
        return [say("ticket_exists", state.lang, number=number)]
    if hold:
        return [say("ticket_created_queue", state.lang, number=number)]
    local_due = t.due.astimezone(calendar_of(svc).schedule(tier).zone).isoformat()
    return [say("ticket_created", state.lang, number=number, **when_params(local_due))]
