"""Dialling callback tickets: pick whose turn it is (domain), place the calls (gateway), recover lost attempts.

Runs in rq jobs: one scheduled per ticket at its due time, the periodic sweep, and after an agent
becomes free (the dispatch job). Every path ends in `dial_due`; one pass runs at a time (a Redis
lock, so pacing counts are not raced), and the SQL claim makes a double dial impossible even
when the lock is lost with Redis.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from urllib.parse import urlencode

from callqueue.callbacks import attempts, tickets
from callqueue.callbacks.tickets import Ticket
from callqueue.hours import Calendar
from core import keys
from core.logs import log_event, mask_phone
from core.services import Services
from webhooks.outbound.gateway import GatewayError

log = logging.getLogger("hotline.callbacks")

LOCK_S = 60


def calendar_of(svc: Services) -> Calendar:
    """The process's hours calendar, built once from its configuration."""
    cal = svc.extras.get("hours.calendar")
    if cal is None:
        cal = svc.extras["hours.calendar"] = Calendar.from_config(svc.config)
    return cal


def job_id(ticket: Ticket) -> str:
    """The rq job id of a ticket's next attempt (one job per attempt: a repeat enqueue replaces it)."""
    return f"callback-{ticket.id}-{ticket.attempts + 1}"


def schedule(svc: Services, ticket: Ticket) -> None:
    """Enqueue the ticket's job for its due time. Call after the commit that scheduled it."""
    svc.jobs().callback(ticket.id, job_id(ticket), None if ticket.due <= svc.clock() else ticket.due)


def urls(svc: Services, ticket: Ticket, n: int) -> tuple[str, str]:
    """The answer URL and the status callback URL of attempt n (absolute: Twilio requests them)."""
    query = urlencode({"ticket": ticket.id, "n": n})
    base = svc.settings.public_url
    return f"{base}/voice/callback/answer?{query}", f"{base}/voice/callback/status?{query}"


def hold_agent(svc: Services, ticket: Ticket) -> None:
    """While the member's phone rings, dispatch keeps an agent for them (see dispatch's claim script)."""
    svc.redis.zadd(keys.CB_RINGING, {f"t{ticket.id}": ticket.score})


def release_agent(svc: Services, ticket_id: int) -> None:
    """The callback was answered (the member is in the queue now) or ended: its agent is no longer held."""
    svc.redis.zrem(keys.CB_RINGING, f"t{ticket_id}")


def dial_due(svc: Services, limit: int = 100, wait_s: float = 0.0) -> int:
    """Dial every due ticket whose turn has come (paced by free agents); return how many calls were placed.

    If another pass is running, ask it to go round once more instead (nothing is lost, nothing races);
    `wait_s` > 0 (a person running it by hand) waits up to that long for the other pass to end and runs this one.
    """
    r = svc.redis
    deadline = time.monotonic() + wait_s
    while not r.set(keys.CB_DIALER_LOCK, "1", nx=True, ex=LOCK_S):
        if time.monotonic() >= deadline:
            r.set(keys.CB_DIALER_AGAIN, "1", ex=LOCK_S)
            return 0
        time.sleep(0.02)  # a pass takes milliseconds: poll the lock rather than give up
    placed = 0
    try:
        for _ in range(10):
            r.delete(keys.CB_DIALER_AGAIN)
            placed += _one_pass(svc, limit)
            if not r.get(keys.CB_DIALER_AGAIN):
                break
    finally:
        r.delete(keys.CB_DIALER_LOCK)
    return placed


def _one_pass(svc: Services, limit: int) -> int:
    now = svc.clock()
    cal = calendar_of(svc)
    with svc.unit_of_work() as session:
        due = attempts.due_tickets(session, now, limit)
        ringing = attempts.ringing_count(session) if due else 0
    if not due:
        return 0
    pipe = svc.redis.pipeline(transaction=False)
    pipe.zcard(keys.AVAILABLE)
    for t in due:
        pipe.zcount(keys.ORDER, "-inf", f"({t.score!r}")
    available, *ahead = pipe.execute()
    ahead_of = {t.id: int(n) for t, n in zip(due, ahead, strict=True)}
    chosen = attempts.plan(due, available_agents=int(available), ringing=ringing,
                            callers_ahead=lambda t: ahead_of[t.id], is_open=lambda t: cal.is_open(now, t.tier))
    return sum(1 for t in chosen if place(svc, t.id, now))


