"""The queue webhooks: hold (<Enqueue> + waitUrl), how the caller left it, and the call's end (status callback).

What follows an agent's answer (the whisper, the conference) is webhooks/routes/conference.py."""
from __future__ import annotations

import logging
from typing import Any

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue.callbacks import tickets
from callqueue.live import calls
from core import keys
from core.config import Config
from core.context import db, services
from core.logs import log_event
from core.services import Services
from ivr import session as ivr_session
from ivr.session import CallState
from webhooks.booking import spell_ticket
from webhooks.outbound.dispatcher import request_dispatch
from webhooks.outbound.legs import BACK_PROMPTS
from webhooks.routes.voice import bp
from webhooks.twiml import say, twiml

log = logging.getLogger("hotline.queue")

WAIT_URL = "/voice/wait"
QUEUE_RESULT_URL = "/voice/queue-result"


def prompt(config: Config, name: str, lang: str, **values: Any) -> str:
    """The prompt `name` in `lang` with its placeholders filled."""
    return config.prompt(name, lang).format(**values)


def call_state(svc: Services, sid: str) -> CallState:
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
    """Join the agent queue with the tier and category the IVR recorded (`back`: again, transferred to the queue or
    after a transfer no agent took: the caller hears they keep their place)."""
    svc, sid = services(), request.form["CallSid"]
    state, resp = call_state(svc, sid), VoiceResponse()
    back = BACK_PROMPTS.get(request.args.get("back", ""))
    if back:
        say(resp, svc.config, svc.config.prompt(back, state.lang), state.lang)
    return enqueue(resp, svc, sid, state)


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
        say(target, cfg, prompt(cfg, "queue_position", lang, position=info.position), lang)
        minutes = info.estimate.minutes()
        if minutes is None:
            say(target, cfg, prompt(cfg, "queue_estimate_unknown", lang), lang)
        else:
            say(target, cfg, prompt(cfg, "queue_estimate", lang, minutes=minutes), lang)
        if state.tier != next(iter(cfg.tiers)):
            say(target, cfg, prompt(cfg, "queue_priority_note", lang), lang)
    if offer:
        say(target, cfg, prompt(cfg, "long_wait_offer" if info.max_wait_exceeded else "hold_offer", lang), lang)
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
        svc.jobs().end_legs(settled.legs)  # their device stops ringing
        request_dispatch(svc)  # an agent rung for this caller is free again
    resp = VoiceResponse()
    if result == "queue-full":
        return enqueue(resp, svc, sid, call_state(svc, sid))  # the pen marked that shard full: another one
    if result in ("error", "system-error"):
        state = call_state(svc, sid)
        say(resp, svc.config, svc.config.prompt("apology", state.lang), state.lang)
    if result == "leave":  # left for a callback: the ticket's number has been said
        state = call_state(svc, sid)
        say(resp, svc.config, svc.config.prompt("goodbye", state.lang), state.lang)
    if result not in ("redirected", "bridged", "bridging-in-process", "redirected-from-bridged"):
        resp.hangup()
    return twiml(resp)


def ticket_goodbye(resp: VoiceResponse, svc: Services, sid: str, state: CallState) -> Response:
    """The ticket this call booked, read out again, then goodbye and hang up."""
    booked = tickets.booked_by(db(), sid)
    if booked is not None:
        say(
            resp,
            svc.config,
            prompt(svc.config, "ticket_created_queue", state.lang, number=spell_ticket(booked.number)),
            state.lang,
        )
    say(resp, svc.config, svc.config.prompt("goodbye", state.lang), state.lang)
    resp.hangup()
    return twiml(resp)


def category_label(cfg: Config, category: str, lang: str) -> str:
    """A category's spoken name for the whisper (the key itself when the menu does not name it)."""
    labels = cfg.data.get("categories", {}).get(category) or {}
    return labels.get(lang) or category or prompt(cfg, "whisper_no_category", lang)


@bp.post("/status")
def status() -> Response:
    """Status callback: on a final status, close what is still open for the call (Twilio ignores the body)."""
    svc, sid = services(), request.form["CallSid"]
    ended = calls.call_status(db(), svc.redis, sid, request.form.get("CallStatus", ""), svc.clock(), svc.config)
    db().commit()
    if ended is not None:
        svc.jobs().end_legs(ended.legs)  # an agent rung for a caller who left, or alone in the conference
        request_dispatch(svc)  # the call freed an agent (rung for a caller who left, or after a conversation)
    return twiml(VoiceResponse())
