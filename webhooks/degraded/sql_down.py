"""The webhooks' answers while the SQL database is down (Redis up).

New callers hear the apology and the callback offer; the request is kept in Redis
(outage_capture.capture_callback) and becomes a ticket when SQL returns. The queue's own work goes on in
Redis, and its call-record events are kept for SQL (outage_capture.capture_event).
"""
from __future__ import annotations

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue.live import calls, pen
from callqueue.live import dispatch as dsp
from callqueue.recovery.capture import capture_event
from callqueue.settings import queue_settings
from core import keys
from core.services import Services
from ivr import session as ivr_session
from ivr.replies import GUEST, say
from webhooks.degraded.twiml import (
    agent_whisper,
    caller_of,
    dial_status,
    empty,
    goodbye,
    offer_callback,
    pick_lang,
    queue_left,
    speak,
)
from webhooks.routes.queue import QUEUE_RESULT_URL, WAIT_URL
from webhooks.twiml import twiml


def _session_lang(svc: Services, sid: str) -> str:
    """The caller's language from their IVR session in Redis (the default without one)."""
    state = ivr_session.parse(svc.redis.hgetall(keys.ivr_session(sid)))
    return pick_lang(svc, state.lang if state else None)


def _capture_left(svc: Services, sid: str, s: dsp.Settled) -> None:
    if s.outcome in calls.LEFT and s.at is not None:
        capture_event(svc.redis, "left", sid, s.at, outcome=s.outcome, waited_s=s.waited_s)


def entry(svc: Services, greet: bool) -> Response:
    """/voice/incoming (a menu step, joining the queue) while SQL is down: a caller Redis already queued holds as
    usual; anyone else hears the apology and the callback offer (kept in Redis)."""
    sid, caller, now, r = request.form["CallSid"], caller_of(svc), svc.clock(), svc.redis
    call = {k: v for k, v in r.hgetall(keys.call(sid)).items()}
    lang = _session_lang(svc, sid)
    if call.get("state") in ("waiting", "offered"):  # in our order already: the SQL write that failed is kept
        capture_event(r, "queued", sid, int(call["queued"]) / 1000, tier=call.get("tier", GUEST),
                      score=float(call["score"]), category=call.get("category") or None,
                      verified=call.get("verified") == "1", member_uid=call.get("member") or None,
                      from_number=caller or None)
        resp = VoiceResponse()
        resp.enqueue(pen.assign(r, sid, svc.config), wait_url=WAIT_URL, wait_url_method="POST",
                     action=QUEUE_RESULT_URL, method="POST")
        return twiml(resp)
    if greet:
        capture_event(r, "arrival", sid, now, from_number=caller or None)
    opening = ([say("greeting", lang)] if greet else []) + [say("degraded_notice", lang)]
    return offer_callback(svc, caller, GUEST, False, None, lang, opening)


def hold(svc: Services) -> Response:
    """A callback booking in the hold loop needs SQL: say so, and hold on at the same place."""
    resp = VoiceResponse()
    speak(resp, svc, say("degraded_notice", _session_lang(svc, request.form["CallSid"])))
    resp.redirect(WAIT_URL, method="POST")
    return twiml(resp)


def queue_result(svc: Services) -> Response:
    """Redis's half of the Enqueue action as usual; the record's half kept for SQL."""
    sid, result, now, r, cfg = (
        request.form["CallSid"],
        request.form.get("QueueResult", ""),
        svc.clock(),
        svc.redis,
        svc.config,
    )
    capture_event(r, "queue_result", sid, now, result=result)
    shard = pen.release(r, sid)
    lang = _session_lang(svc, sid)
    resp = VoiceResponse()
    if result == "queue-full":
        if shard:
            pen.reconcile(r, shard, queue_settings(cfg).twilio_queue_max_size)
        resp.enqueue(pen.assign(r, sid, cfg), wait_url=WAIT_URL, wait_url_method="POST", action=QUEUE_RESULT_URL,
                     method="POST")
        return twiml(resp)
    reason = calls.QUEUE_RESULT_REASON.get(result)
    if reason is not None:
        _capture_left(svc, sid, dsp.caller_left(r, sid, now, reason, cfg))
    return queue_left(resp, svc, result, lang)


