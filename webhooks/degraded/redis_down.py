"""The webhooks' answers while Redis is down (no live queue, no IVR session): from SQL alone.

The call's state travels in our own action URLs (Twilio signs the whole URL, query included, so the caller
cannot change it) and in SQL.
- /voice/incoming: the call is recorded in SQL. A caller whose number belongs to a member of a held tier
  (a tier with a boost: the premium ones) is asked for the PIN (checked against SQL, webhooks/degraded/routes.py);
  verified, they get a callback ticket in SQL as a safety net, parked while they hold (outage_tickets.PARK_S),
  hear its number, and hold in the degraded queue. Their record is written as queued with the score they
  would have had, so the rebuild puts them in our order when Redis returns. Everyone else hears an apology
  and "press 1 to be called back on this number": a ticket in SQL.
- Mid-call webhooks answer from SQL or from nothing: the hold loop keeps holding, a status callback closes
  the record (and makes an outage ticket due if its caller left unanswered), a missed agent puts the caller
  back to holding.
"""
from __future__ import annotations

import logging

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue import records
from callqueue.callbacks import attempts, tickets
from callqueue.live import calls, ordering
from callqueue.recovery.outage_tickets import OUTAGE, note_parked, park_due, settle_outage_tickets
from callqueue.settings import queue_settings
from core.context import db
from core.logs import log_event, mask_phone
from core.services import Services
from ivr.replies import GUEST, HOLD_REASONS, Say, say
from members.verification import find_by_phone
from webhooks.booking import spell_ticket
from webhooks.degraded.twiml import (
    ask_pin,
    callable_number,
    caller_of,
    empty,
    enqueue_degraded,
    goodbye,
    join_as_caller,
    offer_callback,
    pick_lang,
    queue_left,
    speak,
    static_hold,
)
from webhooks.outbound.callback_dialer import calendar_of
from webhooks.twiml import twiml

log = logging.getLogger("hotline.degraded")


def held_tiers(svc: Services) -> set[str]:
    """The tiers whose verified callers are held for an agent while Redis is down: those with a queue boost."""
    return {name for name, t in svc.config.tiers.items() if float(t["boost_s"]) > 0}


def hold_member(svc: Services, sid: str, caller: str, tier: str, uid: str | None, category: str | None, lang: str,
                says: list[Say]) -> Response:
    """A verified member of a held tier: recorded as queued (their score), a parked ticket, then the degraded queue."""
    now, s, cfg = svc.clock(), db(), svc.config
    rec = records.note_queued(s, sid, tier=tier, category=category or None, verified=True, member_uid=uid,
                              score=ordering.score_for(tier, now, cfg), queued_at=now, from_number=caller or None)
    phone = callable_number(svc, caller)
    number, own = "", False
    if phone:
        created = tickets.create(s, phone=phone, tier=tier, lang=lang, reason=OUTAGE, score=float(rec.score),
                                 due=park_due(now), now=now, max_attempts=cfg["callbacks"]["max_attempts"],
                                 category=category or None, member_uid=uid, source_call_sid=sid)
        if created.new:
            note_parked(s, created.ticket.id)
        number, own = created.ticket.number, created.own
    s.commit()  # the ticket is committed before its number is said
    resp = VoiceResponse()
    for x in says:
        speak(resp, svc, x)
    if number and own:
        speak(resp, svc, say("degraded_held", lang, number=spell_ticket(number)))
    else:
        if number:
            speak(resp, svc, say("ticket_exists", lang, number=spell_ticket(number)))
        speak(resp, svc, say("to_agent", lang))
    log_event(log, "held without redis", call_sid=sid, caller=mask_phone(caller), tier=tier, ticket=number or None)
    return enqueue_degraded(resp, svc, number, lang)


def entry(svc: Services, greet: bool) -> Response:
    """/voice/incoming (or a step of the menu, or joining the queue) while Redis is down."""
    sid, caller, now = request.form["CallSid"], caller_of(svc), svc.clock()
    lang, s, cal = pick_lang(svc), db(), calendar_of(svc)
    records.record_arrival(s, sid, from_number=caller or None, now=now)  # every call gets its record
    rec = records.get(s, sid)
    booked = tickets.booked_by(s, sid)
    s.commit()
    opening = ([say("greeting", lang)] if greet else []) + [say("degraded_notice", lang)]
    if booked is not None:  # the call booked a callback before Redis failed: its number, and goodbye
        return goodbye(svc, [*opening, say("degraded_booked", lang, number=spell_ticket(booked.number))], lang)
    held = held_tiers(svc)
    if rec is not None and rec.verified and rec.tier in held and cal.is_open(now, rec.tier):
        return hold_member(svc, sid, caller, rec.tier, rec.member_uid, rec.category, lang, opening)
    member = find_by_phone(s, caller) if caller else None
    if member is not None and member.tier in held and not member.minutes_locked(now) and cal.is_open(now, member.tier):
        return ask_pin(svc, member.id, 0, lang, opening)
    if rec is not None and rec.verified and rec.tier:
        return offer_callback(svc, caller, rec.tier, True, rec.member_uid, lang, opening)
    return offer_callback(svc, caller, GUEST, False, None, lang, opening)


