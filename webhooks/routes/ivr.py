"""The IVR webhooks: /voice/incoming and /voice/ivr/<step>, on the /voice blueprint (with its checks and logs).

Each webhook costs at most two Redis round trips (read the session and the number's PIN failures
in one pipeline; write the changes in another) and, on verification steps, one or two SQL statements.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from flask import Response, g, request
from twilio.twiml.voice_response import VoiceResponse

from callqueue.live import calls as queue_calls
from callqueue.live import ordering
from core import keys
from core.config import Config
from core.context import db, services
from core.logs import log_event, mask_phone
from core.services import Services
from ivr import session as ivr_session
from ivr.flow import HOLD_REASONS, QUEUE, Flow, Input, Reply, Say, say
from ivr.session import CallState
from ivr.tickets import ticket_status
from members.phones import can_text, normalize_phone
from members.verification import (
    MemberRef,
    Outcome,
    Rules,
    Verification,
    find_by_phone,
    find_by_uid,
    number_blocked,
    record_number_failure,
    verify_pin,
)
from webhooks.booking import book, open_ticket_notice
from webhooks.outbound.gateway import GatewayError
from webhooks.routes import replay
from webhooks.routes.queue import WAIT_URL, enqueue
from webhooks.routes.voice import bp
from webhooks.twiml import say as say_twiml
from webhooks.twiml import twiml

log = logging.getLogger("hotline.ivr")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def to_queue(resp: VoiceResponse, svc: Services, call_sid: str, state: CallState) -> Response:
    """The hand-off to the agent queue, in the same response (no extra webhook round trip).

    The call session already holds step=queue, tier, verified, category, lang and uid; `resp`
    already says the "connecting you" prompt.
    """
    return enqueue(resp, svc, call_sid, state)


def flow_of(svc: Services) -> Flow:
    """The process's Flow, built once from its configuration."""
    flow = svc.extras.get("ivr.flow")
    if flow is None:
        flow = svc.extras["ivr.flow"] = Flow.from_config(svc.config)
    return flow


class _Stores:
    """The flow's Deps for one webhook: the request's SQL session, the number's failures so far, `now`."""

    def __init__(self, failures: int, now: datetime, rules: Rules) -> None:
        self.failures, self.now, self.rules = failures, now, rules
        self.verification: Verification | None = None

    def find_uid(self, uid: str) -> MemberRef | None:
        return find_by_uid(db(), uid)

    def verify_pin(self, member_id: int, pin: str) -> Verification:
        self.verification = verify_pin(
            db(), member_id, pin, self.failures, self.now, self.rules, pin_key=services().settings.pin_key_bytes
        )
        return self.verification


def _read(svc: Services, sid: str, caller: str) -> tuple[CallState | None, int]:
    """One round trip: the call session and the calling number's wrong PINs this hour."""
    pipe = svc.redis.pipeline(transaction=False)
    pipe.hgetall(keys.ivr_session(sid))
    pipe.get(keys.pin_failures(caller))
    stored, failures = pipe.execute()
    return ivr_session.parse(stored), int(failures or 0)


def _caller(svc: Services) -> str:
    return normalize_phone(request.form.get("From"), svc.config["hotline"]["phone_region"]) or ""


@bp.post("/incoming")
def incoming() -> Response:
    """A new call: open its session (idempotent: a retried webhook hears the same), greet, ask the first question."""
    svc, flow, sid = services(), flow_of(services()), request.form["CallSid"]
    caller = _caller(svc)
    state, failures = _read(svc, sid, caller)
    if state is None:
        now = svc.clock()
        member = find_by_phone(db(), caller) if caller else None
        state = ivr_session.open_session(
            svc.redis, sid, flow.start(caller, member, number_blocked(failures, flow.rules), now)
        )
        queue_calls.arrived(db(), sid, from_number=caller or None, now=now)  # every call gets its record
        db().commit()
        log_event(log, "call opened", call_sid=sid, caller=mask_phone(caller), known=state.member_id is not None,
                  step=state.step, locked=state.locked, closed=state.closed)
    extra = open_ticket_notice(svc, state) if state.closed else ()  # after hours: "you already have ticket N"
    return _render(svc, flow, sid, state, flow.opening(state, extra))


