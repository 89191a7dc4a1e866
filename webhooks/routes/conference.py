"""The connected call's webhooks: the agent's leg answers (whisper, then the conference), the caller joins it, the
conference's status callbacks, and what a caller on hold hears.

The agent is rung first, by a call of their own; the caller keeps holding in their Twilio queue until the agent has
answered and is moved into the conference then (a job: webhooks/outbound/legs.py). The agent joins with
endConferenceOnExit: when they leave, the conference ends and the caller hears goodbye (a transfer first clears
that flag); the caller joins with it too: when they leave, the agent's leg ends.
"""
from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime

from flask import Response, abort, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue import clock, handling
from callqueue.live import calls, conference, transfer
from core.config import Config
from core.context import db, services
from core.logs import log_event
from core.services import Services
from webhooks.outbound import legs
from webhooks.outbound.dispatcher import request_dispatch
from webhooks.routes.queue import call_state, category_label, enqueue, prompt, ticket_goodbye
from webhooks.routes.voice import bp
from webhooks.twiml import hold_document, join_conference, say, twiml

log = logging.getLogger("hotline.conference")


def whisper(resp: VoiceResponse, cfg: Config, *, tier: str, category: str, verified: bool, callback: bool,
            by: str | None = None) -> None:
    """Who is calling and why, to the agent only, before they join (`by`: who transfers the call to them)."""
    lang = cfg["hotline"]["default_language"]
    if by:
        say(resp, cfg, prompt(cfg, "whisper_transfer", lang, by=by), lang)
    if callback:
        say(resp, cfg, prompt(cfg, "whisper_callback", lang), lang)
    label = cfg.tiers.get(tier, cfg.tiers["guest"])["label"][lang]
    why = prompt(cfg, "whisper_verified" if verified else "whisper_unverified", lang)
    say(resp, cfg, prompt(cfg, "whisper", lang, tier=label, category=category_label(cfg, category, lang),
                          verified=why), lang)


def _whisper(resp: VoiceResponse, svc: Services, caller: str, by: str | None) -> None:
    state = call_state(svc, caller)
    whisper(resp, svc.config, tier=state.tier, category=state.category, verified=state.verified,
            callback=bool(state.cb_ticket), by=by)


def _gone(svc: Services) -> Response:
    resp = VoiceResponse()
    lang = svc.config["hotline"]["default_language"]
    say(resp, svc.config, svc.config.prompt("caller_gone", lang), lang)
    resp.hangup()
    return twiml(resp)


@bp.post("/agent/answer")
def agent_answer() -> Response:
    """The agent's leg answered: the whisper, then the conference (the caller is moved in meanwhile)."""
    svc, leg = services(), request.form["CallSid"]
    caller, agent = request.args.get("caller", ""), request.args.get("agent", "")
    if not caller or not agent:
        abort(400, "caller and agent are required")
    now = svc.clock()
    if request.args.get("xfer"):
        mode = transfer.target_answered(svc.redis, caller, agent, leg)
        if mode is None:
            log_event(log, "stale transfer answer", logging.WARNING, call_sid=caller, agent=agent)
            return _gone(svc)
        if mode == "cold":  # the call is the target's from this answer: the transfer is done
            handling.transfer_ended(db(), caller, result="completed", now=now)
            db().commit()
        resp = VoiceResponse()
        _whisper(resp, svc, caller, by=request.args.get("by") or None)
        join_conference(resp, caller, label="agent" if mode == "cold" else "consult", starts=True,
                        ends=mode == "cold")
        resp.hangup()
        return twiml(resp)
    settled = calls.agent_answered(db(), svc.redis, caller, agent, now, svc.config, leg=leg)
    db().commit()
    if settled.outcome != "connected":
        log_event(log, "stale agent answer", logging.WARNING, call_sid=caller, agent=agent, state=settled.outcome)
        return _gone(svc)
    if settled.changed:
        svc.jobs().bridge(caller)  # after the commit: move the caller in while the agent hears the whisper
    resp = VoiceResponse()
    _whisper(resp, svc, caller, by=conference.live_call(svc.redis, caller).transferred_by)
    join_conference(resp, caller, label="agent", starts=True, ends=True)
    resp.hangup()
    return twiml(resp)


