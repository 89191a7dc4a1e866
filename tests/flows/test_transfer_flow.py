"""Issue 16's transfers as whole calls: cold and warm to another agent, back to the queue, and the conference's
callbacks replayed out of order (the rest of the softphone's flows are tests/flows/test_softphone_flow.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callqueue import handling
from callqueue.live import conference
from tests.support.common import PUBLIC_URL, sign
from tests.support.flow import Flow, join_queue, leg_ended, leg_of, offers
from tests.support.hotline_api import assert_stats_match_records, records
from tests.support.people import add_members, add_people, script
from tests.support.softphone import call_state, control, settled, softphone_flow, talking, told


@pytest.fixture
def flow(services: Any, tmp_path: Path) -> Iterator[Flow]:
    with softphone_flow(services, tmp_path) as f:
        yield f


def ann_talking_bob_available(flow: Flow, services: Any) -> Any:
    """A premium caller talking with ann (whose device answers), bob available (his too): the caller's handle."""
    add_people(services, ["ann", "bob"])
    phones = add_members(services, flow.config, {"premium": 1})
    for login in ("ann", "bob"):
        flow.sim.add_agent(login, answer_after=2, talk_seconds=None)
    caller = join_queue(flow.sim, phones["premium"][0], script("premium"))
    flow.api.status("ann", "available")
    talking(flow, caller, "client:ann")
    flow.api.status("bob", "available")
    return caller


