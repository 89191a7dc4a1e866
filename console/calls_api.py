"""The softphone's half of /api: call controls (hold, mute, hang up, transfer), the device (token, accept, decline),
the heartbeat, wrap-up extension, the line, and agents' presence changes. Registered on console.api's blueprint.

Every agent action answers with the requester's agent view (GET /api/agents/me), so the page redraws from it.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Response, jsonify, request

from callqueue import clock
from callqueue.agents import presence_log
from callqueue.agents.accounts import agent_endpoint
from callqueue.live import heartbeat, presence
from callqueue.settings import queue_settings
from console.api import AGENT_ROLES, bp, json_body, my_view
from console.auth import current_identity, json_error, require_role
from console.call_view import line
from console.devices import set_up_device
from core.context import db, services
from core.logs import mask_phone
from core.services import Services
from webhooks.outbound import controls, simulated_device, tokens
from webhooks.outbound.controls import Actor, ControlRefused
from webhooks.routes.voice import CALL_SID


def _actor() -> Actor:
    ident = current_identity()
    return Actor(ident.login, supervisor=ident.role == "supervisor")


def _refused(exc: ControlRefused) -> Response:
    """A refused control as JSON: the message for people and the stable reason for programs."""
    resp = jsonify(error=str(exc), reason=exc.reason)
    resp.status_code = exc.status
    return resp


def _control(call_sid: str, action: Callable[[Services, str, Actor], object]) -> Response:
    """Run a control on the call; the agent view, or the refusal as JSON."""
    if not CALL_SID.fullmatch(call_sid):
        return json_error(404, "no such call")
    try:
        action(services(), call_sid, _actor())
    except ControlRefused as exc:
        return _refused(exc)
    return jsonify(my_view(services().clock()))


def _flag(body: dict[str, Any] | Response, name: str) -> bool | Response:
    if isinstance(body, Response):
        return body
    value = body.get(name)
    if not isinstance(value, bool):
        return json_error(400, f"{name}: must be true or false")
    return value


@bp.post("/calls/<call_sid>/hold")
@require_role(*AGENT_ROLES)
def hold(call_sid: str) -> Response:
    """Put the caller on hold (they hear the hold audio) or take them off it: {"hold": true|false}."""
    return _switch(call_sid, "hold", controls.hold)


@bp.post("/calls/<call_sid>/mute")
@require_role(*AGENT_ROLES)
def mute(call_sid: str) -> Response:
    """Mute or unmute the agent's side of the call: {"mute": true|false}."""
    return _switch(call_sid, "mute", controls.mute)


def _switch(call_sid: str, name: str, control: Callable[[Services, str, Actor, bool], object]) -> Response:
    """A control that turns something on or off, from the body's boolean `name`."""
    on = _flag(json_body(), name)
    if isinstance(on, Response):
        return on
    return _control(call_sid, lambda svc, sid, actor: control(svc, sid, actor, on))


@bp.post("/calls/<call_sid>/hangup")
@require_role(*AGENT_ROLES)
def hangup(call_sid: str) -> Response:
    """End the agent's side of the call (a ringing one is declined; the caller keeps their place)."""
    return _control(call_sid, controls.hang_up)


@bp.post("/calls/<call_sid>/transfer")
@require_role(*AGENT_ROLES)
def transfer(call_sid: str) -> Response:
    """Transfer the call: {"to": "agent:<login>" | "queue", "mode": "cold" | "warm"}."""
    body = json_body()
    if isinstance(body, Response):
        return body
    to, mode = body.get("to"), body.get("mode", "cold")
    if not isinstance(to, str) or not to or len(to) > 80:
        return json_error(400, 'to: must be "queue" or "agent:<login>"')
    if not isinstance(mode, str):
        return json_error(400, "mode: must be cold or warm")
    return _control(call_sid, lambda svc, sid, actor: controls.transfer_call(svc, sid, actor, to, mode))


@bp.post("/calls/<call_sid>/transfer/complete")
@require_role(*AGENT_ROLES)
def transfer_complete(call_sid: str) -> Response:
    """Hand a warm transfer over to its target (who has answered)."""
    return _control(call_sid, controls.complete)


@bp.post("/calls/<call_sid>/transfer/cancel")
@require_role(*AGENT_ROLES)
def transfer_cancel(call_sid: str) -> Response:
    """Cancel the transfer under way; the caller stays with the first agent, on hold."""
    return _control(call_sid, controls.cancel)


