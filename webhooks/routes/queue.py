"""The queue webhooks: hold (<Enqueue> + waitUrl), connect to the agent (<Dial> + whisper), and how the caller left."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import Response, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from callqueue.callbacks import tickets
from callqueue.live import calls, presence
from core import keys
from core.config import Config
from core.context import db, services
from core.logs import log_event
from core.services import Services
from ivr import session as ivr_session
from ivr.session import CallState
from webhooks.booking import spell_ticket
from webhooks.outbound.dispatcher import request_dispatch
from webhooks.routes.voice import bp
from webhooks.twiml import say, twiml

log = logging.getLogger("hotline.queue")

WAIT_URL = "/voice/wait"
QUEUE_RESULT_URL = "/voice/queue-result"


def _prompt(config: Config, name: str, lang: str, **values: Any) -> str:
    return config.prompt(name, lang).format(**values)


def _state(svc: Services, sid: str) -> CallState:
    """The caller's IVR session (a guest in the default language if it was lost)."""
    return _session(svc, svc.redis.hgetall(keys.ivr_session(sid)))


def _session(svc: Services, fields: dict[Any, Any]) -> CallState:
    """A session from its hash fields (a guest in the default language when there are none)."""
    return ivr_session.parse(fields) or CallState(lang=svc.config["hotline"]["default_language"])


def enqueue(resp: VoiceResponse, svc: Services, sid: str, state: CallState, score: float | None = None) -> Response:
    """Put the caller in our order and answer with <Enqueue> into the Twilio queue the pen assigns.

    The order that counts is ours (Redis); the Twilio queue is only where the caller is held.
    `score`: a callback's ticket score (the member keeps their place). Commits, then asks a worker to dispatch.
    """
    now = svc.clock()
    joined = calls.join_queue(
        db(), svc.redis, sid, tier=state.tier or "guest", now=now, settings=svc.config,
        category=state.category, verified=state.verified, member_uid=state.uid or None,
        from_number=state.caller or None, score=score,
    )
    db().commit()
    if joined.queue_name is None:  # the call already ended (a late or retried request)
        resp.hangup()
        return twiml(resp)
    if joined.agents_available:
        request_dispatch(svc)  # nobody free: the agent who becomes available triggers the dispatch
    resp.enqueue(joined.queue_name, wait_url=WAIT_URL, wait_url_method="POST", action=QUEUE_RESULT_URL, method="POST")
    log_event(log, "queued", call_sid=sid, tier=state.tier, position=joined.position, queue=joined.queue_name)
    return twiml(resp)


@bp.post("/queue")
def queue() -> Response:
    """Join the agent queue with the tier and category the IVR recorded."""
    svc, sid = services(), request.form["CallSid"]
    return enqueue(VoiceResponse(), svc, sid, _state(svc, sid))


@bp.post("/wait")
def wait() -> Response:
    """waitUrl: our position and an honest estimate, then hold; Twilio asks again when this document ends."""
    svc, sid = services(), request.form["CallSid"]
    cfg = svc.config
    info = calls.waiting(svc.redis, sid, svc.clock(), cfg, queue_sid=request.form.get("QueueSid") or None,
                         extra_hash=keys.ivr_session(sid))
    state = _session(svc, info.extra)
    resp = VoiceResponse()
    waiting = info.state == "waiting" and bool(info.position)
    # Everything is said inside one <Gather>, so "1 for a callback" works during the hold audio too; when
    # it ends without a key the document ends and Twilio asks for the waitUrl again.
    offer = waiting and cfg["callbacks"]["offer_in_queue"]
    target: Any = resp.gather(input="dtmf", num_digits=1, timeout=1, action=f"/voice/hold/offer?s={state.seq}",
                              method="POST") if offer else resp
    lang = state.lang
    if waiting:
        say(target, cfg, _prompt(cfg, "queue_position", lang, position=info.position), lang)
        minutes = info.estimate.minutes()
        if minutes is None:
            say(target, cfg, _prompt(cfg, "queue_estimate_unknown", lang), lang)
        else:
            say(target, cfg, _prompt(cfg, "queue_estimate", lang, minutes=minutes), lang)
        if state.tier != next(iter(cfg.tiers)):
            say(target, cfg, _prompt(cfg, "queue_priority_note", lang), lang)
    if offer:
        say(target, cfg, _prompt(cfg, "long_wait_offer" if info.max_wait_exceeded else "hold_offer", lang), lang)
    hold_url = cfg["queue"]["hold_music_url"]
    if hold_url:
        target.play(hold_url)
    else:
        target.pause(length=cfg["queue"]["announce_every_s"])
    return twiml(resp)


@bp.post("/queue-result")
def queue_result() -> Response:
    """Enqueue action: the caller left the Twilio queue (hung up, left, redirected to an agent, queue full…)."""
    svc, sid = services(), request.form["CallSid"]
    result = request.form.get("QueueResult", "")
    settled = calls.queue_result(db(), svc.redis, sid, result, svc.clock(), svc.config)
    db().commit()
    if settled is not None and settled.agent:
        request_dispatch(svc)  # an agent rung for this caller is free again
    resp = VoiceResponse()
    if result == "queue-full":
        return enqueue(resp, svc, sid, _state(svc, sid))  # the pen marked that shard full: another one
    if result in ("error", "system-error"):
        state = _state(svc, sid)
        say(resp, svc.config, svc.config.prompt("apology", state.lang), state.lang)
    if result == "leave":  # left for a callback: the ticket's number has been said
        state = _state(svc, sid)
        say(resp, svc.config, svc.config.prompt("goodbye", state.lang), state.lang)
    if result not in ("redirected", "bridged", "bridging-in-process", "redirected-from-bridged"):
        resp.hangup()
    return twiml(resp)


