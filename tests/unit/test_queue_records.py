"""Call records on real SQL (and Redis, through callqueue.live.calls): one correct row whatever the callbacks' order."""
from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from callqueue import handling, records
from callqueue.live import calls, conference, dispatch, ordering, presence, transfer
from callqueue.records import CallRecord
from tests.support.clocks import at
from tests.support.redis_state import available_in_order


def rows(db) -> int:
    return db.scalar(select(func.count()).select_from(CallRecord))


def test_migration_created_the_table(services):
    cols = {c["name"] for c in inspect(services.engine).get_columns("call_records")}
    assert {"call_sid", "tier", "queued", "answered", "left_queue", "ended", "waited_s", "outcome",
            "queue_result", "dial_status", "agent_login", "member_uid", "verified"} <= cols


def test_open_twice_gives_one_row(db):
    records.open_call(db, "CA1", from_number="+8613800000001", now=at(0))
    again = records.open_call(db, "CA1", from_number="+8613800000009", now=at(5))
    db.commit()
    assert rows(db) == 1
    assert (again.arrived, again.from_number, again.outcome) == (at(0), "+8613800000001", "in_progress")


def test_a_row_created_meanwhile_by_another_process_is_found(db, services, monkeypatch):
    with services.sessions() as other:
        records.open_call(other, "CA1", from_number="+8613800000001", now=at(0))
        other.commit()
    real_get, calls_seen = records.get, []

    def stale_get(session, sid):  # the first look misses the row, as a racing process would
        calls_seen.append(sid)
        return None if len(calls_seen) == 1 else real_get(session, sid)

    monkeypatch.setattr(records, "get", stale_get)
    rec = records.open_call(db, "CA1", from_number=None, now=at(1))
    db.commit()
    assert rows(db) == 1 and rec.arrived == at(0) and len(calls_seen) == 2


def test_status_completed_before_the_enqueue_action(db, redis, qs):
    calls.arrived(db, "CA1", from_number="+8613800000001", now=at(0))
    calls.verified(db, "CA1", tier="premium", member_uid="U1", now=at(20))
    calls.join_queue(
        db, redis, "CA1", tier="premium", category="billing", verified=True, member_uid="U1", now=at(30), settings=qs
    )
    db.commit()
    calls.call_status(db, redis, "CA1", "completed", at(100), qs)  # arrives first
    calls.call_status(db, redis, "CA1", "completed", at(101), qs)  # and again
    db.commit()
    calls.queue_result(db, redis, "CA1", "hangup", at(102), qs)  # the Enqueue action, late
    db.commit()
    assert rows(db) == 1
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.waited_s, rec.left_queue, rec.ended) == ("abandoned", 70.0, at(100), at(100))
    assert (rec.queue_result, rec.call_status, rec.tier, rec.member_uid, rec.verified_at) == (
        "hangup",
        "completed",
        "premium",
        "U1",
        at(20),
    )
    assert dispatch.caller_left(redis, "CA1", at(103), "hangup", qs).changed is False


def test_answered_call_through_every_callback_twice(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    calls.arrived(db, "CA1", from_number="+8613800000001", now=at(0))
    for _ in range(2):
        j = calls.join_queue(db, redis, "CA1", tier="standard", now=at(10), settings=qs, category="video")
    assert (j.queue_name, j.position, j.new) == ("hotline-1", 1, False)
    offer = calls.dispatch(db, redis, at(11))
    assert calls.dispatch(db, redis, at(11)) is None
    for _ in range(2):
        assert calls.agent_dialled(redis, "CA1", offer.agent, "CAleg1")
    for t in (15, 16):
        calls.agent_answered(db, redis, "CA1", offer.agent, at(t), qs, leg="CAleg1")
    for result in ("redirected", "redirected"):  # moved out of the queue into the conference
        assert calls.queue_result(db, redis, "CA1", result, at(17), qs) is None
    for _ in range(2):
        assert conference.caller_moved(redis, "CA1", "alice")
    for t in (200, 201):
        calls.agent_left(db, redis, "CA1", "alice", at(t), qs)
    for t in (202, 203):
        calls.call_status(db, redis, "CA1", "completed", at(t), qs)
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.agent_login, rec.offers, rec.waited_s) == ("answered", "alice", 1, 5.0)
    assert (rec.queued, rec.offered, rec.answered, rec.ended, rec.left_queue) == (at(10), at(11), at(15), at(202), None)
    assert (rec.queue_result, rec.dial_status, rec.category) == ("redirected", "completed", "video")
    assert (rec.agents, rec.hold_count, rec.hold_s, rec.transfers) == ("alice", 0, 0.0, 0)
    assert presence.get(redis, "alice", at(210)).state == "wrap_up"


