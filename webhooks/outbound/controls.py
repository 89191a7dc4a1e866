"""Call controls an agent (or a supervisor) asks for from the console, the JSON API or `hotline agent`: hold,
mute, hang up, transfer to an agent (cold or warm) or back to the queue, complete or cancel a warm transfer.

Each one checks the call's live state in Redis (who may act, and whether the state allows it), changes Redis
atomically where the queue or an agent's state moves, then asks Twilio through the gateway. The conference's
own status callbacks confirm what happened (hold time is counted from them). A refusal is a ControlRefused
with an HTTP status (403 not your call, 404 unknown, 409 not now, 502 Twilio failed) and a stable reason.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from callqueue import clock, handling
from callqueue.agents.accounts import agent_endpoint
from callqueue.live import conference, presence, transfer
from callqueue.live.conference import LiveCall, conference_name
from callqueue.live.transfer import TransferRefused
from core.logs import log_event
from core.services import Services
from webhooks import urls
from webhooks.outbound import legs
from webhooks.outbound.dispatcher import request_dispatch
from webhooks.outbound.gateway import GatewayError

log = logging.getLogger("hotline.controls")
T = TypeVar("T")

TARGET_PREFIX = "agent:"
REFUSED_STATUS = {"not_connected": 409, "not_yours": 403, "transfer_pending": 409, "same_agent": 409,
                  "target_unavailable": 409, "no_transfer": 409, "not_consulting": 409}


class ControlRefused(Exception):
    """A control the call does not allow: `status` (HTTP), `reason` (stable code), the message for people."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Actor:
    """Who asks: an agent's login, and whether they act as a supervisor (any call) or only on their own."""

    login: str
    supervisor: bool = False


def _call(svc: Services, call_sid: str, actor: Actor) -> LiveCall:
    """The call, if the actor may control it: its agent, the agent consulting on it, or a supervisor."""
    live = conference.live_call(svc.redis, call_sid)
    if live.state is None:
        raise ControlRefused(404, "unknown_call", "no such call")
    mine = actor.login in (live.agent, live.transfer.to if live.transfer else None)
    if not (mine or actor.supervisor):
        raise ControlRefused(403, "not_yours", "you can control only the calls you are on")
    return live


def _connected(svc: Services, live: LiveCall) -> str:
    """The conference's sid for a call whose caller is in it (409 otherwise)."""
    if live.state != "connected":
        raise ControlRefused(409, "not_connected", f"the call is {live.state}, not connected to an agent")
    if not live.caller_in:
        raise ControlRefused(409, "not_joined", "the caller is still being connected")
    conf = live.conference_sid or _gateway(lambda: svc.gateway.conference_sid(conference_name(live.call_sid)))
    if conf is None:
        raise ControlRefused(409, "not_joined", "the caller is still being connected")
    if not live.conference_sid:
        conference.joined(svc.redis, live.call_sid, conf)
    return conf


def _gateway(fn: Callable[[], T]) -> T:
    """Run one gateway request; its failure becomes a 502 the console can show."""
    try:
        return fn()
    except GatewayError as exc:
        raise ControlRefused(502, "twilio_failed", f"Twilio did not do it ({exc.status or 'no answer'})") from exc


def _hold(svc: Services, conf: str, caller: str, on: bool) -> None:
    if on:
        hold_url = urls.absolute(svc.settings.public_url, urls.HOLD)
        _gateway(lambda: svc.gateway.update_participant(conf, caller, hold=True, hold_url=hold_url))
    else:
        _gateway(lambda: svc.gateway.update_participant(conf, caller, hold=False))
    conference.set_flag(svc.redis, caller, "held", on, clock.to_ms(svc.clock()))


def hold(svc: Services, call_sid: str, actor: Actor, on: bool) -> LiveCall:
    """Put the caller on hold (they hear the hold audio) or take them off it."""
    live = _call(svc, call_sid, actor)
    _hold(svc, _connected(svc, live), call_sid, on)
    log_event(log, "hold" if on else "resume", call_sid=call_sid, by=actor.login)
    return conference.live_call(svc.redis, call_sid)


