"""The agents' legs of a connected call, at the edge: ring the offered agent, move the caller into the conference
once they answer, and the follow-ups that keep the conference in step with what Redis decided (end a leg no one
needs, hand the caller to the agent who has them now, take them back to the queue).

Why the agent is rung first, by a call of their own, rather than added as a Participant to a conference the caller
waits in: the whisper is then plain TwiML on the agent's leg before it joins (the caller never hears it), the
caller keeps holding in their Twilio queue (position announcements, "1 for a callback") until someone has really
answered, a missed offer is that call's no-answer/busy status (the caller never moved), and the same request rings
a browser (client:identity) or a phone. The webhook steps call these; the REST requests run in rq jobs
(hotline/jobs.py), never in a webhook: Twilio waits for no one.
"""
from __future__ import annotations

import logging

from callqueue import handling
from callqueue.clock import Now
from callqueue.live import calls, conference, transfer
from callqueue.live.agent_leg import Left
from callqueue.live.conference import conference_name
from callqueue.live.dispatch import Offer
from core import keys
from core.logs import log_event
from core.services import Services
from webhooks import urls
from webhooks.outbound.gateway import GatewayError

log = logging.getLogger("hotline.legs")

LEG_EVENTS = ("completed",)  # the agent's leg: only its end matters (answering requests its TwiML)


def ring_agent(svc: Services, offer: Offer, *, transfer_by: str = "") -> str:
    """Ring `offer`'s agent by a call of their own (Calls create; its TwiML whispers, then joins the conference).
    Returns the leg's CallSid. GatewayError when Twilio refused it or may not have placed it."""
    return ring(svc, offer.call_sid, offer.agent, offer.endpoint, offer=offer.attempt, by=transfer_by)


def ring(svc: Services, caller: str, agent: str, endpoint: str, *, offer: int = 0, by: str = "") -> str:
    """Ring `agent` at `endpoint` for `caller`'s call (`by`: the agent transferring it to them). Returns the leg."""
    answer_url, status_url = leg_urls(svc.settings.public_url, caller, agent, offer=offer, by=by)
    return svc.gateway.create_call(
        endpoint, answer_url, status_url, timeout_s=int(svc.config["queue"]["ring_timeout_s"]),
        from_number=svc.settings.twilio_number, events=LEG_EVENTS,
    )


def leg_urls(base: str, caller: str, agent: str, *, offer: int = 0, by: str = "") -> tuple[str, str]:
    """The Url and StatusCallback of `agent`'s leg for `caller`'s call (`offer`: the attempt; `by`: a transfer's
    first agent)."""
    query: dict[str, str | int] = {"caller": caller, "agent": agent}
    if offer:
        query["offer"] = offer
    if by:
        query.update(xfer=1, by=by)
    return urls.absolute(base, urls.AGENT_ANSWER, **query), urls.absolute(base, urls.AGENT_STATUS, **query)


def bridge(svc: Services, caller: str) -> str:
    """Move the caller out of their Twilio queue into their call's conference, once their agent has answered.

    Returns what happened: moved, gone (the caller had left), stale (the call moved on meanwhile) or failed.
    """
    live = conference.live_call(svc.redis, caller)
    if live.state != "connected" or not live.agent or live.caller_in:
        return "stale"
    url = urls.absolute(svc.settings.public_url, urls.CONNECT, agent=live.agent)
    pen = [v.decode() if isinstance(v, bytes) else v for v in svc.redis.hmget(keys.call(caller), "queue_sid", "pen")]
    try:
        svc.gateway.redirect_call(caller, url, queue_sid=pen[0] or None, queue_name=pen[1] or None)
    except GatewayError as exc:
        if exc.unsure and conference.live_call(svc.redis, caller).caller_in:
            # No answer from Twilio, but the caller has asked for the conference since: the move was done (ending
            # the agent's leg now would cut off a caller who has just reached them).
            log_event(log, "bridge done despite error", logging.WARNING, call_sid=caller, agent=live.agent,
                      status=exc.status)
            return "moved"
        gone = exc.status == 404 or exc.code in (20404, 21220)
        log_event(log, "bridge failed", logging.WARNING, call_sid=caller, agent=live.agent, status=exc.status,
                  gone=gone)
        if not gone and live.leg:
            # The caller cannot be moved in: the agent's leg ends, and with it (caller_in unset) the caller is
            # back in line at their place (calls.agent_left); they never left their Twilio queue.
            end_legs(svc, (live.leg,))
        return "gone" if gone else "failed"
    return "moved"


