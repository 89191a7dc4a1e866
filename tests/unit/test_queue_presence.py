"""Agents' presence on a real Redis: states, longest idle, wrap-up ending lazily without sleeps."""
from __future__ import annotations

import dataclasses

import pytest

from callqueue.live import agent_leg, conference, dispatch, ordering, presence
from callqueue.live.presence import PresenceError
from callqueue.settings import queue_settings
from core import keys
from tests.support.clocks import at
from tests.support.redis_state import available_in_order


@pytest.fixture
def qs(services):
    return queue_settings(services.config)  # wrap_up_s = 15


def on_a_call(redis, qs, login, sid="CA1", t=0):
    """Put `login` on a connected call with caller `sid`, starting at second `t`."""
    ordering.enqueue(redis, sid, tier="standard", now=at(t), settings=qs)
    offer = dispatch.claim_next(redis, at(t + 1))
    assert offer is not None and offer.agent == login and offer.call_sid == sid
    dispatch.answered(redis, sid, login, at(t + 2), qs)
    assert conference.caller_moved(redis, sid, login)  # the caller joins the agent's conference


def test_available_needs_an_endpoint_and_is_idempotent(redis):
    with pytest.raises(PresenceError, match="endpoint"):
        presence.set_state(redis, "alice", "available", at(0))
    p = presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    assert (p.state, p.since, p.endpoint) == ("available", at(0).timestamp(), "client:alice")
    again = presence.set_state(redis, "alice", "available", at(50))
    assert again.since == at(0).timestamp()  # clicking again does not lose the place in line
    with pytest.raises(PresenceError):
        presence.set_state(redis, "alice", "on_call", at(1))


def test_longest_idle_agent_gets_the_call(redis, qs):
    presence.set_state(redis, "bob", "available", at(10), endpoint="+8613800000002")
    presence.set_state(redis, "alice", "available", at(20), endpoint="client:alice")
    presence.set_state(redis, "carol", "available", at(5), endpoint="client:carol")
    presence.set_state(redis, "carol", "away", at(6))
    assert [login for login, _ in available_in_order(redis)] == ["bob", "alice"]
    ordering.enqueue(redis, "CA1", tier="standard", now=at(30), settings=qs)
    offer = dispatch.claim_next(redis, at(31))
    assert offer.agent == "bob" and offer.endpoint == "+8613800000002"


def test_wrap_up_ends_lazily_at_its_due_time(redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    on_a_call(redis, qs, "alice")
    assert presence.get(redis, "alice", at(3)).state == "on_call"
    agent_leg.completed(redis, "CA1", "alice", at(100), qs)
    p = presence.get(redis, "alice", at(110))
    assert (p.state, p.wrap_up_due) == ("wrap_up", at(115).timestamp())
    later = presence.get(redis, "alice", at(116))
    assert (later.state, later.since) == ("available", at(115).timestamp())  # read: over, from the due time
    assert redis.hget(keys.agent("alice"), "state") == "wrap_up"  # …but reads write nothing
    assert presence.settle_wrap_ups(redis, at(114)) == []
    assert presence.settle_wrap_ups(redis, at(116)) == ["alice"]
    assert redis.hget(keys.agent("alice"), "state") == "available"
    assert available_in_order(redis) == [("alice", at(115).timestamp())]


def test_the_dispatcher_settles_due_wrap_ups_itself(redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    on_a_call(redis, qs, "alice")
    agent_leg.completed(redis, "CA1", "alice", at(100), qs)
    ordering.enqueue(redis, "CA2", tier="standard", now=at(105), settings=qs)
    assert dispatch.claim_next(redis, at(110)) is None  # still wrapping up
    offer = dispatch.claim_next(redis, at(115))
    assert offer.agent == "alice" and offer.call_sid == "CA2"


def test_an_agent_who_chose_away_does_not_come_back_after_wrap_up(redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    on_a_call(redis, qs, "alice")
    assert presence.after_wrap_up(redis, "alice", "away") is True
    agent_leg.completed(redis, "CA1", "alice", at(100), qs)
    assert presence.get(redis, "alice", at(120)).state == "away"
    assert presence.counts(redis, at(120)) == {"available": 0, "on_call": 0, "wrap_up": 0, "away": 1, "offline": 0}
    assert presence.after_wrap_up(redis, "alice", "available") is False  # not on a call any more


def test_state_changes_refused_on_a_call_and_allowed_in_wrap_up(redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    on_a_call(redis, qs, "alice")
    with pytest.raises(PresenceError, match="on a call"):
        presence.set_state(redis, "alice", "away", at(10))
    agent_leg.completed(redis, "CA1", "alice", at(20), qs)
    p = presence.set_state(redis, "alice", "available", at(25))  # ends wrap-up early
    assert (p.state, p.since) == ("available", at(25).timestamp())
    assert redis.zscore(keys.WRAPUP, "alice") is None


def test_no_wrap_up_configured_means_available_at_once(redis, qs):
    no_wrap = dataclasses.replace(qs, wrap_up_s=0)
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    on_a_call(redis, no_wrap, "alice")
    agent_leg.completed(redis, "CA1", "alice", at(50), no_wrap)
    assert presence.get(redis, "alice", at(50)).state == "available"


def test_counts_and_roster(redis):
    added = presence.ensure_known(redis, [("alice", "client:alice"), ("bob", "+8613800000002"), ("carol", "")], at(0))
    assert added == 3
    presence.set_state(redis, "alice", "available", at(1))
    presence.set_state(redis, "bob", "away", at(1))
    assert presence.ensure_known(redis, [("alice", "client:alice2")], at(2)) == 0
    assert presence.get(redis, "alice", at(2)).state == "available"  # known agents keep their state
    assert presence.get(redis, "alice", at(2)).endpoint == "client:alice2"
    assert presence.counts(redis, at(3)) == {"available": 1, "on_call": 0, "wrap_up": 0, "away": 1, "offline": 1}
    assert presence.get(redis, "nobody", at(3)).state == "offline"


def test_roster_from_sql(db, redis):
    from callqueue.agents.accounts import add_agent, agent_endpoint, roster

    add_agent(
        db,
        login="alice",
        name="Alice",
        password="password1",
        role="agent",
        client_identity="alice",
        phone=None,
        now=at(0),
    )
    add_agent(
        db,
        login="bob",
        name="Bob",
        password="password1",
        role="agent",
        client_identity=None,
        phone="+8613800000002",
        now=at(0),
    )
    db.commit()
    assert roster(db) == [("alice", "client:alice"), ("bob", "+8613800000002")]
    assert agent_endpoint(db, "bob") == "+8613800000002" and agent_endpoint(db, "zed") is None
    presence.ensure_known(redis, roster(db), at(0))
    assert presence.counts(redis, at(0))["offline"] == 2