def status_callback(svc: Services) -> Response:
    """The call's status callback: Redis settles the call as usual; the record's half kept for SQL."""
    status = request.form.get("CallStatus", "")
    if status in calls.TERMINAL_CALL_STATUSES:
        sid, now, r = request.form["CallSid"], svc.clock(), svc.redis
        pen.release(r, sid)
        settled = dsp.caller_left(r, sid, now, "ended", svc.config)  # as the handler did before SQL failed: idempotent
        _capture_left(svc, sid, settled)
        if settled.outcome == "answered" and settled.at is not None and settled.agent:
            capture_event(r, "answered", sid, settled.at, agent=settled.agent)
        capture_event(r, "closed", sid, now, status=status)
    return empty()


def whisper(svc: Services) -> Response:
    """The agent answered (their leg): Redis says connected, the SQL half is kept; the whisper from the session."""
    caller, agent, now, r = request.args.get("caller", ""), request.args.get("agent", ""), svc.clock(), svc.redis
    settled = dsp.answered(r, caller, agent, now, svc.config)
    if settled.outcome == "connected" and settled.at is not None:
        capture_event(r, "answered", caller, settled.at, agent=agent)
    state = ivr_session.parse(r.hgetall(keys.ivr_session(caller)))
    if state is None:
        return agent_whisper(svc, GUEST, "", False, False)
    return agent_whisper(svc, state.tier, state.category, state.verified, bool(state.cb_ticket))


def dial_result(svc: Services) -> Response:
    """Redis's half of the Dial action (calls.dial_result without its SQL lines); the record's half kept for SQL."""
    sid, agent, status, now, r, cfg = (request.form["CallSid"], request.args.get("agent", ""), dial_status(),
                                       svc.clock(), svc.redis, svc.config)
    lang = _session_lang(svc, sid)
    capture_event(r, "dial_status", sid, now, status=status)
    resp = VoiceResponse()
    if status in calls.ANSWERED_DIAL:
        settled = dsp.answered(r, sid, agent, now, cfg)
        if settled.outcome == "connected" and settled.at is not None:
            capture_event(r, "answered", sid, settled.at, agent=agent)
        dsp.completed(r, sid, agent, now, cfg)
        return goodbye(svc, [], lang)
    if status == "canceled":
        _capture_left(svc, sid, dsp.caller_left(r, sid, now, "hangup", cfg))
        resp.hangup()
        return twiml(resp)
    back, _ = dsp.no_answer(r, sid, agent, now, cfg)
    if back or r.hget(keys.call(sid), "state") == "waiting":
        speak(resp, svc, say("requeue", lang))
        resp.enqueue(pen.assign(r, sid, cfg), wait_url=WAIT_URL, wait_url_method="POST", action=QUEUE_RESULT_URL,
                     method="POST")
        return twiml(resp)
    resp.hangup()
    return twiml(resp)


def connect(svc: Services) -> Response:
    """/voice/connect reads SQL only to read out a ticket booked while being moved: goodbye without it."""
    lang = _session_lang(svc, request.form["CallSid"])
    return goodbye(svc, [say("degraded_notice", lang)], lang)


def callback_answer(svc: Services) -> Response:
    """The ticket cannot be checked: the member hears why and is called again (the sweep recovers the attempt)."""
    lang = pick_lang(svc)
    return goodbye(svc, [say("degraded_notice", lang)], lang)


def pin(svc: Services) -> Response:
    """A PIN cannot be checked without SQL: the callback offer, as a guest."""
    lang = pick_lang(svc)
    return offer_callback(svc, caller_of(svc), GUEST, False, None, lang, [say("degraded_notice", lang)])
