"""The JSON API under /api: agents' own state and calls; supervisors' queue and statistics."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from callqueue import ordering, presence, stats
from callqueue.presence import PresenceError
from console.auth import current_identity, json_error, require_role
from console.openapi import OPENAPI
from console.views import agent_view, queue_view, save_wrapup
from hotline.context import db, services
from webhooks.dispatcher import request_dispatch

bp = Blueprint("api", __name__, url_prefix="/api")

AGENT_ROLES = ("agent", "supervisor")  # a supervisor may also take calls


def _json_body() -> dict[str, Any] | Response:
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
    svc = services()
    return jsonify(agent_view(db(), svc.redis, current_identity(), svc.clock(), svc.config))


@bp.put("/agents/me/status")
@require_role(*AGENT_ROLES)
def set_status() -> Response:
    """Choose available, away or offline; 409 while on a call."""
    body = _json_body()
    if isinstance(body, Response):
        return body
    status = body.get("status")
    if status not in presence.MANUAL_STATES:
        return json_error(400, f"status: must be one of {', '.join(presence.MANUAL_STATES)}")
    svc, ident, now = services(), current_identity(), services().clock()
    from callqueue.agents import agent_endpoint

    try:
        presence.set_state(svc.redis, ident.login, status, now, endpoint=agent_endpoint(db(), ident.login))
    except PresenceError as exc:
        return json_error(409, str(exc))
    if status == "available":
        request_dispatch(svc)
    return jsonify(agent_view(db(), svc.redis, ident, now, svc.config))


@bp.post("/agents/me/wrapup")
@require_role(*AGENT_ROLES)
def wrapup() -> Response:
    """Save wrap-up notes and a disposition for the last call, and end the wrap-up."""
    body = _json_body()
    if isinstance(body, Response):
        return body
    notes, disposition = body.get("notes", ""), body.get("disposition", "")
    if not isinstance(notes, str) or len(notes) > 4000:
        return json_error(400, "notes: must be a string of at most 4000 characters")
    if not isinstance(disposition, str) or len(disposition) > 40:
        return json_error(400, "disposition: must be a string of at most 40 characters")
    svc, ident, now = services(), current_identity(), services().clock()
    try:
        back_available = save_wrapup(db(), svc.redis, ident.login, notes, disposition, now)
    except PresenceError as exc:
        return json_error(409, str(exc))
    db().commit()
    if back_available:
        request_dispatch(svc)
    return jsonify(agent_view(db(), svc.redis, ident, now, svc.config))


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
    return jsonify(stats.live(svc.redis, svc.clock(), svc.config, window))


@bp.errorhandler(404)
@bp.errorhandler(405)
def not_here(exc: Any) -> Response:
    """JSON errors for API clients, not HTML pages."""
    return json_error(exc.code, exc.description)
