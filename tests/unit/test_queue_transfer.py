"""Transfers on a real Redis: cold, warm and back to the queue, each step atomic and safe to repeat or arrive late."""
from __future__ import annotations

import dataclasses

import pytest

from callqueue.live import agent_leg, conference, dispatch, ordering, presence, transfer
from callqueue.live.transfer import TransferRefused
from core import keys
from tests.support.clocks import at


@pytest.fixture
def connected(redis, qs):
    """ann talks to CA1 (standard, category billing, verified) in its conference; bob and cy are available."""
    for login, t in (("ann", 0), ("bob", 1), ("cy", 2)):
        presence.set_state(redis, login, "available", at(t), endpoint=f"client:{login}")
    ordering.enqueue(redis, "CA1", tier="standard", now=at(10), settings=qs, category="billing", verified=True,
                     member_uid="U1")
    offer = dispatch.claim_next(redis, at(11))
    assert offer.agent == "ann"
    conference.dialled(redis, "CA1", "ann", "CAleg-ann")
    dispatch.answered(redis, "CA1", "ann", at(12), qs, "CAleg-ann")
    assert conference.caller_moved(redis, "CA1", "ann")
    return redis


def state(r, login, t):
    """The agent's state at second `t` (a wrap-up reads as over once due: 15 s)."""
    return presence.get(r, login, at(t)).state


def test_refusals_say_why_and_change_nothing(connected, qs):
    r = connected
    before = r.hgetall(keys.call("CA1"))
    refusals = (("bob", "cy", "not_yours"), ("ann", "ann", "same_agent"), ("ann", "zed", "target_unavailable"))
    for by, to, reason in refusals:
        with pytest.raises(TransferRefused) as refused:
            transfer.start(r, "CA1", by, to, "cold", at(20))
        assert refused.value.reason == reason and str(refused.value)
    presence.set_state(r, "cy", "away", at(19))
    with pytest.raises(TransferRefused, match="not available"):
        transfer.start(r, "CA1", "ann", "cy", "warm", at(20))
    with pytest.raises(ValueError):
        transfer.start(r, "CA1", "ann", "bob", "sideways", at(20))
    assert r.hgetall(keys.call("CA1")) == before and state(r, "bob", 20) == "available"
    assert transfer.start(r, "CA1", "ann", "bob", "warm", at(20)) == 1
    with pytest.raises(TransferRefused) as pending:
        transfer.start(r, "CA1", "ann", "bob", "warm", at(21))  # a repeat (a double click) starts nothing more
    assert pending.value.reason == "transfer_pending" and r.hget(keys.call("CA1"), "transfers") == "1"
    ordering.enqueue(r, "CA2", tier="standard", now=at(30), settings=qs)
    with pytest.raises(TransferRefused) as not_connected:
        transfer.start(r, "CA2", "ann", "bob", "cold", at(31))
    assert not_connected.value.reason == "not_connected"


def test_a_cold_transfer_hands_the_caller_over_when_the_target_answers(connected, qs):
    r = connected
    assert transfer.start(r, "CA1", "ann", "bob", "cold", at(20)) == 1
    assert state(r, "bob", 20) == "on_call"  # reserved: dispatch never offers him anyone meanwhile
    ordering.enqueue(r, "CA2", tier="premium", now=at(21), settings=qs)
    assert dispatch.claim_next(r, at(22)).agent == "cy"
    assert transfer.target_dialled(r, "CA1", "bob", "CAleg-bob")
    # ann's leg is hung up: she starts wrap-up, the call stays connected, waiting for bob
    left = agent_leg.completed(r, "CA1", "ann", at(23), qs)
    assert (left.outcome, left.freed) == ("transferring", True) and state(r, "ann", 23) == "wrap_up"
    assert transfer.target_answered(r, "CA1", "bob", "CAleg-bob") == "cold"
    assert transfer.target_answered(r, "CA1", "bob", "CAleg-bob") is None  # a repeated answer: nothing more
    live = conference.live_call(r, "CA1")
    assert (live.state, live.agent, live.leg, live.agents, live.transfer) == (
        "connected", "bob", "CAleg-bob", ("ann", "bob"), None)
    assert agent_leg.completed(r, "CA1", "ann", at(24), qs).outcome == ""  # ann's late events change nothing
    assert agent_leg.completed(r, "CA1", "bob", at(90), qs) == agent_leg.Left("ended", True, None)


def test_a_cold_transfer_nobody_takes_sends_the_caller_back_to_the_queue_at_their_score(connected, qs):
    r = connected
    score = ordering.original_score(r, "CA1")
    transfer.start(r, "CA1", "ann", "bob", "cold", at(20))
    transfer.target_dialled(r, "CA1", "bob", "CAleg-bob")
    agent_leg.completed(r, "CA1", "ann", at(21), qs)
    assert transfer.drop(r, "CA1", at(41), qs, missed=True, target="bob", leg="CAleg-old") is None  # not that leg
    dropped = transfer.drop(r, "CA1", at(41), qs, missed=True, target="bob", leg="CAleg-bob")
    assert dropped == transfer.Dropped("requeued", "bob", "CAleg-bob")
    live = conference.live_call(r, "CA1")
    assert (live.state, live.agent, live.caller_in, live.transferred_by) == ("waiting", None, False, "ann")
    assert ordering.position(r, "CA1") == 1 and ordering.original_score(r, "CA1") == score
    assert r.hget(keys.agent("bob"), "missed") == "1" and state(r, "bob", 41) == "available"
    assert transfer.drop(r, "CA1", at(42), qs, missed=True) is None  # a repeat finds nothing