def mute(svc: Services, call_sid: str, actor: Actor, on: bool) -> LiveCall:
    """Mute or unmute the agent's side of the call (the caller stops hearing them)."""
    live = _call(svc, call_sid, actor)
    conf = _connected(svc, live)
    leg = live.transfer.leg if live.transfer and actor.login == live.transfer.to else live.leg
    if not leg:
        raise ControlRefused(409, "no_leg", "the agent's call is not known yet")
    _gateway(lambda: svc.gateway.update_participant(conf, leg, muted=on))
    conference.set_flag(svc.redis, call_sid, "muted", on)
    return conference.live_call(svc.redis, call_sid)


def hang_up(svc: Services, call_sid: str, actor: Actor) -> LiveCall:
    """End the agent's side: a ringing offer is declined (the caller keeps their place); a conversation ends
    (the caller hears goodbye); a consulting target leaves the consultation; the first agent leaving a consultation
    completes the transfer."""
    live = _call(svc, call_sid, actor)
    if live.transfer and live.transfer.state == "consulting" and actor.login == live.agent:
        # The first agent hanging up mid-consultation hands the caller over (as leaving a warm transfer does in
        # an ACD), rather than leaving the caller on hold with a target who was never given the call.
        return complete(svc, call_sid, actor)
    if live.transfer and actor.login == live.transfer.to and actor.login != live.agent:
        leg = live.transfer.leg
    else:
        leg = live.leg
    if live.state not in ("offered", "connected") or not leg:
        raise ControlRefused(409, "not_connected", "there is no call of yours to hang up")
    _gateway(lambda: svc.gateway.hang_up(leg))
    log_event(log, "hang up", call_sid=call_sid, by=actor.login, state=live.state)
    return conference.live_call(svc.redis, call_sid)


def transfer_call(svc: Services, call_sid: str, actor: Actor, to: str, mode: str) -> LiveCall:
    """Transfer the call to `agent:<login>` (cold: at once; warm: after a consultation) or to `queue` (back in line
    at the caller's original score)."""
    live = _call(svc, call_sid, actor)
    if mode not in transfer.MODES:
        raise ControlRefused(400, "bad_mode", "mode must be cold or warm")
    if to == "queue":
        return _to_queue(svc, live)
    if not to.startswith(TARGET_PREFIX):
        raise ControlRefused(400, "bad_target", 'to must be "queue" or "agent:<login>"')
    target = to.removeprefix(TARGET_PREFIX)
    with svc.sessions() as session:
        if agent_endpoint(session, target) is None:
            raise ControlRefused(404, "unknown_agent", f"no agent {target!r}")
    conf = _connected(svc, live)
    by, now = live.agent or actor.login, svc.clock()
    try:
        n = transfer.start(svc.redis, call_sid, by, target, mode, now)
    except TransferRefused as exc:
        raise ControlRefused(REFUSED_STATUS.get(exc.reason, 409), exc.reason, str(exc)) from exc
    endpoint = presence.get(svc.redis, target, now).endpoint or ""
    try:
        _hold(svc, conf, call_sid, True)
        if live.leg:  # the first agent leaving must not end the conference now
            svc.gateway.update_participant(conf, live.leg, end_conference_on_exit=False)
        leg = legs.ring(svc, call_sid, target, endpoint, by=by)
    except (GatewayError, ControlRefused) as exc:
        transfer.drop(svc.redis, call_sid, svc.clock(), svc.config, missed=False, target=target)
        _restore(svc, conf, call_sid, live.leg)
        raise ControlRefused(502, "twilio_failed", f"could not ring {target}; the caller is back with you") from exc
    transfer.target_dialled(svc.redis, call_sid, target, leg)
    with svc.unit_of_work() as session:
        handling.transfer_started(session, call_sid, n, by=by, to=target, mode=mode, now=now)
    if mode == "cold" and live.leg:
        legs.end_legs(svc, (live.leg,))  # the first agent leaves; wrap-up starts as their leg ends
    log_event(log, "transfer", call_sid=call_sid, by=by, to=target, mode=mode, leg=leg)
    return conference.live_call(svc.redis, call_sid)


def _restore(svc: Services, conf: str, caller: str, agent_leg: str | None) -> None:
    """After a failed transfer: the first agent ends the conference on leaving again, the caller is unheld."""
    try:
        if agent_leg:
            svc.gateway.update_participant(conf, agent_leg, end_conference_on_exit=True)
        svc.gateway.update_participant(conf, caller, hold=False)
        conference.set_flag(svc.redis, caller, "held", False)
    except GatewayError as exc:
        log_event(log, "transfer undo incomplete", logging.WARNING, call_sid=caller, status=exc.status)


