"""Issue 9 (item 2): when Redis returns, the queue is rebuilt from SQL: recorded callers back in score order (once:
a second run changes nothing), outage tickets settled, and a Redis restored from disk rebuilt too.

Figures the README's RELIABILITY section quotes are printed with a `FIGURE` prefix (pytest -s shows them).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from callqueue import records
from callqueue.callbacks import tickets
from callqueue.live import calls, ordering
from callqueue.recovery import outage_tickets, rebuild
from core import keys
from core.services import Services
from hotline import jobs
from hotline.app import create_app
from tests.support.degraded import NOW, Twilio, action, figure, said, sid_of, stores_services, ticket_rows, verbs
from tests.support.outages import RedisProcess
from tests.support.people import PIN


class Clock:
    """A fixed instant the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def redis_snapshot(r: Any) -> dict[str, Any]:
    """Every key with its value (the rebuild's lock excluded), to compare two runs."""
    out: dict[str, Any] = {}
    for k in sorted(r.keys("*")):
        kind = r.type(k)
        if kind == "hash":
            out[k] = r.hgetall(k)
        elif kind == "zset":
            out[k] = r.zrange(k, 0, -1, withscores=True)
        elif kind == "string":
            out[k] = r.get(k)
        elif kind == "list":
            out[k] = r.lrange(k, 0, -1)
        elif kind == "set":
            out[k] = sorted(r.smembers(k))
    return out


def test_the_rebuild_puts_recorded_callers_back_in_score_order_and_a_second_run_changes_nothing(
    services: Services, fault_redis: RedisProcess,
) -> None:
    clock = Clock(NOW)
    svc = stores_services(services, fault_redis.url, clock=clock)
    r = svc.redis
    with svc.unit_of_work() as s:
        def queued(n: int, tier: str, ago_s: float, **kw: Any) -> None:
            at = NOW - timedelta(seconds=ago_s)
            records.open_call(s, sid_of(n), from_number=f"+861380000{n:04d}", now=at)
            records.note_queued(
                s,
                sid_of(n),
                tier=tier,
                category="billing",
                verified=tier != "guest",
                member_uid=None if tier == "guest" else f"5{n:04d}",
                score=ordering.score_for(tier, at, svc.config),
                queued_at=at,
                from_number=f"+861380000{n:04d}",
            )
            for field_, value in kw.items():
                setattr(records.get(s, sid_of(n)), field_, value)
        queued(20, "guest", 300)              # waited 5 minutes
        queued(21, "premium", 60)             # a premium member who called a minute ago: first (600 s boost)
        queued(22, "standard", 120)
        queued(23, "guest", 90, offered=NOW - timedelta(seconds=10))    # an agent was rung 10 s ago: maybe talking
        queued(24, "guest", 200, answered=NOW - timedelta(seconds=100), outcome="answered")  # answered: not waiting
        queued(25, "guest", 5 * 3600)         # queued five hours ago: no call lasts that long
        queued(26, "guest", 100, ended=NOW - timedelta(seconds=50), outcome="abandoned")
    first = jobs.rebuild(svc)
    assert (first["restored"], first["uncertain"], first["dropped"]) == (3, 1, 0)
    assert [c["call_sid"] for c in ordering.in_order(r)] == [sid_of(21), sid_of(20), sid_of(22)]
    assert r.hget(keys.call(sid_of(20)), "queued") == str(int((NOW - timedelta(seconds=300)).timestamp() * 1000))
    session = r.hgetall(keys.ivr_session(sid_of(21)))
    assert (session["step"], session["tier"], session["verified"], session["category"]) == (
        "queue",
        "premium",
        "1",
        "billing",
    )
    assert rebuild.needed(r), "a caller maybe talking to an agent is left for a later pass: no marker yet"
    assert "counters_restored" not in first, "the day's counters wait until every caller is back"

    before = redis_snapshot(r)
    again = jobs.rebuild(svc)
    assert (again["restored"], again["dropped"]) == (0, 0) and redis_snapshot(r) == before, "idempotent"

    clock.at = NOW + timedelta(seconds=60)  # the agent's ring is long over: they are waiting after all
    later = jobs.rebuild(svc)
    assert (
        (later["restored"], later["uncertain"]) == (1, 0) and not rebuild.needed(r) and later["counters_restored"] > 0
    )
    assert [c["call_sid"] for c in ordering.in_order(r)] == [sid_of(21), sid_of(20), sid_of(22), sid_of(23)]
    from callqueue.reports import stats
    with svc.sessions() as s:
        recomputed = stats.from_records(s, clock.at, svc.config, "today")
    live = stats.live(r, clock.at, svc.config, "today")

    def counted(figures: dict[str, Any]) -> dict[str, Any]:  # "waiting" differs by design: see the 5-hour-old record
        return {
            t: {k: v for k, v in f.items() if k not in ("waiting", "longest_wait_s")}
            for t, f in figures["tiers"].items()
        }

    assert counted(live) == counted(recomputed) and live["overall"]["offered"] == 7, "today's counters rebuilt from SQL"
    settled = redis_snapshot(r)
    assert "counters_restored" not in jobs.rebuild(svc) and redis_snapshot(r) == settled, "added once"
    figure("rebuild: callers restored from SQL in one pass (of 7 records)", first["restored"])