def test_a_cold_transfer_reaches_the_second_agent_who_sees_who_passed_it_on(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    caller = ann_talking_bob_available(flow, services)
    mark = len(sim.events.all())
    after = control(api, "ann", caller.sid, "transfer", {"to": "agent:bob", "mode": "cold"})
    assert after["status"] in ("on_call", "wrap_up")  # her leg is ending
    leg_ended(sim, "client:ann", after=mark)
    sim.events.wait("conference.join", timeout=15, after=mark, endpoint="client:bob")  # the caller never left
    told(flow, caller.sid, "participant-unhold", after=mark)  # bob took the caller off hold, and the hotline knows
    bob = api.me("bob")["call"]
    assert (bob["state"], bob["call_sid"], bob["tier"], bob["agents"]) == ("connected", caller.sid, "premium",
                                                                          ["ann", "bob"])
    assert api.me("ann")["status"] == "wrap_up"
    whisper = sim.handle(leg_of(sim, "client:bob", after=mark)).result.said()
    assert flow.config.prompt("whisper_transfer", "zh").format(by="ann") in whisper
    control(api, "bob", caller.sid, "hangup")
    result = caller.join(30)
    assert result.talked_with() == ["client:ann", "client:bob"]
    rec = settled(flow, services, caller.sid)
    assert (rec.outcome, rec.agents, rec.transfers, rec.hold_count) == ("answered", "ann,bob", 1, 1)
    with services.sessions() as db:
        moves = [(t.n, t.from_agent, t.to_target, t.mode, t.result) for t in handling.transfers_of(db, caller.sid)]
    assert moves == [(1, "ann", "bob", "cold", "completed")]


def test_a_transfer_back_to_the_queue_keeps_the_callers_score(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann", "bob"])
    phones = add_members(services, flow.config, {"standard": 2})
    sim.add_agent("ann", answer_after=2, talk_seconds=None)
    sim.add_agent("bob", answer_after=2, talk_seconds=None)
    first = join_queue(sim, phones["standard"][0], script("standard"))
    api.status("ann", "available")
    talking(flow, first, "client:ann")
    flow.clock.advance(60)
    later = join_queue(sim, phones["standard"][1], script("standard"))  # a worse score: called a minute later
    mark = len(sim.events.all())
    assert control(api, "ann", first.sid, "transfer", {"to": "queue"})["status"] == "wrap_up"
    sim.events.wait("queue.joined", timeout=15, after=mark, call_sid=first.sid)  # holding again
    assert flow.config.prompt("transfer_queue", "zh") in first.result.said()
    assert [row["call_sid"] for row in api.queue()] == [first.sid, later.sid]  # ahead of the later caller
    api.status("bob", "available")
    talking(flow, first, "client:bob", after=mark)
    assert offers(sim) == [(first.sid, "ann"), (first.sid, "bob")]  # bob was offered the first caller first
    bob = api.me("bob")["call"]
    assert (bob["transferred_by"], bob["category"], bob["verified"]) == ("ann", records(services)[first.sid].category,
                                                                         True)
    control(api, "bob", first.sid, "hangup")
    first.join(30)
    later.hangup()
    later.join(15)
    rec = settled(flow, services, first.sid)
    assert (rec.outcome, rec.agents, rec.transfers) == ("answered", "ann,bob", 1)
    assert assert_stats_match_records(api, services, flow.config)["overall"]["answered"] == 1  # counted once



def test_a_warm_transfer_completed_and_one_cancelled(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann", "bob", "cy"])
    phones = add_members(services, flow.config, {"premium": 2})
    for login in ("ann", "cy"):
        sim.add_agent(login, answer_after=2, talk_seconds=None)
    sim.add_agent("bob", behaviour="manual", talk_seconds=None)
    first = join_queue(sim, phones["premium"][0], script("premium"))
    api.status("ann", "available")
    talking(flow, first, "client:ann")
    api.status("bob", "available")
    control(api, "ann", first.sid, "transfer", {"to": "agent:bob", "mode": "warm"})
    leg_of(sim, "client:bob")
    assert call_state(api, "bob") == "ringing" and api.me("bob")["call"]["role"] == "target"
    code, refused = api.call("POST", f"/api/calls/{first.sid}/transfer/complete", "ann")
    assert (code, refused["reason"]) == (409, "not_consulting")  # bob has not answered yet
    assert sim.device("bob").accept() is not None
    told(flow, sim.events.wait("conference.join", timeout=15, endpoint="client:bob").call_sid)  # bob is in
    assert call_state(api, "ann") == "consulting" and call_state(api, "bob") == "consulting"
    assert control(api, "ann", first.sid, "transfer/complete")["status"] == "wrap_up"
    told(flow, first.sid, "participant-unhold")  # bob has the caller, off hold
    assert call_state(api, "bob") == "connected"
    control(api, "bob", first.sid, "hangup")
    assert first.join(30).talked_with()[:2] == ["client:ann", "client:bob"]

    second = join_queue(sim, phones["premium"][1], script("premium"))
    api.status("cy", "available")
    talking(flow, second, "client:cy")
    api.status("ann", "available")  # ends her wrap-up
    mark = len(sim.events.all())
    control(api, "cy", second.sid, "transfer", {"to": "agent:ann", "mode": "warm"})
    sim.events.wait("conference.join", timeout=15, after=mark, endpoint="client:ann")
    after = control(api, "cy", second.sid, "transfer/cancel")
    assert (after["call"]["state"], after["call"]["transfer"]) == ("held", None)  # still hers, on hold
    sim.events.wait("conference.leave", timeout=15, after=mark, endpoint="client:ann")
    assert control(api, "cy", second.sid, "hold", {"hold": False})["call"]["state"] == "connected"
    control(api, "cy", second.sid, "hangup")
    second.join(30)
    for sid, agents in ((first.sid, "ann,bob"), (second.sid, "cy")):
        rec = settled(flow, services, sid)
        assert (rec.outcome, rec.agents, rec.transfers) == ("answered", agents, 1)
    with services.sessions() as db:
        assert [(t.mode, t.result) for t in handling.transfers_of(db, first.sid)] == [("warm", "completed")]
        assert [(t.mode, t.result) for t in handling.transfers_of(db, second.sid)] == [("warm", "cancelled")]
    assert api.me("ann")["status"] == "available"  # the cancelled target is free again



def test_conference_callbacks_replayed_out_of_order_change_nothing(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    add_people(services, ["ann"])
    phones = add_members(services, flow.config, {"standard": 1})
    sim.add_agent("ann", answer_after=2, talk_seconds=None)
    caller = join_queue(sim, phones["standard"][0], script("standard"))
    api.status("ann", "available")
    talking(flow, caller, "client:ann")
    for on in (True, False, True, False):
        mark = sim.events.last_seq()
        control(api, "ann", caller.sid, "hold", {"hold": on})
        sim.events.wait("conference.hold" if on else "conference.unhold", timeout=15, after=mark, call_sid=caller.sid)
    control(api, "ann", caller.sid, "hangup")
    caller.join(30)
    rec = settled(flow, services, caller.sid)
    before = (rec.outcome, rec.agents, rec.hold_count, rec.hold_s, api.me("ann")["status"])
    assert before[:3] == ("answered", "ann", 2)
    callbacks = caller.result.requests_of("conference-status")
    assert {r.params["StatusCallbackEvent"] for r in callbacks} >= {"participant-join", "participant-hold",
                                                                    "participant-unhold", "participant-leave"}
    client = flow.app.test_client()
    for req in reversed(callbacks):  # every callback again, newest first
        url = req.url if req.url.startswith(PUBLIC_URL) else PUBLIC_URL + req.url
        path = url.removeprefix(PUBLIC_URL)
        resp = client.post(path, data=req.params, headers={"X-Twilio-Signature": sign(url, req.params)})
        assert resp.status_code == 200, (path, resp.status_code)
    rec = records(services)[caller.sid]
    assert (rec.outcome, rec.agents, rec.hold_count, rec.hold_s, api.me("ann")["status"]) == before
    assert conference.hold_totals(services.redis, caller.sid, 0)[0] == 2


def test_the_first_agent_hanging_up_during_a_consultation_hands_the_caller_over(flow: Flow, services: Any) -> None:
    sim, api = flow.sim, flow.api
    caller = ann_talking_bob_available(flow, services)
    control(api, "ann", caller.sid, "transfer", {"to": "agent:bob", "mode": "warm"})
    told(flow, sim.events.wait("conference.join", timeout=15, endpoint="client:bob").call_sid)  # bob is in
    assert call_state(api, "ann") == "consulting"
    assert control(api, "ann", caller.sid, "hangup")["status"] == "wrap_up"  # ann leaves: bob has the caller
    told(flow, caller.sid, "participant-unhold")
    assert call_state(api, "bob") == "connected"
    control(api, "bob", caller.sid, "hangup")
    assert caller.join(30).talked_with()[:2] == ["client:ann", "client:bob"]
    rec = settled(flow, services, caller.sid)
    assert (rec.outcome, rec.agents, rec.transfers) == ("answered", "ann,bob", 1)
    with services.sessions() as db:
        assert [(t.mode, t.result) for t in handling.transfers_of(db, caller.sid)] == [("warm", "completed")]