@bp.post("/agent/status")
def agent_status() -> Response:
    """The agent's leg changed status: unanswered (missed: the caller keeps their place), or over after answering."""
    svc, leg = services(), request.form["CallSid"]
    status = request.form.get("CallStatus", "")
    caller, agent = request.args.get("caller", ""), request.args.get("agent", "")
    if not caller or not agent:
        abort(400, "caller and agent are required")
    if status not in calls.TERMINAL_CALL_STATUSES:
        return twiml(VoiceResponse())
    now = svc.clock()
    if request.args.get("xfer"):
        legs.transfer_leg_ended(svc, caller, agent, leg, answered=status == "completed", now=now)
    elif status == "completed":
        left = calls.agent_left(db(), svc.redis, caller, agent, now, svc.config)
        db().commit()
        legs.after_left(svc, caller, left)
    else:
        missed = calls.agent_missed(db(), svc.redis, caller, agent, status, now, svc.config)
        db().commit()
        log_event(log, "offer missed", call_sid=caller, agent=agent, status=status, agent_state=missed.agent_state,
                  in_a_row=missed.missed_in_a_row)
    request_dispatch(svc)  # an agent may be free, or a caller back in line
    return twiml(VoiceResponse())


@bp.post("/connect")
def connect() -> Response:
    """Where the caller is moved once their agent has answered: into the call's conference."""
    svc, sid = services(), request.form["CallSid"]
    agent = request.args.get("agent", "")
    state = call_state(svc, sid)
    resp = VoiceResponse()
    if not conference.caller_moved(svc.redis, sid, agent):
        live = conference.live_call(svc.redis, sid)
        log_event(log, "stale connect", logging.WARNING, call_sid=sid, agent=agent, state=live.state)
        if live.outcome == "to_callback":
            # The caller booked a callback while being moved: the move cut the ticket's number short, so it is
            # said again here rather than lost with a bare hang-up.
            return ticket_goodbye(resp, svc, sid, state)
        return enqueue(resp, svc, sid, state)  # the agent left meanwhile: back to holding, same place
    say(resp, svc.config, svc.config.prompt("connecting", state.lang), state.lang)
    # Silence while the agent hears the whisper (waitUrl "" plays nothing); hold audio only when held.
    join_conference(resp, sid, label="caller", starts=False, ends=True, wait_url="")
    say(resp, svc.config, svc.config.prompt("goodbye", state.lang), state.lang)  # the agent has left
    resp.hangup()
    return twiml(resp)


@bp.post("/conference/status")
def conference_status() -> Response:
    """The conference's status callbacks: who joined or left, hold and mute. Idempotent, in any order."""
    svc = services()
    caller = conference.caller_of(request.form.get("FriendlyName", ""))
    if caller is None:
        return twiml(VoiceResponse())
    event, participant = request.form.get("StatusCallbackEvent", ""), request.form.get("CallSid", "")
    label = request.form.get("ParticipantLabel", "")
    conf_sid = request.form.get("ConferenceSid", "")
    now = svc.clock()
    if event == "participant-join" and conf_sid:
        if conference.joined(svc.redis, caller, conf_sid, label) == "stranded":
            legs.hang_up_stranded(svc, caller, participant)
        legs.participant_joined(svc, caller, participant, label)
    elif event in ("participant-hold", "participant-unhold") and label == "caller":
        conference.hold_event(svc.redis, caller, _sequence(), event == "participant-hold", _timestamp_ms(now))
    elif event in ("participant-mute", "participant-unmute"):
        conference.mute_event(svc.redis, caller, participant, _sequence(), event == "participant-mute")
    elif event == "participant-leave" and label == "caller":
        # a hold ends when the caller leaves (Twilio sends no unhold then); a call already closed gets its figures
        # again, now with this hold's end (its status callback may have come first)
        conference.hold_event(svc.redis, caller, _sequence(), False, _timestamp_ms(now))
        if conference.live_call(svc.redis, caller).state == "ended":
            calls.handling_figures(db(), svc.redis, caller, now)
            db().commit()
    elif event == "participant-leave" and label == "agent":
        live = conference.live_call(svc.redis, caller)
        if live.agent and participant == live.leg:
            hung_up = request.form.get("ReasonParticipantLeft") == "participant_hung_up"
            left = calls.agent_left(db(), svc.redis, caller, live.agent, now, svc.config, may_hand_over=hung_up)
            db().commit()
            legs.after_left(svc, caller, left)
            request_dispatch(svc)
    return twiml(VoiceResponse())


def _sequence() -> int:
    """The callback's SequenceNumber: the order Twilio's events happened in (0 when missing or damaged)."""
    raw = request.form.get("SequenceNumber", "")
    return int(raw) if raw.isdigit() and len(raw) < 12 else 0


def _timestamp_ms(now: clock.Now) -> int:
    """Twilio's Timestamp of the event (RFC 2822), else now: hold time counts from what Twilio reports."""
    raw = request.form.get("Timestamp", "")
    try:
        return clock.to_ms(parsedate_to_datetime(raw))
    except (TypeError, ValueError, IndexError):
        return clock.to_ms(now)


@bp.post("/conference/hold")
def hold_audio() -> Response:
    """HoldUrl: a short notice, then the hold audio (or a pause), again and again."""
    svc = services()
    return twiml(hold_document(svc.config, call_state(svc, request.form["CallSid"]).lang))