def hold(svc: Services) -> Response:
    """The hold loop: keep holding; a callback committed before the failure is read out, then <Leave>."""
    lang = pick_lang(svc)
    if request.endpoint != "voice.wait":
        booked = tickets.booked_by(db(), request.form["CallSid"])
        if booked is not None and booked.reason in HOLD_REASONS:
            resp = VoiceResponse()
            speak(resp, svc, say("ticket_created_queue", lang, number=spell_ticket(booked.number)))
            resp.leave()
            return twiml(resp)
    return static_hold(svc, "", lang)


def queue_result(svc: Services) -> Response:
    """The Enqueue action: the record notes how the caller left the queue (and a parked ticket is settled)."""
    sid, result, now, s = request.form["CallSid"], request.form.get("QueueResult", ""), svc.clock(), db()
    lang = pick_lang(svc)
    records.note_queue_result(s, sid, result)
    if result == "leave":
        records.note_left(s, sid, outcome="to_callback", now=now)
    elif result in ("error", "system-error"):
        records.note_left(s, sid, outcome="failed", now=now)
    # hangup: the status callback closes the record (abandoned or short, from its own queue time)
    booked = tickets.booked_by(s, sid)
    if result == "queue-full" and booked is not None:
        records.note_left(s, sid, outcome="to_callback", now=now)  # no room to hold: their ticket calls them back
    settle_outage_tickets(s, now, sid)
    s.commit()
    resp = VoiceResponse()
    if result == "queue-full":
        if booked is not None:
            return goodbye(svc, [say("degraded_booked", lang, number=spell_ticket(booked.number))], lang)
        return offer_callback(svc, caller_of(svc), GUEST, False, None, lang, [say("degraded_notice", lang)])
    return queue_left(resp, svc, result, lang)


def status_callback(svc: Services) -> Response:
    """The call's status callback: a call that ended closes its record (and makes a parked ticket due)."""
    status = request.form.get("CallStatus", "")
    if status in calls.TERMINAL_CALL_STATUSES:
        sid, now, s = request.form["CallSid"], svc.clock(), db()
        records.close_call(
            s, sid, call_status=status, now=now, short_abandon_s=queue_settings(svc.config).short_abandon_s
        )
        settle_outage_tickets(s, now, sid)  # left unanswered: the parked ticket is due now
        s.commit()
    return empty()


def connect(svc: Services) -> Response:
    """Moved into the conference as Redis failed: the move came from an agent's answer, so the caller joins (the
    agent waits there); a ticket booked meanwhile is read out instead."""
    sid, lang = request.form["CallSid"], pick_lang(svc)
    booked = tickets.booked_by(db(), sid)
    if booked is not None and booked.reason in HOLD_REASONS:  # they booked a callback while being moved
        return goodbye(svc, [say("ticket_created_queue", lang, number=spell_ticket(booked.number))], lang)
    return join_as_caller(svc, sid, lang)


def agent_answer(svc: Services) -> Response:
    """An agent answered as Redis failed: the caller cannot be moved to them (no job queue), so the agent hears
    the notice; the caller keeps holding and the order is rebuilt from SQL."""
    lang = pick_lang(svc)
    return goodbye(svc, [say("degraded_notice", lang)], lang)


def _attempt() -> tuple[int, int] | None:
    ticket, n = request.args.get("ticket", ""), request.args.get("n", "")
    if not (ticket.isdigit() and n.isdigit()) or len(ticket) > 12 or len(n) > 3:
        return None
    return int(ticket), int(n)


def callback_answer(svc: Services) -> Response:
    """A member answered their callback as Redis failed: recorded as queued with the ticket's score, then held."""
    sid, now, s, ids = request.form["CallSid"], svc.clock(), db(), _attempt()
    t = attempts.answered(s, ids[0], ids[1], sid, now) if ids else None
    if t is None:  # cancelled meanwhile, or a stale attempt: nothing to connect
        s.commit()
        resp = VoiceResponse()
        speak(resp, svc, say("callback_gone", pick_lang(svc)))
        resp.hangup()
        return twiml(resp)
    records.record_arrival(s, sid, from_number=t.phone, now=now)
    records.note_queued(s, sid, tier=t.tier, category=t.category, verified=t.member_uid is not None,
                        member_uid=t.member_uid, score=t.score, queued_at=now, from_number=t.phone)
    s.commit()
    resp = VoiceResponse()
    speak(resp, svc, say("callback_greeting", t.lang, number=spell_ticket(t.number)))
    speak(resp, svc, say("to_agent", t.lang))
    return enqueue_degraded(resp, svc, "", t.lang)


def callback_status(svc: Services) -> Response:
    """A callback's status callback: the attempt ends in SQL (a retry due later) and the call's record closes."""
    status, ids = request.form.get("CallStatus", ""), _attempt()
    if ids is not None and status in calls.TERMINAL_CALL_STATUSES:
        sid, now, s = request.form["CallSid"], svc.clock(), db()
        attempts.ended(s, ids[0], ids[1], status, now, svc.config["callbacks"]["retry_delay_s"])
        records.close_call(
            s, sid, call_status=status, now=now, short_abandon_s=queue_settings(svc.config).short_abandon_s
        )
        s.commit()  # a retry is due later: the callback sweep dials it without its rq job
    return empty()
