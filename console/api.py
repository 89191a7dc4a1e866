"""The JSON API under /api: agents' own state and calls; supervisors' queue and statistics."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from callqueue import clock
from callqueue.agents.accounts import agent_endpoint
from callqueue.callbacks import tickets
from callqueue.live import ordering, presence, trigger
from callqueue.live.presence import PresenceError
from callqueue.reports import history, stats
from callqueue.settings import queue_settings
from console.agent_screen import agent_view, today_figures
from console.auth import current_identity, json_error, require_role
from console.dashboard import dashboard, staffing_today
from console.devices import set_up_device
from console.openapi import OPENAPI
from console.views import agents_table, queue_view, save_wrapup
from core.context import db, services
from core.logs import log_event, mask_phone

log = logging.getLogger("hotline.api")

bp = Blueprint("api", __name__, url_prefix="/api")

AGENT_ROLES = ("agent", "supervisor")  # a supervisor may also take calls


def my_view(now: datetime) -> dict[str, Any]:
    """The requester's agent view (GET /api/agents/me), which every agent action answers with."""
    svc = services()
    return agent_view(db(), svc.redis, current_identity(), now, svc.config, offline=svc.settings.offline)


def json_body() -> dict[str, Any] | Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "the body must be a JSON object")
    return body


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(OPENAPI)


@bp.get("/agents/me")
@require_role(*AGENT_ROLES)
def me() -> Response:
    """The logged-in agent: state and current call."""
    return jsonify(my_view(services().clock()))


@bp.put("/agents/me/status")
@require_role(*AGENT_ROLES)
def set_status() -> Response:
    """Choose available, away or offline; 409 while on a call."""
    body = json_body()
    if isinstance(body, Response):
        return body
    status = body.get("status")
    if status not in presence.MANUAL_STATES:
        return json_error(400, f"status: must be one of {', '.join(presence.MANUAL_STATES)}")
    svc, ident, now = services(), current_identity(), services().clock()
    if status == "available":
        set_up_device(ident.login)  # offline: the simulated device rings when an offer comes
    try:
        presence.set_state(svc.redis, ident.login, status, now, endpoint=agent_endpoint(db(), ident.login))
    except PresenceError as exc:
        return json_error(409, str(exc))
    if status == "available":
        trigger.request_run(svc.redis, svc.jobs().dispatch)
    return jsonify(my_view(now))


@bp.post("/agents/me/wrapup")
@require_role(*AGENT_ROLES)
def wrapup() -> Response:
    """Save wrap-up notes and a disposition for the last call, and end the wrap-up."""
    body = json_body()
    if isinstance(body, Response):
        return body
    notes, disposition = body.get("notes", ""), body.get("disposition", "")
    if not isinstance(notes, str) or len(notes) > 4000 or "\x00" in notes:
        return json_error(400, "notes: must be a string of at most 4000 characters, without NUL")
    svc, ident, now = services(), current_identity(), services().clock()
    choices = svc.config["console"]["dispositions"]
    if not isinstance(disposition, str) or disposition not in choices:
        return json_error(400, f"disposition: must be one of {', '.join(choices)}")
    try:
        back_available = save_wrapup(db(), svc.redis, ident.login, notes, disposition, now)
    except PresenceError as exc:
        return json_error(409, str(exc))
    db().commit()
    if back_available:
        trigger.request_run(svc.redis, svc.jobs().dispatch)
    return jsonify(my_view(now))


@bp.get("/agents/me/today")
@require_role(*AGENT_ROLES)
def my_day() -> Response:
    """The logged-in agent's own figures today: calls taken and mean handle time."""
    svc = services()
    return jsonify(today_figures(db(), current_identity().login, svc.clock(), svc.config))


@bp.get("/agents")
@require_role("supervisor")
def agents() -> Response:
    """Every agent's state, time in it and current caller's tier."""
    svc = services()
    return jsonify(agents_table(db(), svc.redis, svc.clock()))


@bp.get("/dashboard")
@require_role("supervisor")
def live_dashboard() -> Response:
    """The supervisor dashboard's whole live picture in one request (what the page polls)."""
    svc = services()
    return jsonify(dashboard(db(), svc.redis, svc.clock(), svc.config))


@bp.get("/staffing")
@require_role("supervisor")
def staffing() -> Response:
    """Agents needed this quarter hour and the next three (Erlang C on today's arrivals so far)."""
    svc = services()
    return jsonify(staffing_today(db(), svc.clock(), svc.config))


@bp.get("/history")
@require_role("supervisor")
def day_history() -> Response:
    """A day's figures per 15-minute interval (today by default), for the history charts."""
    svc = services()
    now = svc.clock()
    try:
        day = history.parse_day(request.args.get("date"), svc.config, now)
    except ValueError as exc:
        return json_error(400, str(exc))
    return jsonify(history.intervals(db(), day, svc.config, now))


@bp.get("/queue")
@require_role("supervisor")
def queue() -> Response:
    """Callers waiting, in service order (numbers masked)."""
    svc = services()
    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        return json_error(400, "limit: must be a whole number from 1 to 1000")
    rows = ordering.in_order(svc.redis, 0, int(limit))
    return jsonify(queue_view(db(), rows, svc.clock()))


@bp.get("/stats")
@require_role("supervisor")
def statistics() -> Response:
    """Live figures per tier and overall, for today or the last 15 minutes."""
    window = request.args.get("window", "today")
    if window not in ("today", "15m"):
        return json_error(400, "window: must be today or 15m")
    svc = services()
    now = svc.clock()
    figures = stats.live(svc.redis, now, svc.config, window)
    day_start = clock.from_ms(clock.day_start_ms(clock.to_ms(now), queue_settings(svc.config).tz))
    figures["callbacks"] = tickets.counts(db(), now, day_start, svc.config["callbacks"]["overdue_after_s"])
    return jsonify(figures)


def _ticket_json(t: tickets.Ticket, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = t.as_json(history)
    out["phone"] = mask_phone(t.phone)  # supervisors see tickets, not whole numbers
    return out


@bp.get("/callbacks")
@require_role("supervisor")
def callback_list() -> Response:
    """Callback tickets, optionally of one status (open ones in dialling order), with their attempts."""
    status = request.args.get("status") or None
    if status is not None and status not in tickets.STATUSES:
        return json_error(400, f"status: must be one of {', '.join(tickets.STATUSES)}")
    limit = request.args.get("limit", "200")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        return json_error(400, "limit: must be a whole number from 1 to 1000")
    rows = tickets.list_tickets(db(), status, int(limit))
    return jsonify([_ticket_json(t, tickets.history(db(), t.id)) for t in rows])


@bp.post("/callbacks/<number>/cancel")
@require_role("supervisor")
def callback_cancel(number: str) -> Response:
    """Cancel a scheduled (or ringing) ticket: 404 unknown, 409 when connected or already closed."""
    if not number.isdigit() or len(number) > 12:
        return json_error(404, "no such ticket")
    svc, ident = services(), current_identity()
    found = tickets.cancel(db(), number, svc.clock(), by=ident.login)
    if found is None:
        return json_error(404, "no such ticket")
    t, changed = found
    if not changed:
        db().rollback()
        return json_error(409, f"ticket {number} is {t.status}: only a scheduled or ringing ticket can be cancelled")
    db().commit()
    log_event(log, "callback cancelled", ticket=number, by=ident.login)
    return jsonify(_ticket_json(t))


@bp.errorhandler(404)
@bp.errorhandler(405)
def not_here(exc: Any) -> Response:
    """JSON errors for API clients, not HTML pages."""
    return json_error(exc.code, exc.description)