def test_hold_time_is_counted_from_twilios_events_in_sequence_order_whatever_order_they_arrive_in(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(10), settings=qs)
    offer = calls.dispatch(db, redis, at(11))
    calls.agent_answered(db, redis, "CA1", offer.agent, at(15), qs)
    conference.caller_moved(redis, "CA1", "alice")
    ms = at(0).timestamp() * 1000
    events = [(3, True, 20), (4, False, 50), (7, True, 80), (9, False, 90)]  # held 30 s, then 10 s
    for seq, on, t in [*reversed(events), events[1]]:  # every callback late and out of order, one twice
        assert conference.hold_event(redis, "CA1", seq, on, int(ms + t * 1000))
    assert conference.live_call(redis, "CA1").held is False  # the last event by sequence is an unhold
    assert conference.hold_totals(redis, "CA1", int(ms + 100_000)) == (2, 40.0)
    conference.hold_event(redis, "CA1", 11, True, int(ms + 95_000))  # held again when the call ends
    calls.call_status(db, redis, "CA1", "completed", at(100), qs)
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.hold_count, rec.hold_s, rec.agents) == ("answered", 3, 45.0, "alice")
    assert conference.hold_event(redis, "CAunknown", 1, True, int(ms)) is False


def test_a_transfer_to_the_queue_keeps_the_score_and_the_next_agent_completes_the_call(db, redis, qs):
    for login, t in (("alice", 0), ("bob", 1)):
        presence.set_state(redis, login, "available", at(t), endpoint=f"client:{login}")
    first = calls.join_queue(db, redis, "CA1", tier="standard", now=at(10), settings=qs, category="video")
    offer = calls.dispatch(db, redis, at(11))
    calls.agent_answered(db, redis, "CA1", "alice", at(15), qs)
    conference.caller_moved(redis, "CA1", "alice")
    n = transfer.to_queue(redis, "CA1", "alice", at(60), qs)
    handling.transfer_started(db, "CA1", n, by="alice", to="queue", mode="queue", now=at(60))
    assert presence.get(redis, "alice", at(61)).state == "wrap_up"
    again = calls.join_queue(db, redis, "CA1", tier="standard", now=at(62), settings=qs)  # <Enqueue> again
    assert (again.score, again.position) == (first.score, 1)
    second = calls.dispatch(db, redis, at(63))
    assert (second.call_sid, second.agent) == ("CA1", "bob") and offer.agent == "alice"
    assert calls.agent_answered(db, redis, "CA1", "bob", at(64), qs).changed
    assert conference.live_call(redis, "CA1").transferred_by == "alice"
    conference.caller_moved(redis, "CA1", "bob")
    calls.agent_left(db, redis, "CA1", "bob", at(90), qs)
    calls.call_status(db, redis, "CA1", "completed", at(91), qs)
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.answered, rec.agents, rec.transfers) == ("answered", at(15), "alice,bob", 1)
    assert [(t.n, t.from_agent, t.to_target, t.mode) for t in handling.transfers_of(db, "CA1")] == [
        (1, "alice", "queue", "queue")]


