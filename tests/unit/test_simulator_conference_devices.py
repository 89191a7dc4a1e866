"""Agents' devices in the simulator: Calls.create to client:<identity> answered, busy, unanswered or decided by a
person ("manual": accept, decline), a device staying its talk time in a conference, and the control API's levers."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from simulator import NotSimulated, Script
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.twiml_app import CALLER, HOTLINE, TwimlApp, conference, doc, rest_client

SCALE = 0.01  # a manual device rings Timeout x SCALE real seconds
ROOM = "hl-CA0003"


@pytest.fixture
def hotline() -> TwimlApp:
    return TwimlApp({
        "/voice/agent": doc("<Say>member calling</Say>", conference(ROOM, beep="false", participantLabel="agent")),
        "/voice/incoming": doc(conference(ROOM, startConferenceOnEnter="false", endConferenceOnExit="true")),
        "/voice/agent-status": doc(),
        "/voice/dial-ann": doc("<Dial><Client>ann</Client></Dial>"),
    })


@pytest.fixture
def sim(hotline):
    with hotline.sim(scale=SCALE) as s:
        yield s


def ring(sim, identity: str, timeout: int = 600) -> str:
    """Calls.create to the Client, with every call-progress event; its CallSid."""
    return rest_client(sim).calls.create(
        to=f"client:{identity}", from_=HOTLINE, url=PUBLIC_URL + "/voice/agent", timeout=timeout,
        status_callback=PUBLIC_URL + "/voice/agent-status",
        status_callback_event=["initiated", "ringing", "answered", "completed"]).sid


def control(sim, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A request to the simulator's control API (/_sim), with the REST API's credentials."""
    data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
    req = urllib.request.Request(sim.api_url + "/_sim" + path, method=method, data=data)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{sim.account_sid}:{AUTH_TOKEN}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def progress(hotline: TwimlApp, sid: str) -> list[str]:
    return [h.params["CallStatus"] for h in hotline.to("/voice/agent-status") if h.params["CallSid"] == sid]


def test_an_answering_device_runs_the_url_and_stays_its_talk_time_in_the_conference(sim, hotline):
    sim.add_agent("ann", answer_after=3, talk_seconds=45)
    caller = sim.start_call(CALLER, Script(hangup_after_talk_seconds=600))
    sim.events.wait("conference.join", call_sid=caller.sid)
    sid = ring(sim, "ann")
    agent = sim.handle(sid).join()
    caller.hangup()
    caller.join()
    visit = agent.conferences[0]
    assert agent.said() == ["member calling"] and agent.direction == "outbound-api" and agent.to == "client:ann"
    assert visit.left_at - visit.joined_at == pytest.approx(45, abs=1) and visit.reason_left == "participant_hung_up"
    assert progress(hotline, sid) == ["initiated", "ringing", "in-progress", "completed"]
    assert [e.kind for e in sim.events.all(call_sid=sid) if e.kind.startswith("device.")] == [
        "device.ringing", "device.answered", "device.ended"]
    assert sim.events.wait("device.ended", call_sid=sid).data == {
        "identity": "ann", "endpoint": "client:ann", "status": "completed"}


@pytest.mark.parametrize("behaviour, final", [("no-answer", "no-answer"), ("busy", "busy"), ("failed", "failed")])
def test_unanswering_devices(sim, hotline, behaviour, final):
    sim.add_agent("ann", behaviour=behaviour)
    sid = ring(sim, "ann", timeout=20)
    result = sim.handle(sid).join()
    assert result.status == final and result.said() == [] and progress(hotline, sid)[-1] == final
    assert sim.events.wait("device.ended", call_sid=sid).data["status"] == final


def test_a_manual_device_rings_until_the_person_decides(sim, hotline):
    sim.add_agent("ann", behaviour="manual")
    ann = sim.device("ann")
    assert ann.ringing() is None and ann.accept() is None and ann.hangup() is None
    first = ring(sim, "ann")
    sim.events.wait("device.ringing", call_sid=first)
    assert ann.ringing() == first and ann.decline() == first
    assert sim.handle(first).join().status == "busy"  # a rejected Voice SDK call ends busy
    assert sim.events.wait("device.declined", call_sid=first).data["identity"] == "ann"
    second = ring(sim, "ann")
    sim.events.wait("device.ringing", call_sid=second)
    assert ann.accept() == second
    sim.events.wait("conference.join", call_sid=second)
    assert ann.hangup() == second
    result = sim.handle(second).join()
    assert result.status == "completed" and result.said() == ["member calling"]
    assert progress(hotline, second) == ["initiated", "ringing", "in-progress", "completed"]
    unanswered = ring(sim, "ann", timeout=5)  # nobody decides within the Timeout
    assert sim.handle(unanswered).join().status == "no-answer"


def test_a_manual_device_cannot_be_dialled_by_dial_client(hotline):
    with hotline.sim() as sim:
        sim.add_agent("ann", behaviour="manual")
        hotline.routes["/voice/incoming"] = hotline.routes["/voice/dial-ann"]
        with pytest.raises(NotSimulated, match="manual"):
            sim.place_call(CALLER)


def test_control_api_levers_and_the_agent_event_stream(sim):
    status, body = control(sim, "PUT", "/agents/ann", {"behaviour": "manual", "talk_seconds": None})
    assert status == 200 and body["behaviour"] == "manual"
    start = body["seq"]
    for lever in ("accept", "decline", "hangup"):
        assert control(sim, "POST", f"/agents/ann/{lever}")[0] == 404  # nothing rings, no call
    assert control(sim, "POST", "/agents/ann/wave")[0] == 404
    first = ring(sim, "ann")
    sim.events.wait("device.ringing", call_sid=first)
    assert control(sim, "POST", "/agents/ann/decline") == (200, {"identity": "ann", "call_sid": first,
                                                                 "lever": "decline"})
    assert sim.handle(first).join().status == "busy"
    second = ring(sim, "ann")
    sim.events.wait("device.ringing", call_sid=second)
    assert control(sim, "POST", "/agents/ann/accept")[1]["call_sid"] == second
    sim.events.wait("conference.join", call_sid=second)
    assert control(sim, "POST", "/agents/ann/hangup")[1]["call_sid"] == second
    sim.handle(second).join()
    status, stream = control(sim, "GET", f"/agents/ann/events?after={start}&wait=0")
    kinds = [(e["kind"], e["call_sid"]) for e in stream["events"]]
    assert kinds == [
        ("device.ringing", first), ("device.declined", first), ("device.ended", first),
        ("device.ringing", second), ("device.answered", second), ("conference.join", second),
        ("conference.leave", second), ("conference.end", second), ("device.ended", second),  # ann was alone
    ]
    leave = stream["events"][6]
    assert leave["conference"] == ROOM and leave["label"] == "agent" and leave["reason"] == "participant_hung_up"
    assert control(sim, "PUT", "/agents/ann", {"behaviour": "sleepy"})[0] == 400


def test_a_phone_is_a_device_too(sim, hotline):
    number = "+8613900000009"
    sim.add_phone(number, behaviour="manual")
    sid = rest_client(sim).calls.create(to=number, from_=HOTLINE, url=PUBLIC_URL + "/voice/agent", timeout=600).sid
    ringing = sim.events.wait("device.ringing", call_sid=sid)
    assert ringing.data["identity"] == number and sim.device(number).accept() == sid
    sim.events.wait("conference.join", call_sid=sid, endpoint=number)
    assert sim.device(number).hangup() == sid and sim.handle(sid).join().status == "completed"
