"""Never a 500: the /voice blueprint's error handler, and the answers that need only the store still up (or none),
so Twilio never hears a 500 and no caller is dropped.

`answer` gives the failed webhook the answer that does without the store that failed, from the tables
below: Redis down (redis_down.py, and the /voice/degraded/* routes it hands out in routes.py), the database
down (sql_down.py), or both down (here: an apology, or a static hold for callers already holding). Which
store is down, and for how long it is skipped, is health.py's business; the TwiML the answers share is in
twiml.py (all in webhooks/degraded/).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Response, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from core.context import close_db, services
from core.logs import log_event
from core.services import Services
from ivr.replies import say
from webhooks.degraded import redis_down, sql_down
from webhooks.degraded.health import REDIS, failed_store, note_failure
from webhooks.degraded.twiml import (
    conference_hold,
    empty,
    join_as_caller,
    pick_lang,
    queue_left,
    speak,
    static_hold,
    ticket_arg,
)
from webhooks.routes.voice import bp, form_field
from webhooks.twiml import apology, twiml

log = logging.getLogger("hotline.degraded")


def answer(exc: BaseException) -> Response | None:
    """The answer to a webhook whose handler failed because a store is down; None when that is not the reason."""
    store = failed_store(exc)
    if store is None:
        return None
    svc = services()
    note_failure(svc, store, exc)
    close_db()  # whatever the failed handler began is rolled back; a new session starts on first use
    endpoint = request.endpoint or ""
    log_event(log, "store down", logging.WARNING, store=store, step=request.path.removeprefix("/voice/"),
              call_sid=request.form.get("CallSid", ""), error=type(exc).__name__)
    handlers = REDIS_DOWN if store == REDIS else SQL_DOWN
    try:
        handler = handlers.get(endpoint)
        return handler(svc) if handler else None
    except Exception as second:
        other = failed_store(second)
        if other is None:
            log.error("degraded answer failed", exc_info=second)
            return None
        note_failure(svc, other, second)
        close_db()
        log_event(log, "both stores down", logging.ERROR, step=request.path.removeprefix("/voice/"),
                  call_sid=request.form.get("CallSid", ""))
        both = BOTH_DOWN.get(endpoint)
        return both(svc) if both else None


@bp.errorhandler(Exception)
def never_a_500(exc: Exception) -> Response:
    """HTTP errors stay 4xx with a short reason; a store being down gets the answer that does without it
    (`answer` above); anything else becomes a spoken apology."""
    if isinstance(exc, HTTPException):
        return Response(f"{exc.code} {exc.name}: {exc.description}\n", status=exc.code or 400, mimetype="text/plain")
    try:
        without_store = answer(exc)
    except Exception as second:  # the last resort below must always be reached
        log.error("degraded answer failed", exc_info=second)
        without_store = None
    if without_store is not None:
        return without_store
    log.error(
        "webhook failed", exc_info=exc, extra={"fields": {"call_sid": form_field("CallSid"), "step": request.path}}
    )
    return apology(services().config)


# --- both down -------------------------------------------------------------------------------------

def _b_hold(svc: Services) -> Response:
    number = ticket_arg() if request.endpoint == "voice.degraded_hold" else ""  # only our own hold URL carries one
    return static_hold(svc, number, pick_lang(svc, request.args.get("l")))


def _b_queue_result(svc: Services) -> Response:
    result, lang = request.form.get("QueueResult", ""), pick_lang(svc)
    resp = VoiceResponse()
    if result == "queue-full":  # no Redis and no database: no other shard to offer, only the apology
        speak(resp, svc, say("apology", lang))
    return queue_left(resp, svc, result, lang)


def _b_connect(svc: Services) -> Response:
    return join_as_caller(svc, request.form["CallSid"], pick_lang(svc))


def _hang_up(svc: Services) -> Response:
    resp = VoiceResponse()
    resp.hangup()
    return twiml(resp)


Handler = Callable[[Services], Response]
REDIS_DOWN: dict[str, Handler] = {
    "voice.incoming": lambda svc: redis_down.entry(svc, greet=True),
    "voice.ivr_step": lambda svc: redis_down.entry(svc, greet=False),
    "voice.queue": lambda svc: redis_down.entry(svc, greet=False),
    "voice.wait": redis_down.hold,
    "voice.hold_offer": redis_down.hold,
    "voice.hold_step": redis_down.hold,
    "voice.queue_result": redis_down.queue_result,
    "voice.status": redis_down.status_callback,
    "voice.connect": redis_down.connect,
    "voice.agent_answer": redis_down.agent_answer,
    "voice.agent_status": lambda svc: empty(),  # the order is rebuilt from SQL; the agent's state with it
    "voice.conference_status": lambda svc: empty(),
    "voice.hold_audio": conference_hold,
    "voice.callback_answer": redis_down.callback_answer,
    "voice.callback_status": redis_down.callback_status,
}
SQL_DOWN: dict[str, Handler] = {
    "voice.incoming": lambda svc: sql_down.entry(svc, greet=True),
    "voice.ivr_step": lambda svc: sql_down.entry(svc, greet=False),
    "voice.queue": lambda svc: sql_down.entry(svc, greet=False),
    "voice.wait": lambda svc: static_hold(svc, "", pick_lang(svc)),
    "voice.hold_offer": sql_down.hold,
    "voice.hold_step": sql_down.hold,
    "voice.queue_result": sql_down.queue_result,
    "voice.status": sql_down.status_callback,
    "voice.connect": sql_down.connect,
    "voice.agent_answer": sql_down.agent_answer,
    "voice.agent_status": sql_down.agent_status,
    "voice.conference_status": sql_down.conference_status,
    "voice.callback_answer": sql_down.callback_answer,
    "voice.callback_status": lambda svc: empty(),  # the attempt stays dialing: the sweep's recovery settles it
    "voice.degraded_pin": sql_down.pin,
    "voice.degraded_hold": _b_hold,
}
BOTH_DOWN: dict[str, Handler] = {
    "voice.wait": _b_hold,
    "voice.hold_offer": _b_hold,
    "voice.hold_step": _b_hold,
    "voice.degraded_hold": _b_hold,
    "voice.queue_result": _b_queue_result,
    "voice.status": lambda svc: empty(),
    "voice.callback_status": lambda svc: empty(),
    "voice.agent_answer": _hang_up,
    "voice.agent_status": lambda svc: empty(),
    "voice.conference_status": lambda svc: empty(),
    "voice.hold_audio": conference_hold,
    "voice.connect": _b_connect,
}
