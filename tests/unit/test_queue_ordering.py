"""Queue order on a real Redis: score = arrival − boost, idempotent enqueue, places kept on return."""
from __future__ import annotations

import pytest

from callqueue.live import dispatch, missed, ordering, presence
from core import keys
from tests.support.clocks import at


def sids_in_order(redis):
    return [row["call_sid"] for row in ordering.in_order(redis, 0, 100)]


def test_premium_arriving_after_standard_is_served_first(redis, qs):
    ordering.enqueue(redis, "CAstd", tier="standard", now=at(0), settings=qs)
    ordering.enqueue(redis, "CAprem", tier="premium", now=at(60), settings=qs)
    ordering.enqueue(redis, "CAannual", tier="annual_premium", now=at(120), settings=qs)
    assert sids_in_order(redis) == ["CAannual", "CAprem", "CAstd"]
    assert ordering.position(redis, "CAstd") == 3
    assert ordering.score_for("premium", at(60), qs) == at(60).timestamp() - 600


def test_standard_caller_who_waited_longer_than_the_boost_beats_a_new_premium(redis, qs):
    ordering.enqueue(redis, "CAstd", tier="standard", now=at(0), settings=qs)
    ordering.enqueue(redis, "CAprem_early", tier="premium", now=at(599), settings=qs)
    ordering.enqueue(redis, "CAprem_late", tier="premium", now=at(601), settings=qs)
    # premium boost is 600 s: served as if called 10 minutes earlier, and no more
    assert sids_in_order(redis) == ["CAprem_early", "CAstd", "CAprem_late"]


def test_enqueue_is_idempotent_per_callsid(redis, qs):
    first = ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs, category="billing")
    ordering.enqueue(redis, "CA2", tier="standard", now=at(10), settings=qs)
    again = ordering.enqueue(redis, "CA1", tier="premium", now=at(30), settings=qs)  # a retried webhook
    assert first.new and not again.new
    assert again.score == first.score and again.queued_at == first.queued_at and again.position == 1
    assert redis.zcard(keys.ORDER) == 2
    assert redis.zcard(keys.tier_waiting("standard")) == 2 and redis.zcard(keys.tier_waiting("premium")) == 0
    day = keys.stats_day("2026-03-02")
    assert redis.hget(day, "standard:offered") == "2"  # counted once per call


def test_unknown_tier_is_an_error(redis, qs):
    with pytest.raises(ValueError, match="tier"):
        ordering.enqueue(redis, "CA1", tier="platinum", now=at(0), settings=qs)


def test_status_position_wait_and_max_wait(redis, qs):
    ordering.enqueue(redis, "CA1", tier="premium", now=at(0), settings=qs)
    ordering.enqueue(redis, "CA2", tier="standard", now=at(5), settings=qs)
    s = ordering.status(redis, "CA2", at(65), qs)
    assert (s.state, s.tier, s.position, s.waited_s, s.max_wait_exceeded) == ("waiting", "standard", 2, 60.0, False)
    assert ordering.status(redis, "CA1", at(420), qs).max_wait_exceeded  # premium max_wait_s = 420
    unknown = ordering.status(redis, "CAnone", at(0), qs)
    assert unknown.state is None and unknown.position is None
    ordering.wait_status(redis, "CA1", at(1), qs, queue_sid="QU123")  # the waitUrl notes the caller's Twilio queue
    assert ordering.status(redis, "CA1", at(1), qs).queue_sid == "QU123"


def test_tier_summary_counts_and_longest_wait(redis, qs):
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs)
    ordering.enqueue(redis, "CA2", tier="standard", now=at(30), settings=qs)
    ordering.enqueue(redis, "CA3", tier="premium", now=at(50), settings=qs)
    summary = ordering.tier_summary(redis, qs.tiers, at(100))
    assert summary["standard"] == {"waiting": 2, "longest_wait_s": 100.0}
    assert summary["premium"] == {"waiting": 1, "longest_wait_s": 50.0}
    assert summary["guest"] == {"waiting": 0, "longest_wait_s": 0.0}


def test_in_order_lists_service_order_with_details(redis, qs):
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs, category="billing", verified=True)
    ordering.enqueue(redis, "CA2", tier="premium", now=at(1), settings=qs)
    rows = ordering.in_order(redis)
    assert [(r["call_sid"], r["position"], r["tier"]) for r in rows] == [("CA2", 1, "premium"), ("CA1", 2, "standard")]
    assert (
        rows[1]["category"] == "billing" and rows[1]["verified"] is True and rows[1]["queued_at"] == at(0).timestamp()
    )
    assert ordering.in_order(redis, 1, 5)[0]["call_sid"] == "CA1"


def test_no_answer_puts_caller_back_at_the_same_score_and_place(redis, qs):
    for i, tier in enumerate(["standard", "premium", "standard", "guest"]):
        ordering.enqueue(redis, f"CA{i}", tier=tier, now=at(i * 10), settings=qs)
    before = sids_in_order(redis)
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    offer = dispatch.claim_next(redis, at(100))
    assert offer.call_sid == before[0] and sids_in_order(redis) == before[1:]
    missed.no_answer(redis, offer.call_sid, "alice", at(120), qs)
    assert sids_in_order(redis) == before
    assert ordering.enqueue(redis, offer.call_sid, tier="premium", now=at(130), settings=qs).position == 1
    assert ordering.original_score(redis, offer.call_sid) == offer.score


def test_a_callback_call_takes_the_original_callers_score(redis, qs):
    ordering.enqueue(redis, "CAold", tier="standard", now=at(0), settings=qs)
    ordering.enqueue(redis, "CAother", tier="standard", now=at(100), settings=qs)
    score = ordering.original_score(redis, "CAold")
    dispatch.caller_left(redis, "CAold", at(200), "callback", qs)
    back = ordering.enqueue(redis, "CAcallback", tier="standard", now=at(5000), settings=qs, score=score)
    assert back.position == 1 and back.score == score


def test_remove_takes_a_caller_out_without_an_outcome_count(redis, qs):
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs)
    assert ordering.remove(redis, "CA1", at(5)) is True
    assert ordering.remove(redis, "CA1", at(6)) is False
    assert ordering.position(redis, "CA1") is None and redis.zcard(keys.tier_waiting("standard")) == 0
    assert ordering.enqueue(redis, "CA1", tier="standard", now=at(7), settings=qs).state == "ended"


def test_enqueue_after_the_call_ended_does_not_resurrect_it(redis, qs):
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs)
    dispatch.caller_left(redis, "CA1", at(30), "hangup", qs)
    late = ordering.enqueue(redis, "CA1", tier="standard", now=at(31), settings=qs)
    assert late.state == "ended" and late.position is None and redis.zcard(keys.ORDER) == 0


def test_enqueue_many_fills_in_arrival_order(redis, qs):
    n = ordering.enqueue_many(redis, [(f"CA{i}", "standard") for i in range(2500)], at(0), qs, chunk=1000)
    assert n == 2500 and redis.zcard(keys.ORDER) == 2500
    assert ordering.position(redis, "CA0") == 1 and ordering.position(redis, "CA2499") == 2500