def test_no_answer_then_answered_by_the_next_agent(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    presence.set_state(redis, "bob", "available", at(1), endpoint="client:bob")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(10), settings=qs)
    first = calls.dispatch(db, redis, at(11))
    missed = calls.agent_missed(db, redis, "CA1", first.agent, "no-answer", at(31), qs)
    assert (missed.caller_back, missed.agent_state, missed.missed_in_a_row) == (True, "available", 1)
    assert ordering.position(redis, "CA1") == 1  # never left their Twilio queue: the same place in ours
    second = calls.dispatch(db, redis, at(32))
    assert (second.agent, second.attempt) == ("bob", 2)
    calls.agent_answered(db, redis, "CA1", "bob", at(40), qs)
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.agent_login, rec.offers, rec.waited_s, rec.dial_status) == (
        "answered",
        "bob",
        2,
        30.0,
        "no-answer",
    )
    assert presence.get(redis, "alice", at(40)).state == "available"  # one miss: at the back of the line


def test_caller_leaving_for_a_callback_keeps_the_score(db, redis, qs):
    j = calls.join_queue(db, redis, "CA1", tier="premium", now=at(0), settings=qs)
    calls.queue_result(db, redis, "CA1", "leave", at(60), qs)
    calls.call_status(db, redis, "CA1", "completed", at(90), qs)  # the call goes on to confirm the ticket
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.left_queue, rec.ended, rec.waited_s, rec.score) == (
        "to_callback",
        at(60),
        at(90),
        60.0,
        j.score,
    )


def test_calls_that_never_queued(db, redis, qs):
    calls.arrived(db, "CAivr", from_number="+8613800000001", now=at(0))
    calls.call_status(db, redis, "CAivr", "completed", at(40), qs)
    calls.call_status(db, redis, "CAbusy", "busy", at(41), qs)  # no record yet: created by the callback
    calls.call_status(db, redis, "CAivr", "ringing", at(42), qs)  # not final: ignored
    db.commit()
    assert records.get(db, "CAivr").outcome == "ivr" and records.get(db, "CAbusy").outcome == "failed"


def test_record_settles_alone_when_redis_lost_the_call(db, redis, qs):
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(0), settings=qs)
    calls.join_queue(db, redis, "CA2", tier="standard", now=at(0), settings=qs)
    redis.flushdb()
    calls.call_status(db, redis, "CA1", "completed", at(3), qs)
    calls.call_status(db, redis, "CA2", "completed", at(30), qs)
    db.commit()
    assert records.get(db, "CA1").outcome == "short_abandoned"
    assert (records.get(db, "CA2").outcome, records.get(db, "CA2").waited_s) == ("abandoned", 30.0)


def test_a_ring_that_failed_puts_both_back_keeping_the_agents_turn(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(0), settings=qs)
    offer = calls.dispatch(db, redis, at(10))
    calls.ring_failed(redis, offer, at(11))
    calls.ring_failed(redis, offer, at(12))  # a repeat changes nothing
    assert ordering.position(redis, "CA1") == 1
    assert available_in_order(redis) == [("alice", at(0).timestamp())]


def test_note_left_refuses_answered(db):
    with pytest.raises(ValueError):
        records.note_left(db, "CA1", outcome="answered", now=at(0))


def test_the_caller_hanging_up_while_the_agent_rings_ends_the_ring_and_keeps_the_agents_turn(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(0), settings=qs)
    offer = calls.dispatch(db, redis, at(10))
    calls.agent_dialled(redis, "CA1", offer.agent, "CAleg1")
    s = calls.queue_result(db, redis, "CA1", "hangup", at(14), qs)  # hung up while alice's device rang
    assert (s.outcome, s.agent, s.legs) == ("abandoned", "alice", ("CAleg1",))  # that leg is to be hung up
    ended = calls.call_status(db, redis, "CA1", "completed", at(14), qs)
    assert ended.legs == () and ended.record.outcome == "abandoned"
    # her device still rings until that leg ends: no other caller is offered to her meanwhile
    assert presence.get(redis, "alice", at(14)).state == "on_call"
    calls.join_queue(db, redis, "CA2", tier="standard", now=at(14), settings=qs)
    assert calls.dispatch(db, redis, at(14)) is None
    # the leg's end (canceled) frees her, at her place, with no missed offer counted; a repeat moves nothing
    late = calls.agent_missed(db, redis, "CA1", offer.agent, "canceled", at(15), qs)
    assert (late.caller_back, late.agent_moved, late.agent_state, late.missed_in_a_row) == (False, True, "available", 0)
    again = calls.agent_missed(db, redis, "CA1", offer.agent, "canceled", at(15), qs)
    assert (again.caller_back, again.agent_moved) == (False, False)
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.waited_s) == ("abandoned", 14.0)
    assert presence.get(redis, "alice", at(15)).state == "available"
    assert available_in_order(redis) == [("alice", at(0).timestamp())]  # not her fault: her turn is kept


