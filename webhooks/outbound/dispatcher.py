"""Dispatch at the edge: pair callers with agents (domain), then ring each agent for their caller (legs.py)."""
from __future__ import annotations

import logging

from callqueue.live import calls
from callqueue.live.trigger import request_run, run_started
from core.logs import log_event
from core.services import Services
from webhooks.outbound import legs
from webhooks.outbound.gateway import GatewayError

log = logging.getLogger("hotline.dispatch")


def request_dispatch(svc: Services) -> bool:
    """Ask a worker to pair waiting callers with available agents (callqueue.live.trigger.request_run): call after
    the commit that made a caller wait or an agent available. True if a job was queued."""
    return request_run(svc.redis, svc.jobs().dispatch)


def dispatch_all(svc: Services, limit: int = 1000) -> int:
    """Claim callers and ring their agents until no pair is left or Twilio fails; return how many were rung.

    The agent is rung by a call of their own (webhooks/outbound/legs.py); the caller keeps holding in their
    Twilio queue until the agent answers. The gateway retries a failed Calls create only when Twilio provably
    placed nothing; a ring that finally failed that way puts the caller back at their place and frees the agent
    (keeping their turn). One that may have been placed (no answer from Twilio) is left as offered: if it rings,
    its answer or its no-answer settles the offer as usual, and if it never rang the sweep returns the offer
    (ring timeout + grace). Either way the run stops: retrying at once would claim the same caller again while
    Twilio is failing. The next trigger, or the worker's periodic sweep, tries again. Twilio refusing the agent's
    endpoint itself (a 4xx) is a missed offer of theirs instead, and the run goes on.
    """
    run_started(svc.redis)
    rung = 0
    for _ in range(limit):
        with svc.unit_of_work() as session:
            offer = calls.dispatch(session, svc.redis, svc.clock())
        if offer is None:
            break
        try:
            leg = legs.ring_agent(svc, offer)
        except GatewayError as exc:
            if exc.unsure:
                log_event(log, "ring unsure", logging.WARNING, call_sid=offer.call_sid, agent=offer.agent,
                          status=exc.status, attempts=exc.attempts)
                break
            if 400 <= exc.status < 500 and exc.status != 429:
                # Twilio refused this agent's endpoint (not a number it can call, an unknown client): a missed
                # offer, so an agent nobody can ring goes away after a few rather than holding every caller up.
                with svc.unit_of_work() as session:
                    calls.agent_missed(session, svc.redis, offer.call_sid, offer.agent, "failed", svc.clock(),
                                       svc.config)
                log_event(log, "agent unreachable", logging.WARNING, call_sid=offer.call_sid, agent=offer.agent,
                          status=exc.status, code=exc.code)
                continue
            calls.ring_failed(svc.redis, offer, svc.clock())
            log_event(log, "ring failed", logging.WARNING, call_sid=offer.call_sid, agent=offer.agent,
                      status=exc.status, attempts=exc.attempts)
            break
        if not calls.agent_dialled(svc.redis, offer.call_sid, offer.agent, leg):
            svc.jobs().end_legs((leg,))  # the caller left while the agent's call was being placed
        rung += 1
        log_event(log, "offered", call_sid=offer.call_sid, agent=offer.agent, tier=offer.tier, leg=leg)
    return rung