@bp.post("/ivr/<step>")
def ivr_step(step: str) -> Response:
    """The answer to a question (or the silence after it): move the call on by one step."""
    return _step(step, hold=False)


@bp.post("/hold/offer")
def hold_offer() -> Response:
    """A key pressed in the queue's hold loop (waitUrl <Gather>): 1 starts booking a callback that keeps the place."""
    svc, flow, sid = services(), flow_of(services()), request.form["CallSid"]
    state = ivr_session.parse(svc.redis.hgetall(keys.ivr_session(sid)))
    if state is None or state.step != QUEUE or request.args.get("s") != str(state.seq):
        again = _answered_before(svc, flow, sid, state)  # a repeat of the request that started the booking
        return again or _render(svc, flow, sid, state or CallState(), Reply(resume_hold=True), hold=True)
    waited = ordering.status(svc.redis, sid, svc.clock(), svc.config)  # one round trip: no estimate needed here
    inp = Input(digits=request.form.get("Digits", "")[:64])
    new, reply = flow.hold_offer(state, inp, long_wait=waited.max_wait_exceeded)
    if new != state:
        pipe = svc.redis.pipeline(transaction=False)
        ivr_session.save(pipe, sid, state, new)
        replay.stash(pipe, sid, replay.request_id(), reply, hold=True)
        pipe.execute()
    return _render(svc, flow, sid, new, reply, hold=True)


def _answered_before(svc: Services, flow: Flow, sid: str, state: CallState | None) -> Response | None:
    """A stale request repeating the call's last transition hears that answer again (webhooks/routes/replay.py)."""
    if state is None:
        return None
    again = replay.recall(svc.redis, sid, replay.request_id())
    if again is None:
        return None
    reply, hold = again
    log_event(log, "repeated request", call_sid=sid, step=state.step)
    return _render(svc, flow, sid, state, reply, hold=hold)


@bp.post("/hold/<step>")
def hold_step(step: str) -> Response:
    """A callback step inside the hold loop (the waitUrl's <Gather> chain): same rules, ending in <Leave>."""
    return _step(step, hold=True)


def _step(step: str, hold: bool) -> Response:
    svc, flow, sid = services(), flow_of(services()), request.form["CallSid"]
    caller = _caller(svc)
    state, failures = _read(svc, sid, caller)
    if state is None:  # session expired or lost: start the call again rather than fail
        log_event(log, "call session missing", logging.WARNING, call_sid=sid, step=step)
        if hold:
            return _render(svc, flow, sid, CallState(), Reply(resume_hold=True), hold=True)
        return incoming()
    if step != state.step or request.args.get("s") != str(state.seq):
        # repeated or stale request: change nothing; a repeat of the last transition hears its answer again,
        # anything else the current question (in the hold loop, a finished booking holds on)
        again = _answered_before(svc, flow, sid, state)
        if again is not None:
            return again
        if hold and state.step == QUEUE:
            return _render(svc, flow, sid, state, Reply(resume_hold=True), hold=True)
        return _render(svc, flow, sid, state, flow.render(state), hold=hold)
    now = svc.clock()
    stores = _Stores(failures, now, flow.rules)
    inp = Input(digits=request.form.get("Digits", "")[:64], speech=request.form.get("SpeechResult", "")[:500])
    new, reply = flow.advance(state, inp, now, stores)
    extra: list[Say] = []
    if reply.sms:
        new, said = _send_sms(svc, new, reply.sms)
        extra.append(said)
    if reply.ticket:
        found = ticket_status(db(), new.caller, new.lang, now, svc.config["hours"]["timezone"])
        extra.append(say("ticket_open", new.lang, number=found.number, status=text(svc.config, found.status))
                     if found else say("ticket_none", new.lang))
    v = stores.verification
    if v is not None and v.outcome is Outcome.OK:
        queue_calls.verified(db(), sid, tier=new.tier, member_uid=new.uid or None, now=now)
    if g.get("db") is not None:
        g.db.commit()  # the member's failure count and lock are the durable truth: committed before we answer
    in_hold = hold or state.cb_reason in HOLD_REASONS
    rid = replay.request_id()
    pipe = svc.redis.pipeline(transaction=False)
    ivr_session.save(pipe, sid, state, new)
    if v is not None and v.count_failure:
        record_number_failure(pipe, caller)
    # The answer is kept for a repeat of this request (with the session: no extra round trip); a booking's is
    # only complete once the ticket's number is known, below.
    replay.stash(pipe, sid, rid, replace(reply, says=(*extra, *reply.says)), in_hold, final=not reply.callback)
    pipe.execute()
    if v is not None:
        log_event(log, "pin checked", call_sid=sid, caller=mask_phone(caller), uid=new.uid, outcome=v.outcome.value)
    if reply.callback:
        # The ticket is committed before its number is said; from the hold loop the caller then leaves the queue.
        extra.extend(book(svc, sid, state, reply.callback, now))
        replay.stash(svc.redis, sid, rid, replace(reply, says=(*extra, *reply.says)), in_hold)
    return _render(svc, flow, sid, new, replace(reply, says=(*extra, *reply.says)), hold=in_hold)


