"""Dispatch at the edge: pair callers with agents (domain), then move each caller to its agent (gateway)."""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from callqueue.live import calls
from callqueue.live.dispatch import Offer
from callqueue.live.trigger import request_run, run_started
from core.logs import log_event
from core.services import Services
from webhooks.outbound.gateway import GatewayError

log = logging.getLogger("hotline.dispatch")

# Twilio's "no such call" / "call not in progress": the caller has gone, do not put them back.
CALLER_GONE_CODES = {20404, 21220}


def request_dispatch(svc: Services) -> bool:
    """Ask a worker to pair waiting callers with available agents (callqueue.live.trigger.request_run): call after
    the commit that made a caller wait or an agent available. True if a job was queued."""
    return request_run(svc.redis, svc.jobs().dispatch)


def connect_url(svc: Services, offer: Offer) -> str:
    """The absolute URL whose TwiML dials `offer`'s agent (Twilio fetches it for the caller)."""
    query = urlencode({"agent": offer.agent, "offer": offer.attempt})
    return f"{svc.settings.public_url}/voice/connect?{query}"


def dispatch_all(svc: Services, limit: int = 1000) -> int:
    """Claim and move callers until no pair is left or Twilio fails; return how many were moved.

    The gateway retries a failed move within its budget (webhooks/outbound/gateway.py). A move that finally
    failed and provably did not happen puts the caller back at their place and frees the agent; one
    that may have happened (no answer from Twilio, and no telling whether the caller left their queue)
    is left as offered: undoing it could ring the agent while the caller is given to another one, and
    if the caller was not moved the sweep returns the offer (ring timeout + grace). Either way the run
    stops: retrying at once would claim the same caller again while Twilio is failing. The next
    trigger, or the worker's periodic sweep, tries again.
    """
    run_started(svc.redis)
    moved = 0
    for _ in range(limit):
        with svc.unit_of_work() as session:
            offer = calls.dispatch(session, svc.redis, svc.clock())
        if offer is None:
            break
        try:
            svc.gateway.redirect_call(offer.call_sid, connect_url(svc, offer), queue_sid=offer.queue_sid,
                                      queue_name=offer.pen)
        except GatewayError as exc:
            gone = exc.code in CALLER_GONE_CODES or exc.status == 404
            if exc.unsure and not gone:
                log_event(log, "move unsure", logging.WARNING, call_sid=offer.call_sid, agent=offer.agent,
                          status=exc.status, attempts=exc.attempts)
                break
            with svc.unit_of_work() as session:
                calls.move_failed(session, svc.redis, offer, svc.clock(), svc.config, caller_gone=gone)
            log_event(log, "move failed", logging.WARNING, call_sid=offer.call_sid, agent=offer.agent,
                      status=exc.status, attempts=exc.attempts, caller_gone=gone)
            if not gone:
                break
            continue
        moved += 1
        log_event(log, "offered", call_sid=offer.call_sid, agent=offer.agent, tier=offer.tier)
    return moved
