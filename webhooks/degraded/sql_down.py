"""The webhooks' answers while the SQL database is down (Redis up).

New callers hear the apology and the callback offer; the request is kept in Redis
(outage_capture.capture_callback) and becomes a ticket when SQL returns. The queue's own work goes on in
Redis, and its call-record events are kept for SQL (outage_capture.capture_event).
"""
from __future__ import annotations

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue.live import agent_leg, calls, conference, missed, pen, transfer
from callqueue.live import dispatch as dsp
from callqueue.recovery.capture import capture_event
from callqueue.settings import queue_settings
from core import keys
from core.services import Services
from ivr import session as ivr_session
from ivr.replies import GUEST, say
from webhooks.degraded.twiml import (
    caller_of,
    empty,
    goodbye,
    offer_callback,
    pick_lang,
    queue_left,
    speak,
)
from webhooks.outbound import legs
from webhooks.outbound.dispatcher import request_dispatch
from webhooks.routes.conference import whisper
from webhooks.routes.queue import QUEUE_RESULT_URL, WAIT_URL
from webhooks.twiml import join_conference, twiml


def _session_lang(svc: Services, sid: str) -> str:
    """The caller's language from their IVR session in Redis (the default without one)."""
    state = ivr_session.parse(svc.redis.hgetall(keys.ivr_session(sid)))
    return pick_lang(svc, state.lang if state else None)


def _capture_left(svc: Services, sid: str, s: dsp.Settled) -> None:
    if s.outcome in calls.LEFT and s.at is not None:
        capture_event(svc.redis, "left", sid, s.at, outcome=s.outcome, waited_s=s.waited_s, unheard=s.unheard)


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


def agent_answer(svc: Services) -> Response:
    """The agent answered (their leg): Redis says connected, the caller is moved in (a job), the record's half is
    kept for SQL; the whisper from the session, then the conference."""
    caller, agent, leg, now, r = (request.args.get("caller", ""), request.args.get("agent", ""),
                                  request.form["CallSid"], svc.clock(), svc.redis)
    resp = VoiceResponse()
    if request.args.get("xfer"):  # a transfer's target: Redis alone decides, as the handler did before SQL failed
        mode = transfer.target_answered(r, caller, agent, leg)
        if mode is None:
            resp.hangup()
            return twiml(resp)
        _whisper(svc, resp, caller, request.args.get("by"))
        join_conference(resp, caller, label="agent" if mode == "cold" else "consult", starts=True,
                        ends=mode == "cold")
        resp.hangup()
        return twiml(resp)
    settled = dsp.answered(r, caller, agent, now, svc.config, leg)
    if settled.outcome != "connected" or settled.at is None:
        resp.hangup()
        return twiml(resp)
    if settled.changed:
        capture_event(r, "answered", caller, settled.at, agent=agent)
        svc.jobs().bridge(caller)
    _whisper(svc, resp, caller, None)
    join_conference(resp, caller, label="agent", starts=True, ends=True)
    resp.hangup()
    return twiml(resp)


def _whisper(svc: Services, resp: VoiceResponse, caller: str, by: str | None) -> None:
    state = ivr_session.parse(svc.redis.hgetall(keys.ivr_session(caller)))
    if state is None:
        whisper(resp, svc.config, tier=GUEST, category="", verified=False, callback=False, by=by)
    else:
        whisper(resp, svc.config, tier=state.tier, category=state.category, verified=state.verified,
                callback=bool(state.cb_ticket), by=by)


def agent_status(svc: Services) -> Response:
    """Redis's half of the agent leg's end (calls.agent_missed / agent_left without their SQL lines); the dial
    status is kept for SQL."""
    caller, agent, now, r, cfg = (request.args.get("caller", ""), request.args.get("agent", ""), svc.clock(),
                                  svc.redis, svc.config)
    status = request.form.get("CallStatus", "")
    if status not in calls.TERMINAL_CALL_STATUSES or request.args.get("xfer"):
        return empty()  # a transfer target's end writes SQL too: its leg's end is settled by the caller's end
    if status == "completed":
        left = agent_leg.completed(r, caller, agent, now, cfg)
        if left.outcome == "ended":
            capture_event(r, "dial_status", caller, now, status=status)
        legs.after_left(svc, caller, left)
    else:
        m = missed.no_answer(r, caller, agent, now, cfg)
        if m.caller_back:
            capture_event(r, "dial_status", caller, now, status=status)
    request_dispatch(svc)
    return empty()


def conference_status(svc: Services) -> Response:
    """The conference's callbacks touch SQL only when the agent leaves: Redis's half of it (agent_leg.completed)."""
    caller = conference.caller_of(request.form.get("FriendlyName", ""))
    if (caller and request.form.get("StatusCallbackEvent") == "participant-leave"
            and request.form.get("ParticipantLabel") == "agent"):
        live = conference.live_call(svc.redis, caller)
        if live.agent and request.form.get("CallSid") == live.leg:
            hung_up = request.form.get("ReasonParticipantLeft") == "participant_hung_up"
            legs.after_left(svc, caller, agent_leg.completed(svc.redis, caller, live.agent, svc.clock(), svc.config,
                                                             may_hand_over=hung_up))
            request_dispatch(svc)
    return empty()


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