def test_outage_tickets_are_cancelled_once_answered_and_due_at_once_when_the_caller_leaves(
    services: Services, fault_redis: RedisProcess,
) -> None:
    svc = stores_services(services, fault_redis.url)
    with svc.unit_of_work() as s:
        for n, outcome in ((30, "answered"), (31, "abandoned"), (32, "in_progress")):
            records.note_queued(s, sid_of(n), tier="premium", category=None, verified=True, member_uid=None,
                                score=NOW.timestamp() - 600, queued_at=NOW - timedelta(seconds=60), from_number=None)
            records.get(s, sid_of(n)).outcome = outcome
            tickets.create(
                s,
                phone=f"+86138000000{n}",
                tier="premium",
                lang="zh",
                reason="outage",
                score=NOW.timestamp() - 600,
                due=outage_tickets.park_due(NOW),
                now=NOW,
                max_attempts=3,
                source_call_sid=sid_of(n),
            )
    out = jobs.rebuild(svc)
    assert (out["outage_tickets_cancelled"], out["outage_tickets_due"]) == (1, 1)
    rows = {t.source_call_sid: t for t in ticket_rows(svc)}
    assert rows[sid_of(30)].status == "cancelled" and "answered while holding" in rows[sid_of(30)].note
    assert (rows[sid_of(31)].status, rows[sid_of(31)].due) == ("scheduled", NOW), "due now: the callback sweep dials it"
    assert rows[sid_of(32)].due == outage_tickets.park_due(NOW), "still holding: still parked"
    assert jobs.rebuild(svc)["outage_tickets_due"] == 0


def test_a_redis_restored_from_disk_is_rebuilt_too_held_callers_rejoin_and_callers_who_left_are_dropped(
    services: Services, twiml_check: Callable[[str], None], member_phones: dict[str, list[str]],
) -> None:
    disk = RedisProcess(persist=True)
    disk.start()
    try:
        svc = stores_services(services, disk.url)
        tw = Twilio(create_app(services=svc), twiml_check)
        jobs.rebuild(svc)
        assert not rebuild.needed(svc.redis)
        with svc.unit_of_work() as s:  # a guest waiting in our order before the outage
            calls.join_queue(
                s,
                svc.redis,
                sid_of(40),
                tier="guest",
                now=NOW - timedelta(seconds=60),
                settings=svc.config,
                from_number="+8613600000040",
            )
        disk.stop()
        premium = member_phones["annual_premium"][0]
        held = tw.post(
            action(tw.post("/voice/incoming", sid_of(41), caller=premium)), sid_of(41), caller=premium, Digits=PIN
        )
        hold_url = held.xml.find("Enqueue").get("waitUrl")
        tw.post(
            "/voice/status", sid_of(40), caller="+8613600000040", CallStatus="completed"
        )  # the guest gave up meanwhile
        disk.start()
        assert not rebuild.needed(svc.redis), "the marker came back from disk with the rest"
        assert svc.redis.zscore(keys.ORDER, sid_of(40)) is not None, "and so did the guest who has left"

        back = tw.post(hold_url, sid_of(41), caller=premium, QueueSid="QU1")  # the held member's next hold loop
        assert "Gather" in verbs(back) and "您现在排在第1位" in said(back), "back in our order, announced as usual"
        tw.post("/voice/incoming", sid_of(42), caller="+8613600000042")  # the first request that goes through normally
        assert rebuild.needed(svc.redis), "a web process that saw Redis fail asks for a rebuild once it answers"
        out = jobs.rebuild(svc)
        assert (out["restored"], out["dropped"]) == (0, 1)
        assert [c["call_sid"] for c in ordering.in_order(svc.redis)] == [sid_of(41)]
        svc.redis.close()
    finally:
        disk.remove()
