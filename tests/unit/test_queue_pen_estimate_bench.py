"""The holding pen's shards, the wait estimate from the measured answer rate, and the bench functions."""
from __future__ import annotations

import dataclasses

import pytest

from callqueue.live import agent_leg, calls, conference, dispatch, estimate, ordering, pen, presence
from tests.support.clocks import at
from tools.bench import queue as queue_bench


def test_pen_fills_shards_in_turn_and_reuses_freed_room(redis, qs):
    small = dataclasses.replace(qs, twilio_queue_max_size=2, twilio_queue_prefix="hl")
    names = [pen.assign(redis, f"CA{i}", small) for i in range(5)]
    assert names == ["hl-1", "hl-1", "hl-2", "hl-2", "hl-3"]
    assert pen.assign(redis, "CA0", small) == "hl-1"  # asked again: same shard, not counted twice
    assert pen.sizes(redis) == {"hl-1": 2, "hl-2": 2, "hl-3": 1}
    assert pen.release(redis, "CA1") == "hl-1" and pen.release(redis, "CA1") is None
    assert pen.assign(redis, "CA9", small) == "hl-1"
    pen.reconcile(redis, "hl-3", 0)
    assert pen.sizes(redis)["hl-3"] == 0


def test_default_shard_name(redis, qs):
    assert pen.assign(redis, "CA1", qs) == "hotline-1"


def test_queue_full_moves_the_caller_to_another_shard_keeping_the_place(db, redis, qs):
    small = dataclasses.replace(qs, twilio_queue_max_size=5)
    j = calls.join_queue(db, redis, "CA1", tier="standard", now=at(0), settings=small)
    assert calls.queue_result(db, redis, "CA1", "queue-full", at(1), small) is None  # Twilio's queue was full
    again = calls.join_queue(db, redis, "CA1", tier="standard", now=at(1), settings=small)
    assert (again.queue_name, again.position, again.score) == ("hotline-2", 1, j.score)


def test_estimate_is_unknown_without_answers(redis, qs):
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs)
    e = estimate.estimate_wait(redis, 1, at(60), qs)
    assert (e.known, e.seconds, e.minutes()) == (False, None, None)


def answer_calls(redis, qs, times):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    for i, t in enumerate(times):
        sid = f"CA{i}"
        ordering.enqueue(redis, sid, tier="standard", now=at(t - 30), settings=qs)
        dispatch.claim_next(redis, at(t - 1))
        dispatch.answered(redis, sid, "alice", at(t), qs)
        conference.caller_moved(redis, sid, "alice")
        agent_leg.completed(redis, sid, "alice", at(t), dataclasses.replace(qs, wrap_up_s=0))


def test_estimate_follows_the_measured_answer_rate(redis, qs):
    answer_calls(redis, qs, [60, 120, 180, 240, 300, 360])  # one a minute from 10:01
    e = estimate.estimate_wait(redis, 3, at(420), qs)
    assert (e.answered, e.span_s) == (6, 360.0)  # from 10:01:00 to 10:07:00
    assert e.seconds == 180.0 and e.minutes() == 3
    assert estimate.estimate_wait(redis, 6, at(420), qs).seconds == 2 * e.seconds


def test_estimate_forgets_answers_older_than_fifteen_minutes(redis, qs):
    answer_calls(redis, qs, [60])
    assert estimate.estimate_wait(redis, 1, at(60 + 14 * 60), qs).known
    assert not estimate.estimate_wait(redis, 1, at(60 + 15 * 60), qs).known


@pytest.mark.parametrize("minutes_later", [7, 20, 21])
def test_the_waiturls_single_read_agrees_with_status_and_estimate(redis, qs, minutes_later):
    answer_calls(redis, qs, [60, 120, 180, 240, 300, 360])
    ordering.enqueue(redis, "CAw", tier="premium", now=at(400), settings=qs)
    redis.hset("ivr:CAw", mapping={"lang": "en", "seq": "4"})
    now = at(60 * minutes_later)
    info = calls.waiting(redis, "CAw", now, qs, queue_sid="QU1", extra_hash="ivr:CAw")
    st = ordering.status(redis, "CAw", now, qs)
    assert (info.state, info.position, info.waited_s, info.max_wait_exceeded) == (
        st.state, st.position, st.waited_s, st.max_wait_exceeded)
    assert info.estimate == estimate.estimate_wait(redis, st.position, now, qs)
    assert info.estimate.known is (minutes_later <= 20)  # the last answer, at 10:06, leaves the window at 10:21
    assert info.extra == {"lang": "en", "seq": "4"} and st.queue_sid == "QU1"


def test_the_waiturl_read_never_creates_a_call_hash(redis, qs):
    info = calls.waiting(redis, "CAgone", at(0), qs, queue_sid="QU1")
    assert (info.state, info.position, info.extra) == (None, None, {})
    assert not redis.exists("hl:call:CAgone")


def test_bench_reports_latency_and_memory(redis, qs):
    result = queue_bench.bench_queue(redis, qs, sizes=(200, 1000), samples=50)
    assert [run["waiting"] for run in result["runs"]] == [200, 1000]
    for run in result["runs"]:
        assert run["enqueue"]["samples"] == 50 and run["claim_best"]["samples"] == 50
        assert 0 < run["enqueue"]["median_ms"] <= run["enqueue"]["p99_ms"]
        assert run["memory_per_waiting_caller_bytes"] > 0
    assert redis.dbsize() == 0


def test_bench_refuses_a_database_in_use(redis, qs):
    redis.set("something", "live")
    with pytest.raises(queue_bench.BenchError):
        queue_bench.bench_queue(redis, qs, sizes=(10,), samples=5)
    assert redis.get("something") == "live"