def _to_queue(svc: Services, live: LiveCall) -> LiveCall:
    """The caller goes back to the queue (same score, tier, category, verification); the agent starts wrap-up."""
    if live.state != "connected" or not live.caller_in:
        raise ControlRefused(409, "not_connected", "the call is not connected to an agent")
    by, now = live.agent or "", svc.clock()
    try:
        n = transfer.to_queue(svc.redis, live.call_sid, by, now, svc.config)
    except TransferRefused as exc:
        raise ControlRefused(REFUSED_STATUS.get(exc.reason, 409), exc.reason, str(exc)) from exc
    with svc.unit_of_work() as session:
        handling.transfer_started(session, live.call_sid, n, by=by, to="queue", mode="queue", now=now)
        handling.transfer_ended(session, live.call_sid, result="completed", now=now)
    legs.requeue(svc, live.call_sid, "transfer")  # out of the conference, which ends (and the agent's leg with it)
    request_dispatch(svc)
    log_event(log, "transfer to queue", call_sid=live.call_sid, by=by)
    return conference.live_call(svc.redis, live.call_sid)


def complete(svc: Services, call_sid: str, actor: Actor) -> LiveCall:
    """Hand a warm transfer over: the target has the caller (off hold), the first agent leaves (wrap-up)."""
    live = _call(svc, call_sid, actor)
    conf = _connected(svc, live)
    xfer = live.transfer
    if xfer is None:
        raise ControlRefused(409, "no_transfer", TransferRefused.MESSAGES["no_transfer"])
    if xfer.state != "consulting" or not xfer.leg:
        raise ControlRefused(409, "not_consulting", TransferRefused.MESSAGES["not_consulting"])
    target_leg = xfer.leg
    # Twilio first (the target now ends the conference when leaving): a failure here has changed nothing.
    _gateway(lambda: svc.gateway.update_participant(conf, target_leg, end_conference_on_exit=True))
    try:
        old_leg = transfer.complete(svc.redis, call_sid, svc.clock(), svc.config)
    except TransferRefused as exc:
        raise ControlRefused(409, exc.reason, str(exc)) from exc
    with svc.unit_of_work() as session:
        handling.transfer_ended(session, call_sid, result="completed", now=svc.clock())
    now_live = conference.live_call(svc.redis, call_sid)
    try:
        _hold(svc, conf, call_sid, False)
    finally:
        legs.end_legs(svc, (old_leg,))  # the hand-over stands: the first agent leaves whatever Twilio said
    log_event(log, "transfer completed", call_sid=call_sid, to=now_live.agent)
    return conference.live_call(svc.redis, call_sid)


def cancel(svc: Services, call_sid: str, actor: Actor) -> LiveCall:
    """Cancel the transfer under way: the target's call ends; the caller stays with the first agent, on hold."""
    live = _call(svc, call_sid, actor)
    if live.transfer is None:
        raise ControlRefused(409, "no_transfer", "no transfer of this call is under way")
    dropped = transfer.drop(svc.redis, call_sid, svc.clock(), svc.config, missed=False)
    if dropped is None:
        raise ControlRefused(409, "no_transfer", "no transfer of this call is under way")
    with svc.unit_of_work() as session:
        handling.transfer_ended(session, call_sid, result="cancelled", now=svc.clock())
    if dropped.target_leg:
        legs.end_legs(svc, (dropped.target_leg,))
    if dropped.mode == "requeued":
        legs.requeue(svc, call_sid)
    elif live.conference_sid and live.leg:
        _restore_exit(svc, live.conference_sid, live.leg)
    request_dispatch(svc)  # the target is free again
    return conference.live_call(svc.redis, call_sid)


def _restore_exit(svc: Services, conf: str, agent_leg: str) -> None:
    try:
        svc.gateway.update_participant(conf, agent_leg, end_conference_on_exit=True)
    except GatewayError as exc:
        log_event(log, "end-on-exit not restored", logging.WARNING, call_sid=agent_leg, status=exc.status)
