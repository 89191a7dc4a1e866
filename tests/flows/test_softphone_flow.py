"""Issue 16 as whole calls: every connected call is a conference of its own, agents are rung by a call of their own
(whisper first), and accept, decline, hold, mute and hang-up are asked for through the JSON API as the console does
(transfers: tests/flows/test_transfer_flow.py).

The simulator plays Twilio (conferences, participants, devices), rq workers in their own processes ring the agents
and move callers, and the shipped defaults hold: a 20 s ring timeout and a 15 s wrap-up, at 50 ms a second (a
person's click fits in a ringing device's window).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callqueue.live import heartbeat, ordering
from tests.support.flow import Flow, join_queue, leg_ended, leg_of, offers
from tests.support.hotline_api import assert_stats_match_records, records
from tests.support.people import SUPERVISOR, add_members, add_people, script
from tests.support.softphone import call_state, control, settled, softphone_flow, talking


@pytest.fixture
def flow(services: Any, tmp_path: Path) -> Iterator[Flow]:
    with softphone_flow(services, tmp_path) as f:
        yield f


def test_an_agent_accepts_in_the_console_hears_the_whisper_and_hangs_up(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann"])
    phones = add_members(services, flow.config, {"premium": 1})
    code, beat = api.call("POST", "/api/agents/me/heartbeat", "ann", {"device": "unknown"})  # registers her device
    assert code == 200, beat
    caller = join_queue(sim, phones["premium"][0], script("premium"))
    api.status("ann", "available")
    leg = leg_of(sim, "client:ann")
    me = api.me("ann")
    assert (me["status"], me["call"]["call_sid"], me["call"]["state"], me["call"]["tier"]) == (
        "on_call", caller.sid, "ringing", "premium")
    assert caller.result.conferences == []  # the caller holds in the queue until someone has answered
    code, _ = api.call("POST", "/api/agents/me/device/accept", "ann")
    assert code == 200
    talking(flow, caller, "client:ann")
    assert call_state(api, "ann") == "connected"
    whisper = sim.handle(leg).result.said()
    assert any(flow.config.tiers["premium"]["label"]["zh"] in text for text in whisper)  # to the agent only
    assert not any(text in caller.result.said() for text in whisper)

    control(api, "ann", caller.sid, "hangup")
    result = caller.join(30)
    assert result.talked_with() == ["client:ann"]
    assert result.said()[-1] == flow.config.prompt("goodbye", "zh")  # the agent left: goodbye
    rec = records(services)[caller.sid]
    assert (rec.outcome, rec.agent_login, rec.agents, rec.transfers, rec.hold_count) == ("answered", "ann", "ann", 0, 0)
    me = api.me("ann")
    assert (me["status"], me["call"]["state"], me["call"]["call_sid"]) == ("wrap_up", "wrap_up", caller.sid)
    assert assert_stats_match_records(api, services, flow.config)["overall"]["answered"] == 1


def test_a_declined_offer_keeps_the_callers_place_and_the_next_agent_is_offered(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann", "bob"])
    phones = add_members(services, flow.config, {"standard": 1})
    sim.add_agent("ann", behaviour="manual", talk_seconds=None)
    sim.add_agent("bob", answer_after=2, talk_seconds=30)
    api.status("ann", "available")
    api.status("bob", "available")  # ann has waited longer: her turn first
    caller = join_queue(sim, phones["standard"][0], script("standard"))
    leg_of(sim, "client:ann")
    code, _ = api.call("POST", "/api/agents/me/device/decline", "ann")
    assert code == 200
    assert caller.join(30).talked_with() == ["client:bob"]
    assert offers(sim) == [(caller.sid, "ann"), (caller.sid, "bob")]
    assert caller.result.queue_results == [{**caller.result.queue_results[0], "QueueResult": "redirected"}]  # once
    rec = records(services)[caller.sid]
    assert (rec.outcome, rec.offers, rec.agent_login, rec.agents) == ("answered", 2, "bob", "bob")
    ann = api.me("ann")
    assert (ann["status"], ann["reason"]) == ("available", None)  # one miss: back of the line, not away


def test_hold_and_resume_the_caller_hears_the_hold_audio_and_the_time_is_counted(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["bob"])
    phones = add_members(services, flow.config, {"premium": 1})
    sim.add_agent("bob", answer_after=2, talk_seconds=None)
    caller = join_queue(sim, phones["premium"][0], script("premium"))
    api.status("bob", "available")
    talking(flow, caller, "client:bob")
    assert control(api, "bob", caller.sid, "hold", {"hold": True})["call"]["state"] == "held"
    held = sim.events.wait("conference.hold", timeout=15, call_sid=caller.sid)
    hold_prompt = flow.config.prompt("hold", "zh")
    # the notice said, the hold audio (silence between announcements here) begins: resume then
    sim.events.wait("heard", timeout=15, after=held.seq, call_sid=caller.sid, party="hold", verb="pause")
    assert control(api, "bob", caller.sid, "hold", {"hold": False})["call"]["state"] == "connected"
    sim.events.wait("conference.unhold", timeout=15, after=held.seq, call_sid=caller.sid)
    assert any(h.party == "hold" and h.text == hold_prompt for h in caller.result.transcript)
    control(api, "bob", caller.sid, "mute", {"mute": True})
    sim.events.wait("conference.mute", timeout=15, endpoint="client:bob")
    assert api.me("bob")["call"]["muted"] is True
    control(api, "bob", caller.sid, "mute", {"mute": False})
    sim.events.wait("conference.unmute", timeout=15, endpoint="client:bob")
    caller.hangup()
    caller.join(15)
    rec = settled(flow, services, caller.sid)
    assert (rec.outcome, rec.hold_count) == ("answered", 1) and rec.hold_s >= 1  # the notice takes seconds to say
    assert api.me("bob")["status"] == "wrap_up"


def test_the_caller_hanging_up_while_held_or_during_a_consultation(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann", "bob"])
    phones = add_members(services, flow.config, {"standard": 2})
    sim.add_agent("ann", answer_after=2, talk_seconds=None)
    sim.add_agent("bob", answer_after=2, talk_seconds=None)
    mark = 0
    held = join_queue(sim, phones["standard"][0], script("standard"))
    api.status("ann", "available")
    talking(flow, held, "client:ann")
    control(api, "ann", held.sid, "hold", {"hold": True})
    on_hold = sim.events.wait("conference.hold", timeout=15, call_sid=held.sid)
    sim.events.wait("heard", timeout=15, after=on_hold.seq, call_sid=held.sid, party="hold", verb="pause")
    held.hangup()
    held.join(15)
    leg_ended(sim, "client:ann")  # her leg ends with the conference
    rec = settled(flow, services, held.sid)
    assert (rec.outcome, rec.hold_count) == ("answered", 1) and rec.hold_s >= 1  # until the caller left
    assert api.me("ann")["status"] == "wrap_up"

    consulted = join_queue(sim, phones["standard"][1], script("standard"))
    mark = sim.events.last_seq()
    api.status("ann", "available")
    talking(flow, consulted, "client:ann")
    api.status("bob", "available")
    control(api, "ann", consulted.sid, "transfer", {"to": "agent:bob", "mode": "warm"})
    sim.events.wait("conference.join", timeout=15, endpoint="client:bob")
    consulted.hangup()
    consulted.join(15)
    rec = settled(flow, services, consulted.sid)
    assert (rec.outcome, rec.agents) == ("answered", "ann")
    for login in ("ann", "bob"):  # the conference ended with the caller: both agents' legs with it
        leg_ended(sim, f"client:{login}", after=mark)
    assert api.me("ann")["status"] == "wrap_up"
    assert api.me("bob")["status"] == "available"  # only consulted: no wrap-up of a call never his


def test_a_silent_console_goes_offline_and_is_never_offered_a_call(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann", "bob"])
    phones = add_members(services, flow.config, {"standard": 1})
    sim.add_agent("ann", answer_after=2, talk_seconds=None)
    sim.add_agent("bob", answer_after=2, talk_seconds=20)
    api.status("ann", "available")
    api.status("bob", "available")
    timeout = flow.config["presence"]["heartbeat_timeout_s"]
    assert timeout == 60  # as shipped
    flow.clock.advance(timeout - 5)
    api.call("POST", "/api/agents/me/heartbeat", "bob", {"device": "registered"})  # bob's console is there
    flow.clock.advance(10)
    # the worker's sweep (hotline/jobs.py) does this every few seconds, on its own clock
    assert heartbeat.silent_offline(services.redis, flow.clock(), flow.config) == ["ann"]
    me = api.me("ann")
    assert (me["status"], me["reason"]) == ("offline", "heartbeat_lost")
    caller = join_queue(sim, phones["standard"][0], script("standard"))
    assert caller.join(30).talked_with() == ["client:bob"]
    assert [agent for _sid, agent in offers(sim)] == ["bob"]  # ann was never rung
    code, gone = api.call("POST", "/api/agents/me/heartbeat", "bob", {"device": "unregistered"})
    assert code == 200 and (gone["status"], gone["reason"]) in (("offline", "device_unregistered"),
                                                                 ("wrap_up", None))


def test_two_missed_offers_in_a_row_set_the_agent_away_with_the_reason(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["nora", "bob"])
    phones = add_members(services, flow.config, {"standard": 1})
    sim.add_agent("nora", behaviour="no-answer")
    sim.add_agent("bob", answer_after=2, talk_seconds=20)
    caller = join_queue(sim, phones["standard"][0], script("standard"))
    api.status("nora", "available")
    ended = 0
    for _ in range(2):  # rings out twice (20 s each); the caller never leaves their place
        ended = leg_ended(sim, "client:nora", after=ended)
    me = api.me("nora")
    assert (me["status"], me["reason"]) == ("away", "missed_offers")
    assert ordering.position(services.redis, caller.sid) == 1
    api.status("bob", "available")
    assert caller.join(30).talked_with() == ["client:bob"]
    assert offers(sim) == [(caller.sid, "nora"), (caller.sid, "nora"), (caller.sid, "bob")]
    rows = api.call("GET", "/api/agents", SUPERVISOR)[1]
    assert {r["login"]: r["reason"] for r in rows}["nora"] == "missed_offers"  # supervisors see why


