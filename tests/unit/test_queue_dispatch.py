"""Dispatch on a real Redis: claiming pairs, putting callers back in place, and every way a claim ends."""
from __future__ import annotations

import dataclasses

import pytest

from callqueue.live import agent_leg, conference, dispatch, missed, ordering, pen, presence, trigger
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


def test_a_missed_offer_puts_the_caller_back_and_the_agent_at_the_back_then_away_after_two(busy_queue, qs):
    r = busy_queue
    assert qs.max_missed_offers == 2
    before = order(r)
    offer = dispatch.claim_next(r, at(50))
    assert missed.no_answer(r, offer.call_sid, "alice", at(70), qs) == missed.Missed(True, True, "available", 1)
    assert order(r) == before
    assert agents(r) == ["bob", "carol", "alice"]  # the next offer goes to someone else first
    assert missed.no_answer(r, offer.call_sid, "alice", at(71), qs).agent_moved is False  # a repeat: nothing
    # bob and carol take calls; alice misses her second offer in a row: away, and told why
    for login in ("bob", "carol"):
        taken = dispatch.claim_next(r, at(72))
        assert taken.agent == login and dispatch.answered(r, taken.call_sid, login, at(73), qs).changed
    second = dispatch.claim_next(r, at(80))
    assert second.agent == "alice"
    assert missed.no_answer(r, second.call_sid, "alice", at(100), qs) == missed.Missed(True, True, "away", 2)
    p = presence.get(r, "alice", at(100))
    assert (p.state, p.since, p.reason) == ("away", at(100).timestamp(), "missed_offers")
    # her own choice clears the reason, and an answered offer ends a run of misses
    assert presence.set_state(r, "alice", "available", at(110)).reason is None


def test_an_answered_offer_ends_a_run_of_missed_ones(busy_queue, qs):
    r = busy_queue
    offer = dispatch.claim_next(r, at(50))
    missed.no_answer(r, offer.call_sid, "alice", at(70), qs)
    assert [dispatch.claim_next(r, at(72)).agent for _ in range(2)] == ["bob", "carol"]
    again = dispatch.claim_next(r, at(80))  # alice, with one miss behind her, takes the third caller
    assert again.agent == "alice" and r.hget(keys.agent("alice"), "missed") == "1"
    assert dispatch.answered(r, again.call_sid, "alice", at(81), qs).changed
    assert r.hget(keys.agent("alice"), "missed") is None


def test_no_answer_with_agents_kept_available_sends_them_to_the_back(busy_queue, qs):
    r = busy_queue
    keep = dataclasses.replace(qs, on_no_answer="available", max_missed_offers=1)
    offer = dispatch.claim_next(r, at(50))
    assert missed.no_answer(r, offer.call_sid, "alice", at(70), keep).agent_state == "available"
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
    assert conference.caller_moved(r, offer.call_sid, "alice")  # the caller reached the conference
    assert agent_leg.completed(r, offer.call_sid, "alice", at(300), qs) == agent_leg.Left("ended", True, None)
    assert agent_leg.completed(r, offer.call_sid, "alice", at(301), qs) == agent_leg.Left("", False, None)
    assert presence.get(r, "alice", at(301)).state == "wrap_up"


def test_an_agent_who_leaves_before_the_caller_reaches_the_conference_puts_them_back_in_line(busy_queue, qs):
    r = busy_queue
    before = order(r)
    offer = dispatch.claim_next(r, at(50))
    dispatch.answered(r, offer.call_sid, "alice", at(55), qs)
    # the caller could not be moved in (still in their Twilio queue) and alice hung up
    assert agent_leg.completed(r, offer.call_sid, "alice", at(60), qs).outcome == "requeued"
    assert order(r) == before and presence.get(r, "alice", at(61)).state == "wrap_up"
    assert conference.caller_moved(r, offer.call_sid, "alice") is False  # a late move finds it no longer hers
    again = dispatch.claim_next(r, at(62))
    assert again.call_sid == offer.call_sid and again.agent == "bob"
    s = dispatch.answered(r, again.call_sid, "bob", at(63), qs)
    assert (s.changed, s.at) == (True, at(55).timestamp())  # answered once: the first answer's time stands
    assert counter(r, "premium:answered") == 1


def test_a_caller_leaving_the_queue_during_the_whisper_abandons_and_the_answer_is_taken_back(busy_queue, qs):
    r = busy_queue
    offer = dispatch.claim_next(r, at(50))
    assert conference.dialled(r, offer.call_sid, "alice", "CAleg1")
    dispatch.answered(r, offer.call_sid, "alice", at(55), qs, "CAleg1")  # counted in the minute from 02:00
    assert counter(r, "premium:answered") == 1
    # her leg's Calls create answer reaches the dispatcher only now: the leg is in use, not to be ended
    assert conference.dialled(r, offer.call_sid, "alice", "CAleg1")
    assert not conference.dialled(r, offer.call_sid, "alice", "CAother")
    # the caller hangs up in their Twilio queue before the bridge moved them (the next minute)
    s = dispatch.caller_left(r, offer.call_sid, at(65), "hangup", qs)
    assert (s.changed, s.outcome, s.waited_s, s.agent, s.legs, s.unheard) == (
        True, "abandoned", 55.0, "alice", ("CAleg1",), True)  # her leg, alone in the conference, is to be ended
    minute = keys.stats_minute(int(at(55).timestamp()) // 60)
    for fields in (r.hgetall(keys.stats_day("2026-03-02")), r.hgetall(minute)):
        assert {f: fields.get(f, "0") for f in ("premium:answered", "premium:wait_ms")} == {
            "premium:answered": "0", "premium:wait_ms": "0"}
    assert counter(r, "premium:abandoned") == 1 and counter(r, "premium:abandoned_sl") == 1
    assert conference.caller_moved(r, offer.call_sid, "alice") is False  # a late move finds the call over
    assert presence.get(r, "alice", at(65)).state == "on_call"  # until her leg has ended: never two calls at once
    assert agent_leg.completed(r, offer.call_sid, "alice", at(66), qs) == agent_leg.Left("", True, None)
    assert presence.get(r, "alice", at(66)).state == "wrap_up"
    assert dispatch.caller_left(r, offer.call_sid, at(70), "ended", qs).changed is False
    assert counter(r, "premium:answered") == 0 and counter(r, "premium:abandoned") == 1


def test_an_answer_the_caller_reached_stays_when_they_hang_up(busy_queue, qs):
    r = busy_queue
    offer = dispatch.claim_next(r, at(50))
    dispatch.answered(r, offer.call_sid, "alice", at(55), qs)
    assert conference.caller_moved(r, offer.call_sid, "alice")
    assert dispatch.caller_left(r, offer.call_sid, at(65), "hangup", qs).changed is False  # the queue's action, late
    s = dispatch.caller_left(r, offer.call_sid, at(90), "ended", qs)
    assert (s.outcome, s.at, s.unheard) == ("answered", at(55).timestamp(), False)
    assert counter(r, "premium:answered") == 1 and counter(r, "premium:abandoned") == 0


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
    assert agent_leg.completed(r, offer.call_sid, "alice", at(202), qs).outcome == ""  # the agent's leg, late


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