@bp.post("/connect")
def connect() -> Response:
    """Where the dispatcher moves a caller: <Dial> the offered agent, with a whisper on the agent's leg."""
    svc, sid = services(), request.form["CallSid"]
    agent = request.args.get("agent", "")
    cfg, state = svc.config, _state(svc, sid)
    call = svc.redis.hmget(keys.call(sid), "state", "agent", "outcome")
    endpoint = presence.get(svc.redis, agent, svc.clock()).endpoint if agent else None
    resp = VoiceResponse()
    if call[0] != "offered" or call[1] != agent or not endpoint:
        log_event(log, "stale connect", logging.WARNING, call_sid=sid, agent=agent, state=call[0])
        if call[2] == "to_callback":
            # The caller booked a callback while a dispatch was moving them: the move cut the ticket's
            # number short, so it is said again here rather than lost with a bare hang-up.
            return ticket_goodbye(resp, svc, sid, state)
        # The offer was returned meanwhile: back to holding, at the same place.
        return enqueue(resp, svc, sid, state)
    say(resp, cfg, _prompt(cfg, "connecting", state.lang), state.lang)
    dial = Dial(action="/voice/dial-result?" + urlencode({"agent": agent}), method="POST",
                timeout=cfg["queue"]["ring_timeout_s"], caller_id=svc.settings.twilio_number or None)
    whisper = "/voice/whisper?" + urlencode({"caller": sid, "agent": agent})
    if endpoint.startswith("client:"):
        dial.client(endpoint.removeprefix("client:"), url=whisper, method="POST")
    else:
        dial.number(endpoint, url=whisper, method="POST")
    resp.append(dial)
    return twiml(resp)


def ticket_goodbye(resp: VoiceResponse, svc: Services, sid: str, state: CallState) -> Response:
    """The ticket this call booked, read out again, then goodbye and hang up."""
    booked = tickets.booked_by(db(), sid)
    if booked is not None:
        say(
            resp,
            svc.config,
            _prompt(svc.config, "ticket_created_queue", state.lang, number=spell_ticket(booked.number)),
            state.lang,
        )
    say(resp, svc.config, svc.config.prompt("goodbye", state.lang), state.lang)
    resp.hangup()
    return twiml(resp)


@bp.post("/whisper")
def whisper() -> Response:
    """On the agent's leg, before the bridge: who is calling and why. Marks the caller answered."""
    svc = services()
    caller, agent = request.args.get("caller", ""), request.args.get("agent", "")
    cfg = svc.config
    lang = cfg["hotline"]["default_language"]
    calls.agent_answered(db(), svc.redis, caller, agent, svc.clock(), cfg)
    db().commit()
    state = _state(svc, caller)
    tier = cfg.tiers.get(state.tier, cfg.tiers["guest"])["label"][lang]
    verified = _prompt(cfg, "whisper_verified" if state.verified else "whisper_unverified", lang)
    resp = VoiceResponse()
    if state.cb_ticket:
        say(resp, cfg, _prompt(cfg, "whisper_callback", lang), lang)
    say(
        resp,
        cfg,
        _prompt(cfg, "whisper", lang, tier=tier, category=category_label(cfg, state.category, lang), verified=verified),
        lang,
    )
    return twiml(resp)


def category_label(cfg: Config, category: str, lang: str) -> str:
    """A category's spoken name for the whisper (the key itself when the menu does not name it)."""
    labels = cfg.data.get("categories", {}).get(category) or {}
    return labels.get(lang) or category or _prompt(cfg, "whisper_no_category", lang)


@bp.post("/dial-result")
def dial_result() -> Response:
    """Dial action: after a conversation, goodbye; if the agent did not answer, back in line at the same place."""
    svc, sid = services(), request.form["CallSid"]
    agent = request.args.get("agent", "")
    status = request.form.get("DialCallStatus", "failed")
    if request.form.get("CallStatus") in calls.TERMINAL_CALL_STATUSES and status not in calls.ANSWERED_DIAL:
        status = "canceled"  # the caller's own leg is over: they hung up while the agent rang, whatever Dial says
    outcome = calls.dial_result(db(), svc.redis, sid, agent, status, svc.clock(), svc.config)
    db().commit()
    state = _state(svc, sid)
    resp = VoiceResponse()
    if outcome == "requeue":
        say(resp, svc.config, _prompt(svc.config, "requeue", state.lang), state.lang)
        return enqueue(resp, svc, sid, state)
    if outcome == "done":
        say(resp, svc.config, svc.config.prompt("goodbye", state.lang), state.lang)
    # The agent is free (at once with no wrap-up, or after it: the sweep covers that) and the next
    # caller must not wait for another event to be offered to them.
    request_dispatch(svc)
    resp.hangup()
    return twiml(resp)


@bp.post("/status")
def status() -> Response:
    """Status callback: on a final status, close what is still open for the call (Twilio ignores the body)."""
    svc, sid = services(), request.form["CallSid"]
    rec = calls.call_status(db(), svc.redis, sid, request.form.get("CallStatus", ""), svc.clock(), svc.config)
    db().commit()
    if rec is not None:
        request_dispatch(svc)  # the call freed an agent (rung for a caller who left, or after a conversation)
    return twiml(VoiceResponse())
