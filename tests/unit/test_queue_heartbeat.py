"""Presence that corrects itself, on a real Redis and SQL: heartbeats, silent consoles, unregistered devices, wrap-up
extensions, and every state change written to SQL by the sweep (fixed times, the shipped defaults)."""
from __future__ import annotations

import pytest

from callqueue import records
from callqueue.agents import presence_log
from callqueue.live import agent_leg, calls, conference, dispatch, heartbeat, ordering, presence
from core import keys
from hotline import jobs
from tests.support.clocks import at


def on_call(r, qs, login="ann", sid="CA1", t=10):
    ordering.enqueue(r, sid, tier="standard", now=at(t), settings=qs)
    assert dispatch.claim_next(r, at(t + 1)).agent == login
    dispatch.answered(r, sid, login, at(t + 2), qs)
    conference.caller_moved(r, sid, login)


def test_an_agent_not_heard_from_for_the_timeout_goes_offline_and_is_never_offered_a_call(redis, qs):
    assert qs.heartbeat_timeout_s == 60  # as shipped
    for login in ("ann", "bob"):
        presence.set_state(redis, login, "available", at(0), endpoint=f"client:{login}")
    assert heartbeat.beat(redis, "bob", at(50), "registered").state == "available"
    assert heartbeat.silent_offline(redis, at(60), qs) == []  # ann: exactly 60 s, not yet
    assert heartbeat.silent_offline(redis, at(61), qs) == ["ann"]
    p = presence.get(redis, "ann", at(61))
    assert (p.state, p.reason, p.since) == ("offline", "heartbeat_lost", at(61).timestamp())
    ordering.enqueue(redis, "CA1", tier="premium", now=at(62), settings=qs)
    assert dispatch.claim_next(redis, at(63)).agent == "bob"
    assert heartbeat.silent_offline(redis, at(109), qs) == []  # bob is on a call: the call's events decide
    # coming back is the agent's own choice, which clears the reason
    assert presence.set_state(redis, "ann", "available", at(120)).reason is None


def test_an_unregistered_device_takes_the_agent_offline_at_once_or_after_the_call(redis, qs):
    for login in ("ann", "bob"):
        presence.set_state(redis, login, "available", at(0), endpoint=f"client:{login}")
    on_call(redis, qs, "ann")
    assert heartbeat.beat(redis, "bob", at(20), "unregistered").state == "offline"
    assert presence.get(redis, "bob", at(20)).reason == "device_unregistered"
    assert heartbeat.beat(redis, "ann", at(20), "unregistered").state == "on_call"
    agent_leg.completed(redis, "CA1", "ann", at(30), qs)
    assert presence.get(redis, "ann", at(46)).state == "offline"  # after her wrap-up, not available
    assert heartbeat.beat(redis, "nobody", at(20)).state == ""
    with pytest.raises(ValueError):
        heartbeat.beat(redis, "ann", at(20), "vanished")


def test_a_wrap_up_extends_up_to_the_configured_maximum(redis, qs):
    assert (qs.wrap_up_s, qs.wrap_up_max_s) == (15, 300)
    presence.set_state(redis, "ann", "available", at(0), endpoint="client:ann")
    assert heartbeat.extend_wrap_up(redis, "ann", at(1), 30, qs) is None  # not in wrap-up
    on_call(redis, qs)
    agent_leg.completed(redis, "CA1", "ann", at(100), qs)
    assert heartbeat.extend_wrap_up(redis, "ann", at(105), 60, qs) == at(175).timestamp()
    assert presence.get(redis, "ann", at(170)).state == "wrap_up"
    assert heartbeat.extend_wrap_up(redis, "ann", at(110), 3600, qs) == at(400).timestamp()  # capped: 300 s in all
    assert presence.get(redis, "ann", at(401)).state == "available"
    with pytest.raises(ValueError):
        heartbeat.extend_wrap_up(redis, "ann", at(110), 0, qs)


def test_every_state_change_is_written_to_sql_once_with_who_from_to_and_why(services, db, redis, qs):
    presence.set_state(redis, "ann", "available", at(0), endpoint="client:ann")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(10), settings=qs)
    calls.dispatch(db, redis, at(11))
    calls.agent_answered(db, redis, "CA1", "ann", at(12), qs)
    conference.caller_moved(redis, "CA1", "ann")
    calls.agent_left(db, redis, "CA1", "ann", at(30), qs)
    db.commit()
    presence.settle_wrap_ups(redis, at(46))  # the wrap-up runs out with no disposition saved
    presence.set_state(redis, "ann", "away", at(50))
    jobs.adopt(services)
    assert jobs.write_presence(services) == 5
    assert jobs.write_presence(services) == 0 and redis.llen(keys.PRESENCE_LOG) == 0
    rows = [(e.from_state, e.to_state, e.reason, e.at) for e in presence_log.day_of(db, "ann", at(-1), at(100))]
    assert rows == [
        ("", "available", "agent", at(0)), ("available", "on_call", "offered", at(11)),
        ("on_call", "wrap_up", "call_ended", at(30)), ("wrap_up", "available", "wrap_up_due", at(45)),
        ("available", "away", "agent", at(50)),
    ]
    rec = records.get(db, "CA1")
    assert (rec.wrap_up_expired, rec.disposition) == (True, None)  # supervisors see the wrap-up ran out
    assert [e.login for e in presence_log.recent(db, at(-1))] == ["ann"] * 5


def test_the_drain_is_one_process_at_a_time_and_a_lock_is_released_only_by_its_owner(redis):
    token = presence_log.claim_drain(redis)
    assert token and presence_log.claim_drain(redis) is None
    presence_log.release_drain(redis, "someone else's")
    assert presence_log.claim_drain(redis) is None  # still held by its owner
    presence_log.release_drain(redis, token)
    assert presence_log.claim_drain(redis) is not None
