"""Dispatch on a real Redis: claiming pairs, putting callers back in place, and every way a claim ends."""
from __future__ import annotations

import dataclasses

import pytest

from callqueue.live import dispatch, ordering, pen, presence, trigger
from core import keys
from tests.support.clocks import at
from tests.support.redis_state import available_in_order


def order(redis):
    return [row["call_sid"] for row in ordering.in_order(redis, 0, 100)]


def agents(redis):
    return [login for login, _ in available_in_order(redis)]


def counter(redis, field):
    return int(redis.hget(keys.stats_day("2026-03-02"), field) or 0)


@pytest.fixture
def busy_queue(redis, qs):
    """Four callers waiting and three agents available (alice longest idle)."""
    for i, tier in enumerate(["standard", "premium", "standard", "guest"]):
        ordering.enqueue(redis, f"CA{i}", tier=tier, now=at(i * 10), settings=qs, category="billing",
                         verified=tier != "guest", member_uid=None if tier == "guest" else f"U{i}")
    for i, login in enumerate(["alice", "bob", "carol"]):
        presence.set_state(redis, login, "available", at(i), endpoint=f"client:{login}")
    return redis


def test_nothing_to_claim_without_both_sides(redis, qs):
    assert dispatch.claim_next(redis, at(0)) is None
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs)
    assert dispatch.claim_next(redis, at(1)) is None
    assert ordering.position(redis, "CA1") == 1  # the caller was not taken out
    dispatch.caller_left(redis, "CA1", at(2), "hangup", qs)
    presence.set_state(redis, "alice", "available", at(3), endpoint="client:alice")
    assert dispatch.claim_next(redis, at(4)) is None
    assert agents(redis) == ["alice"]


def test_claim_pairs_best_caller_with_longest_idle_agent(busy_queue, qs):
    r = busy_queue
    pen.assign(r, "CA1", qs)
    ordering.wait_status(r, "CA1", at(50), qs, queue_sid="QU1")  # the waitUrl notes the caller's Twilio queue
    offer = dispatch.claim_next(r, at(50))
    assert (offer.call_sid, offer.agent, offer.endpoint, offer.tier) == ("CA1", "alice", "client:alice", "premium")
    assert (offer.category, offer.verified, offer.member_uid, offer.attempt) == ("billing", True, "U1", 1)
    assert (offer.pen, offer.queue_sid, offer.queued_at, offer.offered_at) == (
        "hotline-1",
        "QU1",
        at(10).timestamp(),
        at(50).timestamp(),
    )
    assert presence.get(r, "alice", at(50)).state == "on_call" and presence.get(r, "alice", at(50)).call_sid == "CA1"
    assert order(r) == ["CA0", "CA2", "CA3"] and agents(r) == ["bob", "carol"]
    # still waiting for the statistics while the agent rings
    assert ordering.tier_summary(r, ["premium"], at(50))["premium"]["waiting"] == 1


def test_undo_claim_restores_both_sides_exactly(busy_queue, qs):
    r = busy_queue
    before_callers, before_agents = order(r), agents(r)
    offer = dispatch.claim_next(r, at(50))
    assert dispatch.undo_claim(r, offer.call_sid, offer.agent, at(51)) == (True, True)
    assert order(r) == before_callers and agents(r) == before_agents  # alice keeps her turn
    assert dispatch.undo_claim(r, offer.call_sid, offer.agent, at(52)) == (False, False)  # idempotent
    again = dispatch.claim_next(r, at(53))
    assert (again.call_sid, again.agent, again.attempt) == (offer.call_sid, "alice", 2)


def test_no_answer_puts_caller_back_and_agent_away(busy_queue, qs):
    r = busy_queue
    before = order(r)
    offer = dispatch.claim_next(r, at(50))
    assert dispatch.no_answer(r, offer.call_sid, "alice", at(70), qs) == (True, True)
    assert order(r) == before
    p = presence.get(r, "alice", at(70))
    assert (p.state, p.since) == ("away", at(70).timestamp())
    assert agents(r) == ["bob", "carol"]
    assert dispatch.claim_next(r, at(71)).agent == "bob"


def test_no_answer_with_agents_kept_available_sends_them_to_the_back(busy_queue, qs):
    r = busy_queue
    keep = dataclasses.replace(qs, on_no_answer="available")
    offer = dispatch.claim_next(r, at(50))
    dispatch.no_answer(r, offer.call_sid, "alice", at(70), keep)
    assert agents(r) == ["bob", "carol", "alice"]