@bp.get("/agents/me/token")
@require_role(*AGENT_ROLES)
def token() -> Response:
    """How the page's softphone registers: a Voice access token (real account), the simulator, or a phone."""
    svc = services()
    endpoint = agent_endpoint(db(), current_identity().login) or ""
    if not endpoint.startswith("client:"):
        return jsonify(mode="phone", endpoint=mask_phone(endpoint) or None)
    identity = endpoint.removeprefix("client:")
    if svc.settings.offline:
        return jsonify(mode="simulated", identity=identity)
    t = tokens.voice_token(svc.settings, identity)
    return jsonify(mode="sdk", identity=identity, token=t.jwt, ttl_s=t.ttl_s, expires_at=t.expires_at)


@bp.post("/agents/me/heartbeat")
@require_role(*AGENT_ROLES)
def beat() -> Response:
    """The console is there ({"device": "registered" | "unregistered" | "unknown"}); offline, the first one also
    sets up the simulated device of the agent's identity."""
    body = json_body()
    if isinstance(body, Response):
        return body
    device = body.get("device", "unknown")
    if device not in heartbeat.DEVICE_STATES:
        return json_error(400, f"device: must be one of {', '.join(heartbeat.DEVICE_STATES)}")
    svc, now, login = services(), services().clock(), current_identity().login
    set_up_device(login)
    heartbeat.beat(svc.redis, login, now, device)
    return jsonify(my_view(now))


@bp.post("/agents/me/device/<decision>")
@require_role(*AGENT_ROLES)
def device_decision(decision: str) -> Response:
    """Accept or decline the call ringing the agent's simulated device (offline); a phone's ringing call can only
    be declined here, and a real browser device answers in the page (Twilio's SDK)."""
    if decision not in ("accept", "decline"):
        return json_error(404, "device actions: accept, decline")
    svc, now, ident = services(), services().clock(), current_identity()
    p = presence.get(svc.redis, ident.login, now)
    endpoint = agent_endpoint(db(), ident.login) or ""
    if endpoint.startswith("client:") and simulated_device.available(svc):
        try:
            simulated_device.decide(svc, endpoint.removeprefix("client:"), decision)
        except simulated_device.DeviceError as exc:
            return json_error(409 if exc.status == 404 else 502,
                              "nothing rings now" if exc.status == 404 else str(exc))
        return jsonify(my_view(now))
    if decision == "accept":
        where = "in this page (the browser's phone)" if endpoint.startswith("client:") else "on your phone"
        return json_error(409, f"answer {where}")
    if not p.call_sid:
        return json_error(409, "nothing rings now")
    return _control(p.call_sid, controls.hang_up)


@bp.post("/agents/me/wrapup/extend")
@require_role(*AGENT_ROLES)
def extend_wrap_up() -> Response:
    """More time to wrap up: {"seconds": 1..3600}, up to queue.wrap_up_max_s in all."""
    body = json_body()
    if isinstance(body, Response):
        return body
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
        return json_error(400, "seconds: a number above 0 and at most 3600")
    svc, now = services(), services().clock()
    if heartbeat.extend_wrap_up(svc.redis, current_identity().login, now, float(seconds), svc.config) is None:
        return json_error(409, "you are not in wrap-up")
    return jsonify(my_view(now))


@bp.get("/line")
@require_role(*AGENT_ROLES)
def the_line() -> Response:
    """How many wait per tier and the longest wait (no caller's personal data)."""
    svc = services()
    return jsonify(line(svc.redis, svc.clock(), svc.config))


def _event(e: presence_log.PresenceEvent, with_login: bool) -> dict[str, Any]:
    row = {"at": e.at.isoformat(), "from": e.from_state or None, "to": e.to_state, "reason": e.reason or None}
    return {"login": e.login, **row} if with_login else row


@bp.get("/agents/me/presence")
@require_role(*AGENT_ROLES)
def my_presence() -> Response:
    """The agent's own state changes today (written by the worker's sweep every few seconds)."""
    svc, now = services(), services().clock()
    start = clock.from_ms(clock.day_start_ms(clock.to_ms(now), queue_settings(svc.config).tz))
    rows = presence_log.day_of(db(), current_identity().login, start, start + timedelta(days=1))
    return jsonify([_event(e, False) for e in rows])


@bp.get("/presence")
@require_role("supervisor")
def recent_presence() -> Response:
    """Every agent's recent state changes, newest first (?limit=1..1000, default 200)."""
    limit = request.args.get("limit", "200")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        return json_error(400, "limit: must be a whole number from 1 to 1000")
    rows = presence_log.recent(db(), services().clock() - timedelta(days=1), int(limit))
    return jsonify([_event(e, True) for e in rows])

