"""The callback call's webhooks: the member answered (say who calls, join the queue in place), and its status."""
from __future__ import annotations

import logging

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue.callbacks import attempts
from callqueue.live import calls as queue_calls
from core.context import db, services
from core.logs import log_event
from ivr import session as ivr_session
from ivr.flow import QUEUE
from ivr.session import CallState
from webhooks.booking import spell_ticket
from webhooks.outbound.callback_dialer import release_agent, schedule
from webhooks.outbound.dispatcher import request_dispatch
from webhooks.routes.queue import enqueue
from webhooks.routes.voice import bp
from webhooks.twiml import say, twiml

log = logging.getLogger("hotline.callbacks")


def _attempt() -> tuple[int, int] | None:
    """The ticket id and attempt number the callback URLs carry (None if damaged)."""
    ticket, n = request.args.get("ticket", ""), request.args.get("n", "")
    if not (ticket.isdigit() and n.isdigit()) or len(ticket) > 12 or len(n) > 3:
        return None
    return int(ticket), int(n)


@bp.post("/callback/answer")
def callback_answer() -> Response:
    """The member picked up: say who is calling and why, then join the queue with the ticket's score."""
    svc, sid = services(), request.form["CallSid"]
    cfg, now = svc.config, svc.clock()
    ids = _attempt()
    t = attempts.answered(db(), ids[0], ids[1], sid, now) if ids else None
    if ids:
        release_agent(svc, ids[0])  # the member joins the queue below, in the place the agent was held for
    resp = VoiceResponse()
    if t is None:  # cancelled meanwhile, or a stale attempt: nothing to connect
        db().commit()
        lang = cfg["hotline"]["default_language"]
        say(resp, cfg, cfg.prompt("callback_gone", lang), lang)
        resp.hangup()
        return twiml(resp)
    queue_calls.arrived(db(), sid, from_number=t.phone, now=now)
    db().commit()
    state = ivr_session.open_session(svc.redis, sid, CallState(
        caller=t.phone, lang=t.lang, step=QUEUE, tier=t.tier, verified=t.member_uid is not None, uid=t.member_uid or "",
        category=t.category or "", cb_ticket=t.number, started_at=now.isoformat(),
    ))
    log_event(log, "callback answered", call_sid=sid, ticket=t.number, attempt=ids[1] if ids else None)
    say(resp, cfg, cfg.prompt("callback_greeting", t.lang).format(number=spell_ticket(t.number)), t.lang)
    say(resp, cfg, cfg.prompt("to_agent", t.lang), t.lang)
    return enqueue(resp, svc, sid, state, score=t.score)


@bp.post("/callback/status")
def callback_status() -> Response:
    """Status callback of a callback call: settle the attempt (completed, or retry / fail) and the call record."""
    svc, sid = services(), request.form["CallSid"]
    status = request.form.get("CallStatus", "")
    ids = _attempt()
    if ids is None or status not in queue_calls.TERMINAL_CALL_STATUSES:
        return twiml(VoiceResponse())
    now = svc.clock()
    t = attempts.ended(db(), ids[0], ids[1], status, now, svc.config["callbacks"]["retry_delay_s"])
    ended = queue_calls.call_status(db(), svc.redis, sid, status, now, svc.config)
    db().commit()
    release_agent(svc, ids[0])
    if t is not None:
        log_event(
            log, "callback ended", call_sid=sid, ticket=t.number, attempt=ids[1], call_status=status, status=t.status
        )
        if t.status == "scheduled":
            schedule(svc, t)  # the retry, after the delay
    if ended is not None:
        svc.jobs().end_legs(ended.legs)
        request_dispatch(svc)  # a ringing callback ended: an agent or a pacing slot may be free
    return twiml(VoiceResponse())
