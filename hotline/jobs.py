"""What RQ jobs run with: the worker process's services (built once; rebuilt only in a forked child)."""
from __future__ import annotations

import os
from typing import Any

from core.services import Services

_cache: dict[int, Services] = {}


def adopt(svc: Services) -> None:
    """Make `svc` the services of jobs run in this process (the worker built them at start-up)."""
    _cache[os.getpid()] = svc


def job_services() -> Services:
    """The services for the current process; a forked child never shares its parent's pools."""
    pid = os.getpid()
    svc = _cache.get(pid)
    if svc is None:
        from hotline.app import create_services

        for other_pid, other in list(_cache.items()):
            # Inherited from the parent: drop the pooled connections without closing the parent's sockets.
            other.engine.dispose(close=False)
            del _cache[other_pid]
        svc = create_services()
        _cache[pid] = svc
    return svc


def rebuild(svc: Services, full: bool | None = None, counters: bool = True) -> dict[str, Any]:
    """After a store outage: SQL gets what Redis kept for it (captured callbacks become tickets, whose jobs and
    texts are queued here), Redis gets the queue back from SQL when its marker is missing (or `full`), and
    outage tickets are settled. Cheap when there is nothing to do (callqueue/recovery/rebuild.py)."""
    from callqueue.recovery import rebuild as rb
    from ivr.session import restore_session
    from members.phones import can_text
    from webhooks.outbound.callback_dialer import schedule

    out = rb.run(svc.unit_of_work, svc.redis, svc.clock(), svc.config, restore_session, full=full, counters=counters)
    for t in out.pop("booked", []):
        schedule(svc, t)
        if svc.config["callbacks"]["sms_confirmation"] and can_text(t.phone):
            # The caller never heard this number (the database was down): text it to them.
            svc.jobs().ticket_sms(t.id)
    return out


def dispatch() -> int:
    """RQ job: pair waiting callers with available agents and move them, then ring the callbacks whose turn came."""
    from callqueue.recovery import rebuild as rb
    from webhooks.outbound.callback_dialer import dial_due
    from webhooks.outbound.dispatcher import dispatch_all

    svc = job_services()
    if rb.needed(svc.redis):
        # Redis came back empty: callers recorded in SQL rejoin before anyone is paired or rung (today's
        # counters are added back by the periodic sweep alone).
        rebuild(svc, counters=False)
    dial_due(svc)  # first: a callback whose turn has come holds its agent before a later caller takes it
    return dispatch_all(svc)


def sweep() -> dict[str, Any]:
    """RQ job: end due wrap-ups, return stale offers, set silent agents offline, write presence changes to SQL,
    rebuild after an outage, callbacks (recover, dial), dispatch whoever can be paired, then set the MaxSize of
    Twilio queues that need it."""
    from callqueue.live import heartbeat
    from callqueue.live.dispatch import sweep as sweep_queue
    from webhooks.outbound import callback_dialer
    from webhooks.outbound.dispatcher import dispatch_all
    from webhooks.outbound.queues import size_queues

    svc = job_services()
    result: dict[str, Any] = dict(sweep_queue(svc.redis, svc.clock(), svc.config))
    result["gone_silent"] = len(heartbeat.silent_offline(svc.redis, svc.clock(), svc.config))
    result["presence_written"] = write_presence(svc)
    result.update(rebuild(svc))
    result.update(callback_dialer.sweep(svc))
    result["moved"] = dispatch_all(svc)
    result["queues_sized"] = size_queues(svc)
    return result


def write_presence(svc: Services) -> int:
    """Move agents' state changes from Redis's log to SQL (one sweep at a time); a wrap-up that ran out with no
    disposition marks its call. Returns how many changes were written."""
    from callqueue import handling
    from callqueue.agents import presence_log

    token = presence_log.claim_drain(svc.redis)
    if token is None:
        return 0
    written = 0
    try:
        while changes := presence_log.pending(svc.redis):
            with svc.unit_of_work() as session:
                for login, call_sid in presence_log.record(session, changes):
                    handling.wrap_up_expired(session, login, call_sid)
            presence_log.written(svc.redis, len(changes))  # after the commit: a failed write is tried again
            written += len(changes)
    finally:
        presence_log.release_drain(svc.redis, token)
    return written


def callback(ticket_id: int) -> int:
    """RQ job, scheduled at a ticket's due time: dial the due tickets whose turn has come (this one among them)."""
    from webhooks.outbound.callback_dialer import dial_due

    return dial_due(job_services())


def ticket_sms(ticket_id: int) -> str:
    """RQ job: text the member their ticket number (after the booking's commit; a failure is retried by rq)."""
    from webhooks.outbound.sms import send_ticket_sms

    return send_ticket_sms(job_services(), ticket_id)


def bridge(caller: str) -> str:
    """RQ job: move the caller into their call's conference, their agent having answered."""
    from webhooks.outbound import legs

    return legs.bridge(job_services(), caller)


def end_legs(legs_csv: str) -> int:
    """RQ job: hang up the agents' legs listed (comma-separated CallSids)."""
    from webhooks.outbound import legs

    ended = tuple(x for x in legs_csv.split(",") if x)
    legs.end_legs(job_services(), ended)
    return len(ended)


def hand_over(caller: str) -> None:
    """RQ job: the call's new agent ends the conference on leaving; the caller is taken off hold."""
    from webhooks.outbound import legs

    legs.hand_over(job_services(), caller)


def requeue(caller: str) -> None:
    """RQ job: the caller goes from the conference back to the queue."""
    from webhooks.outbound import legs

    legs.requeue(job_services(), caller)
