"""The /voice/degraded/* routes handed out while Redis is down: the PIN, the callback offer, the degraded
queue's waitUrl. Each tries only the store it needs (store_health.OWN), so each answers with either down.
"""
from __future__ import annotations

import logging

from flask import Response, request
from sqlalchemy import select

from callqueue import records
from callqueue.callbacks import attempts, tickets
from callqueue.live import ordering
from callqueue.recovery import rebuild
from callqueue.recovery.capture import capture_callback
from callqueue.recovery.outage_tickets import OUTAGE
from callqueue.settings import queue_settings
from core import keys
from core.context import close_db, db, services
from core.logs import log_event, mask_phone
from ivr.callback_steps import when_params
from ivr.replies import GUEST, say
from ivr.session import restore_session
from members.models import Member
from members.verification import Outcome, verify_pin
from webhooks.booking import spell_ticket
from webhooks.degraded.health import REDIS, REDIS_ERRORS, SQL, SQL_ERRORS, failed_store, note_failure, skipped
from webhooks.degraded.redis_down import held_tiers, hold_member
from webhooks.degraded.twiml import (
    ask_pin,
    callable_number,
    caller_of,
    goodbye,
    offer_callback,
    pick_lang,
    static_hold,
    ticket_arg,
    tier_label,
)
from webhooks.outbound.callback_dialer import calendar_of, schedule
from webhooks.routes.ivr import flow_of
from webhooks.routes.queue import wait as normal_wait
from webhooks.routes.voice import bp

log = logging.getLogger("hotline.degraded")


@bp.post("/degraded/pin")
def degraded_pin() -> Response:
    """The PIN, asked while Redis is down: checked against SQL; a held tier holds, everyone else gets the offer.

    Without Redis there is no per-number count of wrong PINs (verification.number_attempts_per_hour): the
    member's own lock in SQL (max_pin_failures wrong PINs, then lock_minutes) bounds guessing, and only the
    member whose registered number is calling is asked (there is no member-number entry in this mode).
    """
    svc = services()
    sid, caller, now = request.form["CallSid"], caller_of(svc), svc.clock()
    flow, lang = flow_of(svc), pick_lang(svc)
    m, n = request.args.get("m", ""), request.args.get("n", "")
    guest = [say("as_guest", lang)]
    if not (m.isdigit() and n.isdigit()) or len(m) > 12 or len(n) > 2:
        return offer_callback(svc, caller, GUEST, False, None, lang, [])
    member_id, tries = int(m), int(n)
    digits = request.form.get("Digits", "")[:64]
    last_try = tries + 1 >= flow.tree.max_tries
    if digits.startswith("*"):
        return offer_callback(svc, caller, GUEST, False, None, lang, guest)
    if not digits or not flow.rules.pin_format_ok(digits):
        if last_try:
            return offer_callback(svc, caller, GUEST, False, None, lang, guest)
        why = say("retry_no_input", lang) if not digits else say("pin_format", lang, min=flow.rules.pin_min,
                                                                  max=flow.rules.pin_max)
        return ask_pin(svc, member_id, tries + 1, lang, [why])
    v = verify_pin(db(), member_id, digits, 0, now, flow.rules, pin_key=svc.settings.pin_key_bytes)
    db().commit()  # the member's failure count and lock are the durable truth
    log_event(log, "pin checked without redis", call_sid=sid, caller=mask_phone(caller), outcome=v.outcome.value)
    if v.outcome is Outcome.OK:
        uid = db().scalar(select(Member.uid).where(Member.id == member_id))
        records.mark_verified(db(), sid, tier=v.tier, member_uid=uid, now=now)
        db().commit()
        says = [say("verified", lang, tier=tier_label(svc, v.tier, lang))]
        if v.tier in held_tiers(svc) and calendar_of(svc).is_open(now, v.tier):
            return hold_member(svc, sid, caller, v.tier, uid, None, lang, says)
        return offer_callback(svc, caller, v.tier, True, uid, lang, says)
    if v.outcome is Outcome.WRONG and not last_try:
        return ask_pin(svc, member_id, tries + 1, lang, [say("pin_wrong", lang, left=v.left)])
    return offer_callback(svc, caller, GUEST, False, None, lang, guest)