def _send_sms(svc: Services, state: CallState, prompt: str) -> tuple[CallState, Say]:
    """Text prompt `prompt` to the caller; what to say about it, and the session noting it was sent."""
    if not state.caller or not can_text(state.caller):
        return state, say("sms_unavailable", state.lang)
    try:
        svc.gateway.send_sms(state.caller, text(svc.config, say(prompt, state.lang)))
    except GatewayError as exc:
        log_event(log, "sms failed", logging.WARNING, to=mask_phone(state.caller), prompt=prompt, error=str(exc))
        return state, say("sms_failed", state.lang)
    return replace(state, sms=f"{state.sms} {prompt}".strip()), say("sms_sent", state.lang)


def text(config: Config, s: Say) -> str:
    """The words of `s`: its prompt in its language, {placeholders} filled (unknown ones left as written)."""
    params = dict(s.params)
    return _PLACEHOLDER.sub(lambda m: str(params[m[1]]) if m[1] in params else m[0], config.prompt(s.prompt, s.lang))


def _say(target: Any, config: Config, s: Say) -> None:
    say_twiml(target, config, text(config, s), s.lang)


def _render(svc: Services, flow: Flow, sid: str, state: CallState, reply: Reply, hold: bool = False) -> Response:
    """The Reply as TwiML: says, then a <Gather> (followed by the retry <Redirect>), the queue hand-off, or goodbye.

    `hold`: the document runs in the queue's hold loop (a waitUrl chain), where only Say, Play, Pause,
    Gather, Redirect, Leave and Hangup may appear: a booked callback ends with <Leave>, and going back
    to holding is a <Redirect> to the waitUrl.
    """
    cfg = svc.config
    resp = VoiceResponse()
    for s in reply.says:
        _say(resp, cfg, s)
    if hold and (reply.resume_hold or reply.callback):
        if reply.callback:
            resp.leave()
        else:
            resp.redirect(WAIT_URL, method="POST")
        return twiml(resp)
    if reply.queue is not None:
        return to_queue(resp, svc, sid, state)
    ask = reply.ask
    if ask is not None:
        url = f"/voice/{'hold' if hold else 'ivr'}/{ask.step}?s={state.seq}"
        attrs: dict[str, Any] = {"action": url, "method": "POST", "timeout": flow.tree.timeout_s}
        if ask.digits:
            attrs["num_digits"] = ask.digits
        else:
            attrs["finish_on_key"] = "#"
        if ask.speech:
            attrs.update(
                input="dtmf speech", speech_timeout="auto", language=flow.tree.speech_language.get(ask.lang, "en-US")
            )
            if ask.hints:
                attrs["hints"] = ", ".join(ask.hints)
        else:
            attrs["input"] = "dtmf"
        gather = resp.gather(**attrs)
        for s in ask.prompts:
            _say(gather, cfg, s)
        if not ask.end_on_silence:
            resp.redirect(url, method="POST")  # Twilio comes here on silence: the same step, with no input
            return twiml(resp)
    _say(resp, cfg, say("goodbye", state.lang))
    resp.hangup()
    return twiml(resp)
