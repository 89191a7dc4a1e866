"""The /voice blueprint: every webhook Twilio calls is signature-checked and logged here; the routes register on
`bp` from their own modules (webhooks/register.py lists them), and webhooks/degraded/answers.py makes sure
that none answers a 500."""
from __future__ import annotations

import logging
import re
import time

from flask import Blueprint, Response, abort, current_app, g, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from core.context import metrics, services
from core.logs import log_event, mask_phone
from core.metrics import UNMATCHED, observe_webhook
from webhooks.security import signature_valid
from webhooks.twiml import apology

log = logging.getLogger("hotline.webhooks")
bp = Blueprint("voice", __name__, url_prefix="/voice")


def form_field(name: str) -> str:
    """A form field for logging, or "" when the body cannot be parsed (too large, malformed)."""
    try:
        return request.form.get(name, "")
    except HTTPException:
        return ""


@bp.before_request
def check_request() -> None:
    """Refuse oversized (413), unsigned or tampered (403) requests, and requests with no CallSid (400)."""
    g.t0 = time.perf_counter()
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        abort(413, f"request body over {limit} bytes")
    s = services().settings
    if not signature_valid(request, s.twilio_auth_token, s.public_url):
        log_event(log, "bad signature", logging.WARNING, path=request.path, remote=request.remote_addr,
                  has_signature=bool(request.headers.get("X-Twilio-Signature")))
        abort(403, "invalid X-Twilio-Signature")
    if request.endpoint == "voice.conference_status":
        # A conference's own events (start, end) name no call (https://www.twilio.com/docs/voice/api/
        # conference-resource#conference-status-callback-parameters): the conference is required instead.
        if not CONFERENCE_SID.fullmatch(request.form.get("ConferenceSid", "")):
            abort(400, "ConferenceSid must be CF followed by 32 lowercase hex digits")
    elif not request.form.get("CallSid"):
        abort(400, "CallSid is required")
    problem = form_problem(request.form)
    if problem:
        abort(400, problem)


# What Twilio documents for the fields that reach SQL as they are; anything else is not from Twilio (a signed
# request can still be replayed or hand-made with the token) and must not reach a column it would not fit.
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
CONFERENCE_SID = re.compile(r"CF[0-9a-f]{32}")
KNOWN_VALUES = {
    "CallStatus": frozenset({"queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed",
                             "no-answer", "canceled"}),
    "DialCallStatus": frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"}),
    "QueueResult": frozenset({"bridged", "bridging-in-process", "error", "hangup", "leave", "redirected",
                              "redirected-from-bridged", "queue-full", "system-error"}),
}


def form_problem(form: MultiDict[str, str]) -> str | None:
    """Why a webhook's form cannot be from Twilio (a 400), or None: CallSid's shape, NULs, unknown statuses."""
    for name in ("CallSid", "caller"):  # caller: the caller's CallSid an agent's leg URL carries
        value = form.get(name) if name == "CallSid" else request.args.get(name)
        if value is not None and not CALL_SID.fullmatch(value):
            return f"{name} must be CA followed by 32 lowercase hex digits"
    for name, value in form.items(multi=True):
        if "\x00" in value:
            return f"{name[:40]} contains a NUL character"
    for name, allowed in KNOWN_VALUES.items():
        value = form.get(name)
        if value is not None and value not in allowed:
            return f"{name} is not one of Twilio's values"
    return None


@bp.after_request
def log_webhook(response: Response) -> Response:
    """One structured line per webhook: CallSid, step, status, milliseconds; and its latency for /metrics."""
    ms = (time.perf_counter() - g.get("t0", time.perf_counter())) * 1000
    # Labelled by URL rule, not path: /voice/ivr/<step> stays one series whatever the step.
    observe_webhook(metrics(), request.url_rule.rule if request.url_rule else UNMATCHED, ms / 1000)
    log_event(log, "webhook", call_sid=form_field("CallSid"), step=request.path.removeprefix("/voice/"),
              status=response.status_code, ms=round(ms, 2), caller=mask_phone(form_field("From")))
    return response


@bp.post("/fallback")
def fallback() -> Response:
    """Twilio's fallback URL: answers from no state at all."""
    return apology(services().config)


@bp.post("/<path:unknown>")
def unknown_step(unknown: str) -> Response:
    """A voice URL we never handed out: apologise and hang up rather than 404 mid-call."""
    log_event(log, "unknown voice url", logging.WARNING, step=unknown)
    return apology(services().config)