def test_answered_and_completed(busy_queue, qs):
    r = busy_queue
    offer = dispatch.claim_next(r, at(50))
    s = dispatch.answered(r, offer.call_sid, "alice", at(55), qs)
    assert (s.changed, s.outcome, s.waited_s, s.at) == (True, "connected", 45.0, at(55).timestamp())
    assert dispatch.answered(r, offer.call_sid, "alice", at(56), qs) == dataclasses.replace(s, changed=False)
    assert dispatch.answered(r, offer.call_sid, "bob", at(56), qs).changed is False  # not bob's call
    assert ordering.tier_summary(r, ["premium"], at(60))["premium"]["waiting"] == 0
    assert counter(r, "premium:answered") == 1 and counter(r, "premium:wait_ms") == 45000
    assert counter(r, "premium:answered_sl") == 0  # T = 20 s for premium
    assert dispatch.completed(r, offer.call_sid, "alice", at(300), qs) == (True, True)
    assert dispatch.completed(r, offer.call_sid, "alice", at(301), qs) == (False, False)
    assert presence.get(r, "alice", at(301)).state == "wrap_up"


def test_caller_hanging_up_while_dispatched_is_counted_and_frees_the_agent(busy_queue, qs):
    r = busy_queue
    offer = dispatch.claim_next(r, at(50))
    s = dispatch.caller_left(r, offer.call_sid, at(52), "hangup", qs)
    assert (s.changed, s.outcome, s.waited_s, s.agent) == (True, "abandoned", 42.0, "alice")
    assert counter(r, "premium:abandoned") == 1 and counter(r, "premium:abandoned_sl") == 1
    assert agents(r)[0] == "alice"  # available again, keeping her turn
    # the gateway's move then fails: undo must not put the departed caller back
    assert dispatch.undo_claim(r, offer.call_sid, "alice", at(53)) == (False, False)
    assert offer.call_sid not in order(r)
    assert dispatch.answered(r, offer.call_sid, "alice", at(54), qs).changed is False
    assert dispatch.caller_left(r, offer.call_sid, at(60), "ended", qs) == dataclasses.replace(
        s, changed=False, agent=None
    )
    assert counter(r, "premium:abandoned") == 1


def test_short_abandon_and_callback_are_counted_apart(redis, qs):
    ordering.enqueue(redis, "CA1", tier="standard", now=at(0), settings=qs)
    ordering.enqueue(redis, "CA2", tier="standard", now=at(0), settings=qs)
    assert dispatch.caller_left(redis, "CA1", at(4.999), "hangup", qs).outcome == "short_abandoned"
    assert dispatch.caller_left(redis, "CA2", at(90), "callback", qs).outcome == "to_callback"
    assert counter(redis, "standard:short") == 1 and counter(redis, "standard:callback") == 1
    assert counter(redis, "standard:abandoned") == 0
    with pytest.raises(ValueError):
        dispatch.caller_left(redis, "CA1", at(91), "vanished", qs)


def test_status_callback_during_the_conversation_finishes_the_call(busy_queue, qs):
    r = busy_queue
    offer = dispatch.claim_next(r, at(50))
    dispatch.answered(r, offer.call_sid, "alice", at(55), qs)
    s = dispatch.caller_left(r, offer.call_sid, at(200), "ended", qs)
    assert (s.changed, s.outcome, s.at, s.agent) == (True, "answered", at(55).timestamp(), "alice")
    assert presence.get(r, "alice", at(201)).state == "wrap_up"
    assert dispatch.completed(r, offer.call_sid, "alice", at(202), qs) == (False, False)  # late dial action


def test_claim_skips_order_members_whose_call_is_gone(redis, qs):
    ordering.enqueue(redis, "CAgone", tier="premium", now=at(0), settings=qs)
    ordering.enqueue(redis, "CAhere", tier="standard", now=at(0), settings=qs)
    redis.delete(keys.call("CAgone"))  # e.g. expired
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    assert dispatch.claim_next(redis, at(1)).call_sid == "CAhere"
    assert redis.zcard(keys.ORDER) == 0


def test_sweep_returns_stale_offers_and_settles_wrap_ups(busy_queue, qs):
    r = busy_queue
    before = order(r)
    offer = dispatch.claim_next(r, at(50))
    assert dispatch.sweep(r, at(90), qs) == {"wrap_ups_ended": 0, "offers_returned": 0}  # ring 20 + grace 30
    assert dispatch.sweep(r, at(101), qs) == {"wrap_ups_ended": 0, "offers_returned": 1}
    assert order(r) == before and agents(r)[0] == offer.agent


def test_a_dispatch_run_is_asked_for_only_with_an_agent_available_and_none_pending(redis):
    asked: list[int] = []

    def enqueue() -> None:
        asked.append(1)

    assert not trigger.request_run(redis, enqueue) and not asked  # nobody could answer
    assert not redis.exists(keys.DISPATCH_PENDING)
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    assert trigger.request_run(redis, enqueue) and len(asked) == 1 and redis.ttl(keys.DISPATCH_PENDING) > 0
    assert not trigger.request_run(redis, enqueue) and len(asked) == 1  # one run pending at a time
    trigger.run_started(redis)
    assert trigger.request_run(redis, enqueue) and len(asked) == 2