@bp.post("/degraded/offer")
def degraded_offer() -> Response:
    """"Press 1 to be called back": a ticket in SQL, or (SQL down too) the request kept in Redis for it."""
    svc = services()
    sid, now = request.form["CallSid"], svc.clock()
    cfg, cal, lang = svc.config, calendar_of(svc), pick_lang(svc, request.args.get("l"))
    tier = request.args.get("t", GUEST)
    tier = tier if tier in cfg.tiers else GUEST
    verified = request.args.get("v") == "1" and tier != GUEST
    uid = (request.args.get("u") or None) if verified else None
    phone = callable_number(svc, caller_of(svc))
    if request.form.get("Digits", "")[:1] != "1":
        return goodbye(svc, [], lang)
    if phone is None:
        return goodbye(svc, [say("apology", lang)], lang)
    is_open = cal.is_open(now, tier)
    if is_open:
        score, due = ordering.score_for(tier, now, cfg), now
    else:
        opens = cal.next_opening(now, tier) or now
        score, due = attempts.after_hours_score(opens, now, queue_settings(cfg).boost(tier)), max(opens, now)
    try:
        created = tickets.create(db(), phone=phone, tier=tier, lang=lang, reason=OUTAGE, score=score, due=due,
                                 now=now, max_attempts=cfg["callbacks"]["max_attempts"], member_uid=uid,
                                 source_call_sid=sid)
        db().commit()
    except SQL_ERRORS as exc:
        note_failure(svc, SQL, exc)
        close_db()
        try:
            capture_callback(svc.redis, sid, phone=phone, tier=tier, lang=lang, score=score, due=due, now=now,
                             member_uid=uid)
        except REDIS_ERRORS as exc2:
            note_failure(svc, REDIS, exc2)
            return goodbye(svc, [say("apology", lang)], lang)
        log_event(log, "callback captured in redis", call_sid=sid, to=mask_phone(phone), tier=tier)
        return goodbye(svc, [say("degraded_captured", lang)], lang)
    t = created.ticket
    if created.new and not skipped(svc, REDIS):
        try:
            schedule(svc, t)
        except REDIS_ERRORS as exc:
            note_failure(svc, REDIS, exc)  # no job: the callback sweep dials a due ticket without one
    log_event(log, "callback booked without redis", call_sid=sid, ticket=t.number, to=mask_phone(phone), tier=tier,
              new=created.new)
    number = spell_ticket(t.number)
    if not created.own:
        said = say("ticket_exists", lang, number=number)
    elif is_open:
        said = say("degraded_booked", lang, number=number)
    else:
        local_due = t.due.astimezone(cal.schedule(tier).zone).isoformat()
        said = say("ticket_created", lang, number=number, **when_params(local_due))
    return goodbye(svc, [said], lang)


@bp.post("/degraded/hold")
def degraded_hold() -> Response:
    """waitUrl of the degraded queue: once Redis answers, the caller is (put back) in our order and hears the
    usual hold document; until then a static one."""
    svc, sid = services(), request.form["CallSid"]
    lang = pick_lang(svc, request.args.get("l"))
    if not skipped(svc, REDIS):
        try:
            state = svc.redis.hget(keys.call(sid), "state")
            # Not in our order yet: put this caller back now, unless a full rebuild is due (then it does so,
            # and counts the day's figures once; until then this static document holds them).
            if state is None and not rebuild.needed(svc.redis):
                rec = records.get(db(), sid)
                if (
                    rec is not None
                    and rec.outcome == records.IN_PROGRESS
                    and rec.queued is not None
                    and rec.answered is None
                ):
                    rebuild.restore_call(db(), svc.redis, rec, svc.config, restore_session)
                    log_event(log, "held caller back in the order", call_sid=sid, tier=rec.tier)
                    state = "waiting"
            if state in ("waiting", "offered"):
                return normal_wait()
        except (*REDIS_ERRORS, *SQL_ERRORS) as exc:
            note_failure(svc, failed_store(exc) or REDIS, exc)
            close_db()
    return static_hold(svc, ticket_arg(), lang)
