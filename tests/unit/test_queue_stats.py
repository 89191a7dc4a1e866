"""Statistics: the live Redis figures equal the figures recomputed from SQL call records."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callqueue.live import calls, conference, presence
from callqueue.reports import stats

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
NOW = T0 + timedelta(seconds=1200)  # 10:20; the 15-minute window starts at 10:06 = T0 + 360 s


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)



def play_a_morning(db, r, qs) -> None:
    """A realistic mixed sequence, each webhook committed as the edge would, with retries and late callbacks."""

    def join(sid, tier, t):
        calls.arrived(db, sid, from_number="+8613800000001", now=at(t - 30))
        if tier != "guest":
            calls.verified(db, sid, tier=tier, member_uid="U" + sid, now=at(t - 5))
        calls.join_queue(db, r, sid, tier=tier, now=at(t), settings=qs, category="billing",
                         verified=tier != "guest", member_uid=None if tier == "guest" else "U" + sid)
        db.commit()

    def take(t, sid):
        offer = calls.dispatch(db, r, at(t))
        assert offer is not None and offer.call_sid == sid, (offer, sid)
        db.commit()
        return offer

    def talk(offer, answer_t, end_t):
        calls.agent_answered(db, r, offer.call_sid, offer.agent, at(answer_t), qs)
        calls.queue_result(db, r, offer.call_sid, "redirected", at(answer_t), qs)  # moved into the conference
        assert conference.caller_moved(r, offer.call_sid, offer.agent)
        db.commit()
        if end_t is not None:
            calls.agent_left(db, r, offer.call_sid, offer.agent, at(end_t), qs)
            calls.call_status(db, r, offer.call_sid, "completed", at(end_t + 1), qs)
            db.commit()

    def hang_up(sid, t, status_first=False):
        steps = [lambda: calls.queue_result(db, r, sid, "hangup", at(t), qs),
                 lambda: calls.call_status(db, r, sid, "completed", at(t + 1), qs)]
        for step in reversed(steps) if status_first else steps:
            step()
            db.commit()

    # yesterday evening (23:30 local): not today
    y = -10.5 * 3600
    presence.set_state(r, "zed", "available", at(y - 10), endpoint="client:zed")
    join("CAy", "standard", y)
    talk(take(y + 5, "CAy"), y + 8, y + 60)
    presence.set_state(r, "zed", "offline", at(y + 100))

    presence.set_state(r, "alice", "available", at(0), endpoint="client:alice")
    presence.set_state(r, "bob", "available", at(50), endpoint="client:bob")
    presence.set_state(r, "carol", "available", at(310), endpoint="client:carol")
    presence.set_state(r, "dave", "available", at(450), endpoint="+8613800000004")

    join("CA01", "premium", 0)
    talk(take(1, "CA01"), 10, 300)                 # answered in 10 s (premium T = 20 s)
    join("CA02", "standard", 5)
    join("CA03", "standard", 20)
    hang_up("CA03", 22)                            # short abandon (2 s)
    join("CA04", "guest", 30)
    join("CA05", "premium", 40)
    calls.queue_result(db, r, "CA05", "leave", at(90), qs)   # press 1: callback, keeping the place
    calls.call_status(db, r, "CA05", "completed", at(150), qs)
    db.commit()
    talk(take(100, "CA02"), 130, 400)              # answered after 125 s (standard T = 60 s)
    hang_up("CA04", 200)                           # abandoned after 170 s
    join("CA06", "standard", 400)
    first = take(410, "CA06")
    assert first.agent == "carol"
    assert calls.agent_missed(db, r, "CA06", "carol", "no-answer", at(430), qs).caller_back
    db.commit()
    talk(take(500, "CA06"), 505, None)             # answered after 105 s, still talking
    join("CA07", "annual_premium", 700)
    calls.dispatch(db, r, at(710))
    hang_up("CA07", 712)                           # hung up while the agent's device rang: 12 s
    db.commit()
    join("CA08", "standard", 800)
    hang_up("CA08", 850, status_first=True)        # status before the Enqueue action: 50 s
    join("CA10", "standard", 1100)
    take(1150, "CA10")                             # ringing an agent now
    join("CA09", "premium", 1160)                  # waiting now
    join("CA11", "guest", 1190)                    # waiting now
    join("CA12", "standard", 1195)
    calls.queue_result(db, r, "CA12", "system-error", at(1196), qs)
    db.commit()


def test_live_figures_equal_sql_recomputation(db, redis, qs):
    play_a_morning(db, redis, qs)
    for window in ("today", "15m"):
        live = stats.live(redis, NOW, qs, window)
        sql = stats.from_records(db, NOW, qs, window, agents=live["agents"])
        assert live == sql, window


def test_todays_figures(db, redis, qs):
    play_a_morning(db, redis, qs)
    s = stats.live(redis, NOW, qs, "today")
    assert s["window"] == "today" and s["as_of"] == "2026-03-02T02:20:00+00:00"
    assert set(s["tiers"]) == {"annual_premium", "premium", "standard", "guest"}
    std = s["tiers"]["standard"]
    assert std == {"waiting": 1, "longest_wait_s": 100.0, "offered": 6, "answered": 2, "abandoned": 1,
                   "short_abandoned": 1, "asa_s": 115.0, "service_level": 0.0, "abandon_rate": round(1 / 3, 4),
                   "to_callback": 0}
    prem = s["tiers"]["premium"]
    assert (prem["offered"], prem["answered"], prem["to_callback"], prem["waiting"], prem["longest_wait_s"]) == (
        3,
        1,
        1,
        1,
        40.0,
    )
    assert (prem["asa_s"], prem["service_level"], prem["abandon_rate"]) == (10.0, 1.0, 0.0)
    guest = s["tiers"]["guest"]
    assert (guest["abandoned"], guest["service_level"], guest["waiting"], guest["longest_wait_s"]) == (1, 0.0, 1, 10.0)
    annual = s["tiers"]["annual_premium"]
    assert (annual["abandoned"], annual["service_level"], annual["abandon_rate"]) == (1, None, 1.0)
    overall = s["overall"]
    assert (overall["offered"], overall["answered"], overall["abandoned"], overall["short_abandoned"]) == (12, 3, 3, 1)
    assert (overall["waiting"], overall["longest_wait_s"], overall["to_callback"]) == (3, 100.0, 1)
    assert overall["service_level"] == round(1 / (3 + 1), 4)  # 1 answered within T; CA04 abandoned after T
    assert overall["abandon_rate"] == 0.5


def test_last_fifteen_minutes(db, redis, qs):
    play_a_morning(db, redis, qs)
    s = stats.live(redis, NOW, qs, "15m")
    overall = s["overall"]
    # from 10:06 on: CA06-CA12 joined, CA06 answered, CA07 and CA08 abandoned
    assert (overall["offered"], overall["answered"], overall["abandoned"], overall["to_callback"]) == (7, 1, 2, 0)
    assert s["tiers"]["standard"]["asa_s"] == 105.0
    assert overall["waiting"] == 3  # waiting is "now" in both windows


def test_agents_by_state(db, redis, qs):
    play_a_morning(db, redis, qs)
    agents = stats.live(redis, NOW, qs)["agents"]
    # dave talks to CA06, one agent rings for CA10, carol missed one offer (back of the line, not away: that takes
    # presence.max_missed_offers in a row), zed is offline
    assert agents == {"available": 2, "on_call": 2, "wrap_up": 0, "away": 0, "offline": 1}


def test_empty_figures_and_bad_window(db, redis, qs):
    s = stats.live(redis, NOW, qs, "today")
    assert s["overall"] == {"waiting": 0, "longest_wait_s": 0.0, "offered": 0, "answered": 0, "abandoned": 0,
                            "short_abandoned": 0, "asa_s": None, "service_level": None, "abandon_rate": None,
                            "to_callback": 0}
    assert s == stats.from_records(db, NOW, qs, "today", agents=s["agents"])
    with pytest.raises(ValueError):
        stats.live(redis, NOW, qs, "week")
