"""The end-state check of `hotline bench`: every caller ended answered, abandoned or called back exactly once,
in the simulator's view and in the SQL records alike, the hotline is idle again, and Redis did not grow."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from callqueue.callbacks.tickets import OPEN, CallbackTicket
from callqueue.live import presence
from callqueue.records import CallRecord
from core import keys
from core.jobqueue import QUEUE
from core.redisconn import make_redis
from tools.bench import probe

SQL_OUTCOMES = {
    "answered": ("answered",),
    "abandoned": ("abandoned", "short_abandoned"),
    "called_back": ("to_callback",),
    "called_back_raced": ("to_callback",),
}
BOOKED = ("called_back", "called_back_raced")


def seen(result: Any) -> str:
    """How the simulator saw a caller's call end: answered, abandoned, called_back, or what went wrong."""
    if result.error is not None:
        return "error"
    talked = bool(result.talked_with())  # met an agent in the call's conference
    last = result.queue_results[-1]["QueueResult"] if result.queue_results else ""
    if talked and last != "hangup":
        return "answered"
    if last == "hangup" and not talked:
        return "abandoned"
    if last == "leave" and not talked:
        return "called_back"
    if (
        last == "redirected"
        and not talked
        and any(
            r.kind == "gather" and "/voice/hold/" in r.url and "/voice/hold/offer" not in r.url for r in result.requests
        )
    ):
        # The caller was confirming a callback number when a dispatch claimed them: the move to an agent won
        # over <Leave>. The hotline must still hold their ticket and call them back once (checked against SQL).
        return "called_back_raced"
    return f"other({last or 'never queued'}{', talked' if talked else ''})"


def story(sid: str, outcome: str, result: Any) -> str:
    """One caller's call in a line: the webhooks it requested, how it left the queue, its dials, its error."""
    steps = " ".join(f"{r.kind}:{r.url.split('/voice/', 1)[-1]}" for r in result.requests)
    return (f"{sid} ({outcome}): {steps} | queue {[q['QueueResult'] for q in result.queue_results]} "
            f"| talked with {result.talked_with()} | error {result.error!r}"[:1500])


def _quiet(stack: Any, logins: Sequence[str]) -> dict[str, Any]:
    """What is still going on: calls, open tickets, callers waiting or offered, agents not available, jobs."""
    r, sim = stack.svc.redis, stack.sim
    outbound = [e.call_sid for e in sim.events.all("call.started", direction="outbound-api")]
    with stack.svc.sessions() as db:
        open_tickets = db.scalar(
            select(func.count()).select_from(CallbackTicket).where(CallbackTicket.status.in_(OPEN))
        )
    states = Counter(p.state for p in presence.many(r, logins, datetime.now(UTC)))
    conn = make_redis(stack.redis_url, decode=False)
    try:
        q = Queue(QUEUE, connection=conn)
        jobs = q.count + StartedJobRegistry(queue=q).count
    finally:
        conn.close()
    return {
        "live_callbacks": sum(1 for sid in outbound if not sim.handle(sid).done()),
        "open_tickets": int(open_tickets or 0),
        "waiting": r.zcard(keys.ORDER), "offered": r.zcard(keys.OFFERS), "callbacks_ringing": r.zcard(keys.CB_RINGING),
        "held_in_pen": sum(int(n) for n in r.hvals(keys.PEN)),  # callers we put in a Twilio queue and did not take out
        "presence_changes_unwritten": r.llen(keys.PRESENCE_LOG),  # the sweep writes them to SQL every few seconds
        "agents_not_available": sum(n for s, n in states.items() if s != "available"),
        "jobs": jobs,
    }


def settle(
    stack: Any, logins: Sequence[str], progress: Callable[[str], None], timeout_s: float = 120.0
) -> dict[str, Any]:
    """After the last caller hung up: wait for callbacks to be rung and answered and the hotline to go idle."""
    progress("waiting for callbacks and the hotline to go idle")
    t0 = time.monotonic()
    while True:
        state = _quiet(stack, logins)
        if not any(state.values()) or time.monotonic() - t0 > timeout_s:
            return {**state, "idle": not any(state.values()), "waited_s": round(time.monotonic() - t0, 2)}
        time.sleep(0.2)  # the hotline announces no "idle" event: poll it