def end_legs(svc: Services, legs: tuple[str, ...]) -> None:
    """Hang up agents' legs nobody needs any more (ringing for a caller who left, or alone in a conference), or a
    caller who joined a conference after their agent had left it. Status=completed ends a ringing call as well as an
    answered one; a leg already over is left as it is."""
    for leg in legs:
        try:
            svc.gateway.hang_up(leg)
        except GatewayError as exc:
            if exc.status != 404 and exc.code not in (20404, 21220):
                log_event(log, "leg not ended", logging.WARNING, call_sid=leg, status=exc.status)


def hand_over(svc: Services, caller: str) -> None:
    """The call's agent changed (a transfer): their leg now ends the conference when it leaves, and the caller,
    held while the call changed hands, hears them."""
    live = conference.live_call(svc.redis, caller)
    if live.state != "connected" or not live.leg:
        return
    conf = live.conference_sid or svc.gateway.conference_sid(conference_name(caller))
    if conf is None:
        return
    svc.gateway.update_participant(conf, live.leg, end_conference_on_exit=True)
    if live.held:
        svc.gateway.update_participant(conf, caller, hold=False)
        conference.set_flag(svc.redis, caller, "held", False)


BACK_PROMPTS = {"missed": "requeue", "transfer": "transfer_queue"}  # /voice/queue?back=…: what the caller hears


def requeue(svc: Services, caller: str, why: str = "missed") -> None:
    """Take the caller out of the conference back to the queue (their state is `waiting` again, at their score);
    `why`: a cold transfer nobody took (missed) or the agent's transfer to the queue (transfer)."""
    live = conference.live_call(svc.redis, caller)
    if live.state != "waiting":
        return
    try:
        svc.gateway.redirect_call(caller, urls.absolute(svc.settings.public_url, urls.REQUEUE, back=why))
    except GatewayError as exc:
        log_event(log, "requeue failed", logging.WARNING, call_sid=caller, status=exc.status)


def hang_up_stranded(svc: Services, caller: str, participant: str) -> None:
    """The caller joined a conference after their agent had left (conference.joined said `stranded`): the agent
    hung up while the caller was being moved in, and the conference the caller started alone would never begin.
    The caller is hung up rather than left waiting in silence."""
    log_event(log, "caller joined after the agent left", logging.WARNING, call_sid=caller)
    svc.jobs().end_legs((participant,))


def participant_joined(svc: Services, caller: str, participant: str, label: str) -> None:
    """A participant joined: a warm transfer's target starts consulting; the agent who has the call now, joining
    while the caller is held for the hand-over (a cold transfer's target, or a consult target the first agent left
    to), takes the caller off hold."""
    if label not in ("agent", "consult"):
        return
    if label == "consult" and transfer.target_joined(svc.redis, caller, participant):
        return
    live = conference.live_call(svc.redis, caller)
    if live.state == "connected" and live.leg == participant and live.held and live.transfer is None:
        svc.jobs().hand_over(caller)


def transfer_leg_ended(svc: Services, caller: str, agent: str, leg: str, *, answered: bool, now: Now) -> None:
    """A transfer target's leg ended. Unanswered: the transfer is dropped (the caller stays with the first agent,
    on hold, or back to the queue when that agent has left). After answering: if the call is theirs now, as any
    agent leaving it; if they were still consulting, the call stays with the first agent."""
    live = conference.live_call(svc.redis, caller)
    if live.agent == agent and live.leg == leg:
        with svc.unit_of_work() as session:
            left = calls.agent_left(session, svc.redis, caller, agent, now, svc.config)
        after_left(svc, caller, left)
        return
    dropped = transfer.drop(svc.redis, caller, now, svc.config, missed=not answered, target=agent, leg=leg)
    if dropped is None:
        return
    with svc.unit_of_work() as session:
        handling.transfer_ended(session, caller, result="missed" if not answered else "cancelled", now=now)
    log_event(log, "transfer dropped", call_sid=caller, target=agent, mode=dropped.mode, answered=answered)
    if dropped.mode == "requeued":
        svc.jobs().requeue(caller)  # the first agent had left: the caller goes back to the queue, same place


def after_left(svc: Services, caller: str, left: Left) -> None:
    """What follows an agent's leaving: the transfer target takes over (handed_over)."""
    if left.outcome == "handed_over":
        svc.jobs().hand_over(caller)