def test_a_warm_transfer_consults_then_completes(connected, qs):
    r = connected
    transfer.start(r, "CA1", "ann", "bob", "warm", at(20))
    with pytest.raises(TransferRefused) as early:
        transfer.complete(r, "CA1", at(21), qs)
    assert early.value.reason == "not_consulting"
    assert transfer.target_answered(r, "CA1", "bob", "CAleg-bob") == "warm"
    with pytest.raises(TransferRefused) as whispering:  # bob hears the whisper: not in the conference yet
        transfer.complete(r, "CA1", at(22), qs)
    assert whispering.value.reason == "not_consulting"
    assert transfer.target_joined(r, "CA1", "CAleg-other") is False
    assert transfer.target_joined(r, "CA1", "CAleg-bob") and not transfer.target_joined(r, "CA1", "CAleg-bob")
    live = conference.live_call(r, "CA1")
    assert (live.agent, live.transfer.state, live.transfer.leg) == ("ann", "consulting", "CAleg-bob")
    assert transfer.complete(r, "CA1", at(30), qs) == "CAleg-ann"  # her leg, to hang up
    live = conference.live_call(r, "CA1")
    assert (live.agent, live.leg, live.agents, live.transfer) == ("bob", "CAleg-bob", ("ann", "bob"), None)
    assert state(r, "ann", 30) == "wrap_up" and state(r, "bob", 30) == "on_call"
    with pytest.raises(TransferRefused) as again:
        transfer.complete(r, "CA1", at(31), qs)
    assert again.value.reason == "no_transfer"
    assert agent_leg.completed(r, "CA1", "ann", at(32), qs).outcome == ""  # her leg's end: nothing more


def test_a_warm_transfer_cancelled_keeps_the_caller_with_the_first_agent(connected, qs):
    r = connected
    transfer.start(r, "CA1", "ann", "bob", "warm", at(20))
    transfer.target_answered(r, "CA1", "bob", "CAleg-bob")
    transfer.target_joined(r, "CA1", "CAleg-bob")
    assert transfer.drop(r, "CA1", at(25), qs, missed=False) == transfer.Dropped("warm", "bob", "CAleg-bob")
    live = conference.live_call(r, "CA1")
    assert (live.state, live.agent, live.transfer) == ("connected", "ann", None)
    assert state(r, "bob", 25) == "available" and r.hget(keys.agent("bob"), "missed") is None


def test_the_first_agent_hanging_up_mid_consultation_hands_over_only_when_the_conference_says_so(connected, qs):
    r = connected
    transfer.start(r, "CA1", "ann", "bob", "warm", at(20))
    transfer.target_answered(r, "CA1", "bob", "CAleg-bob")
    # her leg's own status callback cannot tell a hang-up from the conference ending under her: no hand-over
    assert agent_leg.completed(r, "CA1", "ann", at(30), qs).outcome == "transferring"
    assert conference.live_call(r, "CA1").agent == "ann" and state(r, "ann", 30) == "wrap_up"
    # the conference's participant-leave says she hung up: bob has the caller now
    left = agent_leg.completed(r, "CA1", "ann", at(31), qs, may_hand_over=True)
    assert (left.outcome, left.handed_to) == ("handed_over", "bob")
    assert conference.live_call(r, "CA1").agents == ("ann", "bob")


def test_two_missed_transfers_in_a_row_set_the_target_away(connected, qs):
    r = connected
    for n in (1, 2):
        transfer.start(r, "CA1", "ann", "bob", "warm", at(20 * n))
        transfer.drop(r, "CA1", at(20 * n + 10), qs, missed=True)
    p = presence.get(r, "bob", at(100))
    assert (p.state, p.reason) == ("away", "missed_offers")


def test_back_to_the_queue_keeps_the_score_tier_category_and_verification(connected, qs):
    r = connected
    score = ordering.original_score(r, "CA1")
    assert transfer.to_queue(r, "CA1", "ann", at(40), qs) == 1
    with pytest.raises(TransferRefused):
        transfer.to_queue(r, "CA1", "ann", at(41), qs)  # a repeat: the call is no longer connected to her
    row = ordering.in_order(r, 0, 10)[0]
    assert (row["call_sid"], row["tier"], row["category"], row["verified"]) == ("CA1", "standard", "billing", True)
    assert ordering.original_score(r, "CA1") == score and state(r, "ann", 40) == "wrap_up"
    assert conference.live_call(r, "CA1").transferred_by == "ann"


def test_the_caller_leaving_mid_transfer_frees_the_target_and_names_the_ringing_leg(connected, qs):
    r = connected
    transfer.start(r, "CA1", "ann", "bob", "warm", at(20))
    transfer.target_dialled(r, "CA1", "bob", "CAleg-bob")
    s = dispatch.caller_left(r, "CA1", at(25), "ended", qs)
    assert (s.outcome, s.agent, s.legs) == ("answered", "ann", ("CAleg-bob",))
    assert state(r, "bob", 25) == "available" and state(r, "ann", 25) == "wrap_up"
    assert transfer.target_answered(r, "CA1", "bob", "CAleg-bob") is None  # his late answer: the caller is gone


def test_a_caller_who_never_reached_the_conference_names_the_agents_leg(redis, qs):
    presence.set_state(redis, "ann", "available", at(0), endpoint="client:ann")
    ordering.enqueue(redis, "CA1", tier="standard", now=at(1), settings=qs)
    dispatch.claim_next(redis, at(2))
    dispatch.answered(redis, "CA1", "ann", at(3), qs, "CAleg-ann")
    assert dispatch.caller_left(redis, "CA1", at(4), "ended", dataclasses.replace(qs)).legs == ("CAleg-ann",)