def fixed_keys(stack: Any, logins: Sequence[str]) -> frozenset[str]:
    """The hotline's structural Redis keys: one each, however many calls (see core/keys.py)."""
    tiers = list(stack.svc.config.tiers)
    return frozenset([keys.ORDER, keys.OFFERS, keys.AVAILABLE, keys.WRAPUP, keys.PEN, keys.CB_RINGING,
                      keys.PRESENCE_LOG, *(keys.tier_waiting(t) for t in tiers),
                      *(keys.agents_in(s) for s in keys.AGENT_STATES), *(keys.agent(login) for login in logins)])


def end_state(
    stack: Any,
    pairs: Sequence[tuple[Any, Any]],
    logins: Sequence[str],
    keys_before: dict[str, tuple[int, int]],
    keys_after: dict[str, tuple[int, int]],
    drained: dict[str, Any],
) -> dict[str, Any]:
    """Each caller's outcome from the simulator and from SQL, the callbacks, the idle hotline, Redis growth."""
    failures: list[str] = []
    stuck = [h.sid for _, h in pairs if not h.done()]
    if stuck:
        failures.append(f"{len(stuck)} calls still running after the run, e.g. {stuck[:3]}")
    outcome = {h.sid: seen(h.result) if h.done() else "stuck" for _, h in pairs}
    tiers = {h.sid: c.tier for c, h in pairs}
    bad = {sid: o for sid, o in outcome.items() if o not in SQL_OUTCOMES}
    if bad:
        handles = {h.sid: h for _, h in pairs}
        failures.append(f"{len(bad)} callers did not end answered, abandoned or called back: "
                        + "; ".join(story(sid, o, handles[sid].result) for sid, o in list(bad.items())[:3]))

    with stack.svc.sessions() as db:
        recs = {r.call_sid: r for r in db.scalars(select(CallRecord))}
        tickets = list(db.scalars(select(CallbackTicket)))
    by_source = {t.source_call_sid: t for t in tickets}
    missing = [sid for sid in outcome if sid not in recs]
    if missing:
        failures.append(f"{len(missing)} callers have no call record, e.g. {missing[:3]}")
    mismatch = [(sid, o, _rec(recs[sid])) for sid, o in outcome.items()
                if sid in recs and o in SQL_OUTCOMES and recs[sid].outcome not in SQL_OUTCOMES[o]]
    if mismatch:
        failures.append(f"{len(mismatch)} call records disagree with the simulator (sid, seen, record): {mismatch[:5]}")

    # Called back exactly once: one ticket per booking caller, dialled once, answered, its call answered by an agent.
    placed = Counter(req.params.get("To") for req in stack.sim.rest_requests("POST", "/Calls.json"))
    callback_sids = set()
    for sid, o in outcome.items():
        if o not in BOOKED:
            if sid in by_source:
                t = by_source[sid]
                failures.append(
                    f"caller {sid} ({o}) has a callback ticket {t.number} ({t.status}, {t.attempts} attempts, "
                    f"call {t.call_sid}: {recs[t.call_sid].outcome if t.call_sid in recs else None}); "
                    f"its own record: {_rec(recs.get(sid))}"
                )
                callback_sids.add(t.call_sid)
            continue
        t = by_source.get(sid)
        if t is None:
            failures.append(f"caller {sid} left for a callback but has no ticket")
            continue
        callback_sids.add(t.call_sid)
        rec = recs.get(t.call_sid or "")
        if (
            t.status != "completed"
            or t.attempts != 1
            or placed[t.phone] < 1
            or rec is None
            or rec.outcome != "answered"
        ):
            failures.append(f"ticket {t.number} of {sid}: status {t.status}, attempts {t.attempts}, "
                            f"calls placed {placed[t.phone]}, callback call record {rec.outcome if rec else None}")
    extra = set(recs) - set(outcome) - callback_sids
    if extra:
        failures.append(f"{len(extra)} call records belong to no caller or callback, e.g. {sorted(extra)[:3]}")
    unsettled = Counter(r.outcome for r in recs.values() if r.outcome == "in_progress")
    if unsettled:
        failures.append(f"{sum(unsettled.values())} call records are still in progress")
    if stack.sim.failures:
        failures.append(
            f"the simulator's REST API refused {len(stack.sim.failures)} requests: {stack.sim.failures[:2]}"
        )
    if not drained["idle"]:
        failures.append(f"the hotline did not go idle after the calls: {drained}")

    agent_keys = frozenset(keys.agent(login) for login in logins)
    redis_keys = probe.growth(keys_before, keys_after, fixed_keys(stack, logins), records=agent_keys)
    redis_keys["record_fields_named_by_data"] = probe.data_fields(stack.svc.redis, agent_keys)
    if redis_keys["persistent_new_count"] or redis_keys["collections_grown"] or redis_keys[
            "record_fields_named_by_data"]:
        failures.append(f"Redis grew: new keys without a TTL {redis_keys['persistent_new'][:5]}, "
                        f"collections grown {redis_keys['collections_grown']}, "
                        f"agents' fields named by data {redis_keys['record_fields_named_by_data']}")
    conn = make_redis(stack.redis_url, decode=False)
    try:
        failed_jobs = FailedJobRegistry(queue=Queue(QUEUE, connection=conn)).count
    finally:
        conn.close()
    if failed_jobs:
        failures.append(f"{failed_jobs} rq jobs failed (see the worker logs)")
    web_errors = sum(line.count("webhook failed") for line in _lines(stack, "web"))
    if web_errors:
        failures.append(f"{web_errors} webhooks failed inside the hotline (answered with an apology)")

    warnings = []
    # A caller who confirmed a callback while a dispatch moved them must still hear their ticket's number
    # (the stale move to /voice/connect reads it out again); not hearing it is a failure.
    handles = {h.sid: h for _, h in pairs}
    raced = [sid for sid, o in outcome.items() if o == "called_back_raced"]
    unheard = [sid for sid in raced if sid in by_source
               and not any(" ".join(by_source[sid].number) in line for line in handles[sid].result.said())]
    if unheard:
        failures.append(
            f"{len(unheard)} callers confirmed a callback while a dispatch claimed them and never heard "
            f"their ticket number; e.g. " + story(unheard[0], "called_back_raced", handles[unheard[0]].result)
        )
    if raced:
        warnings.append(f"{len(raced)} callers confirmed a callback while a dispatch moved them to an agent: "
                        f"{len(raced) - len(unheard)} heard their ticket number at /voice/connect and were called back")
    counts = Counter(outcome.values())
    per_tier: dict[str, Counter[str]] = {}
    for sid, o in outcome.items():
        per_tier.setdefault(tiers[sid], Counter())[o] += 1
    return {
        "ok": not failures,
        "failures": failures,
        "warnings": warnings,
        "callers": len(outcome),
        "outcomes": dict(counts),
        "accounted_once": sum(counts[o] for o in SQL_OUTCOMES) if not mismatch and not missing else 0,
        "per_tier": {t: dict(c) for t, c in per_tier.items()},
        "sql": {"records": len(recs), "by_outcome": dict(Counter(r.outcome for r in recs.values())),
                "tickets": len(tickets), "tickets_by_status": dict(Counter(t.status for t in tickets))},
        "drained": drained,
        "redis_keys": redis_keys,
        "rq_failed_jobs": failed_jobs,
        "web_errors": web_errors,
    }


def _rec(rec: Any) -> str:
    if rec is None:
        return "none"
    return (f"outcome {rec.outcome}, queue_result {rec.queue_result}, dial {rec.dial_status}, call {rec.call_status}, "
            f"agent {rec.agent_login}, offers {rec.offers}")


def _lines(stack: Any, prefix: str) -> list[str]:
    out: list[str] = []
    for name, _ in stack.procs:
        if name.startswith(prefix):
            out += (stack.tmp / f"{name}.log").read_text(errors="replace").splitlines()
    return out