def test_a_caller_gone_before_reaching_the_agent_who_answered_is_recorded_abandoned(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(0), settings=qs)
    offer = calls.dispatch(db, redis, at(10))
    calls.agent_answered(db, redis, "CA1", offer.agent, at(12), qs, leg="CAleg1")
    s = calls.queue_result(db, redis, "CA1", "hangup", at(14), qs)  # during the whisper, before being moved
    assert (s.outcome, s.legs, s.unheard) == ("abandoned", ("CAleg1",), True)
    calls.agent_answered(db, redis, "CA1", offer.agent, at(12), qs, leg="CAleg1")  # the answer's webhook, retried
    assert calls.call_status(db, redis, "CA1", "completed", at(15), qs).record.outcome == "abandoned"
    db.commit()
    rec = records.get(db, "CA1")
    assert (rec.outcome, rec.answered, rec.left_queue, rec.waited_s) == ("abandoned", None, at(14), 14.0)


def test_a_retried_missed_offer_changes_nothing_twice(db, redis, qs):
    presence.set_state(redis, "alice", "available", at(0), endpoint="client:alice")
    calls.join_queue(db, redis, "CA1", tier="standard", now=at(0), settings=qs)
    offer = calls.dispatch(db, redis, at(10))
    assert calls.agent_missed(db, redis, "CA1", offer.agent, "no-answer", at(30), qs).missed_in_a_row == 1
    assert calls.agent_missed(db, redis, "CA1", offer.agent, "no-answer", at(31), qs).agent_moved is False
    assert ordering.position(redis, "CA1") == 1 and redis.hget("hl:agent:alice", "missed") == "1"


def test_arrival_insert_is_idempotent_and_verification_is_one_update(db):
    calls.arrived(db, "CAx", from_number="+8613800000001", now=at(0))
    calls.arrived(db, "CAx", from_number="+8613800000009", now=at(5))  # a retried /voice/incoming
    calls.verified(db, "CAx", tier="premium", member_uid="42", now=at(9))
    calls.verified(db, "CAy", tier="standard", member_uid=None, now=at(9))  # no record yet: created
    db.commit()
    rec = records.get(db, "CAx")
    assert rows(db) == 2
    assert (rec.arrived, rec.from_number, rec.tier, rec.member_uid, rec.verified_at) == (
        at(0),
        "+8613800000001",
        "premium",
        "42",
        at(9),
    )
    assert records.get(db, "CAy").verified is True


def test_dial_status_and_queue_result_are_one_update_each_and_create_a_missing_record(db):
    records.open_call(db, "CAr", from_number=None, now=at(0))
    db.commit()
    records.note_queue_result(db, "CAr", "redirected")
    records.note_queue_result(db, "CAr", "hangup")  # the first result reported is kept
    records.note_dial_status(db, "CAr", "no-answer")
    records.note_dial_status(db, "CAr", "completed")  # the latest dial is kept
    records.note_dial_status(db, "CAnew", "busy")  # no record yet (its incoming was lost): one is made
    db.commit()
    got = {
        r.call_sid: (r.queue_result, r.dial_status)
        for r in db.scalars(select(CallRecord).execution_options(populate_existing=True))
    }
    assert got == {"CAr": ("redirected", "completed"), "CAnew": (None, "busy")}