def place(svc: Services, ticket_id: int, now: datetime) -> bool:
    """Claim the ticket and ring the member; False when another worker had it or Twilio refused.

    The gateway retries Calls create only when Twilio provably placed nothing. After an unsure failure
    (no answer: the call may exist) it is never sent again: the call is looked for among the live calls
    to the number and recorded if found; if not, the ticket stays dialing for `recover` to settle once
    stale (a ring that starts late is answered as usual; none means a new attempt, not a lost ticket).
    """
    with svc.unit_of_work() as session:
        claimed = attempts.claim(session, ticket_id, now)
    if claimed is None:
        return False
    t, n = claimed.ticket, claimed.n
    answer, status = urls(svc, t, n)
    hold_agent(svc, t)
    try:
        sid = svc.gateway.create_call(t.phone, answer, status, timeout_s=int(svc.config["callbacks"]["ring_timeout_s"]))
    except GatewayError as exc:
        found = _placed_anyway(svc, t) if exc.unsure else None
        if found is None:
            release_agent(svc, t.id)
            if exc.unsure:
                log_event(
                    log, "callback placing unsure", logging.WARNING, ticket=t.number, attempt=n, status=exc.status
                )
                return False  # still dialing: its status callback or `recover` settles it
            permanent = 400 <= exc.status < 500
            with svc.unit_of_work() as session:
                after = attempts.place_failed(session, t.id, n, svc.clock(), svc.config["callbacks"]["retry_delay_s"],
                                               str(exc), permanent)
            log_event(log, "callback not placed", logging.WARNING, ticket=t.number, attempt=n, status=exc.status,
                      code=exc.code)
            if after is not None and after.status == "scheduled":
                schedule(svc, after)
            return False
        sid = found
    with svc.unit_of_work() as session:
        attempts.placed(session, t.id, n, sid)
    log_event(log, "callback placed", ticket=t.number, attempt=n, call_sid=sid, to=mask_phone(t.phone), tier=t.tier)
    return True


def _placed_anyway(svc: Services, t: Ticket) -> str | None:
    """After an unsure Calls create: the CallSid of a live call to the member (Twilio did place it), else None."""
    try:
        return svc.gateway.live_call_sid(t.phone)
    except GatewayError:
        return None


def recover(svc: Services) -> int:
    """Tickets stuck dialing (a worker died between claim and call, or Twilio's word was lost): ask Twilio whether
    a call to the number is still live; if not, schedule the ticket again. Returns how many were re-scheduled."""
    now = svc.clock()
    cfg = svc.config["callbacks"]
    with svc.unit_of_work() as session:
        stale = attempts.stale_dialing(session, now, cfg["stale_dialing_s"])
    again = 0
    for t in stale:
        try:
            if svc.gateway.live_call_to(t.phone):
                continue  # still ringing or talking: its status callback will settle it
        except GatewayError:
            return again  # Twilio cannot tell us now: try at the next sweep rather than risk a double dial
        with svc.unit_of_work() as session:
            after = attempts.lost(session, t.id, t.attempts, now)
        release_agent(svc, t.id)
        if after is not None and after.status == "scheduled":
            again += 1
            log_event(log, "callback re-scheduled", logging.WARNING, ticket=t.number, attempt=t.attempts)
    return again


def sweep(svc: Services, wait_s: float = 0.0) -> dict[str, int]:
    """The periodic pass: recover lost attempts, then dial what is due (a Redis flush loses no ticket)."""
    recovered = recover(svc)
    return {"callbacks_recovered": recovered, "callbacks_placed": dial_due(svc, wait_s=wait_s)}


def ticket_list(svc: Services, status: str | None) -> list[Ticket]:
    """Tickets for the CLI and the API."""
    with svc.unit_of_work() as session:
        return tickets.list_tickets(session, status)
