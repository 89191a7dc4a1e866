"""The simulator's control API that `hotline call` and `hotline agent` drive, in-process: the simulator's fast time,
the hotline as a Flask app, or fixed TwiML for the conference a device joins (the same terminals against a real
`hotline run`: test_cli_phone.py)."""
from __future__ import annotations

import pytest

from callqueue import records
from simulator import Simulator, softphone
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN
from tests.support.twiml_app import CALLER, HOTLINE, TwimlApp, conference, doc, rest_client
from tools.phone.client import HttpError, SimulatorClient
from tools.phone.transcript import CallTranscript


def test_remote_answers_queue_up_a_silent_item_times_out_and_the_remote_hang_up_reaches_the_hotline(
    app, services, members
):
    with Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN) as sim:
        client = SimulatorClient(sim.api_url, sim.account_sid, AUTH_TOKEN, "the simulator")
        answers = [{"silence": True}, {"digits": PREMIUM_PIN + "#"}, {"digits": "0"}]  # all sent before the call starts
        sid = client.place_call(PREMIUM_PHONE, None, None, answers)["sid"]
        sim.events.wait("queue.joined", call_sid=sid)
        client.hang_up(sid)
        result = sim.handle(sid).join()
        events, last = client.call_events(sid, 0, wait=0)
    pin_prompt, retry = services.config.prompt("pin_prompt", "zh"), services.config.prompt("retry_no_input", "zh")
    said = result.said()
    assert said.count(pin_prompt) == 2 and said.index(retry) > said.index(
        pin_prompt
    )  # the silent item: no input, asked again
    inputs = [
        {k: v for k, v in e.items() if k in ("digits", "silence")}
        for e in events
        if e["kind"] == "input" and e["party"] == "main"
    ]
    assert inputs == [{"silence": True}, {"digits": PREMIUM_PIN + "#"}, {"digits": "0"}]
    assert events[-1]["kind"] == "call.ended" and events[-1]["status"] == "completed" and last >= events[-1]["seq"]
    assert [q["QueueResult"] for q in result.queue_results] == ["hangup"]
    assert result.requests_of("status")[-1].params["CallStatus"] == "completed"  # the hotline heard the hang-up
    db = services.sessions()
    try:
        assert records.get(db, sid).outcome == "short_abandoned"  # a few real milliseconds in the queue
    finally:
        db.close()


def test_the_control_api_answers_404_for_unknown_calls_and_400_for_bad_answers(app, services):
    with Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN) as sim:
        client = SimulatorClient(sim.api_url, sim.account_sid, AUTH_TOKEN, "the simulator")
        with pytest.raises(HttpError) as unknown:
            client.send("CA" + "f" * 32, {"digits": "1"})
        with pytest.raises(HttpError) as bad:
            client.place_call("+8613800000009", None, None, [{"digits": "12x"}])
        with pytest.raises(HttpError) as bad_agent:
            client.register_agent("no spaces!", 1, 2)
        assert (unknown.value.status, bad.value.status, bad_agent.value.status) == (404, 400, 400)
        assert "answers: digits" in str(bad.value)
        assert client.register_agent("nora", 0.5, 7)["endpoint"] == "client:nora"
        assert sim.net.endpoints.get("client:nora").talk_seconds == 7.0
        assert sim.rest_requests() == []  # the control API is not what the hotline asked Twilio


def test_a_remote_call_whose_client_stops_polling_is_hung_up_like_a_dropped_line(app, services, members, monkeypatch):
    monkeypatch.setattr(softphone, "DROPPED_AFTER_S", 0.5)
    monkeypatch.setattr(softphone, "WATCH_EVERY_S", 0.05)
    with Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN) as sim:
        client = SimulatorClient(sim.api_url, sim.account_sid, AUTH_TOKEN, "the simulator")
        sid = client.place_call(PREMIUM_PHONE, None, None, [{"digits": PREMIUM_PIN + "#"}, {"digits": "0"}])["sid"]
        sim.events.wait("queue.joined", call_sid=sid)  # nobody polls from here on; no agent will ever come
        result = sim.handle(sid).join(timeout=10)
    assert [q["QueueResult"] for q in result.queue_results] == ["hangup"] and result.status == "completed"


def test_a_manual_device_rings_until_the_terminal_accepts_and_both_terminals_see_whom_their_call_meets():
    room = "hl-CA0042"
    hotline = TwimlApp({  # the hotline's two legs, as it sends them: the agent's whisper then the conference
        "/voice/agent": doc("<Say>member calling</Say>", conference(room, beep="false", participantLabel="agent",
                                                                   endConferenceOnExit="true")),
        "/voice/incoming": doc(conference(room, startConferenceOnEnter="false", endConferenceOnExit="true",
                                          participantLabel="caller", waitUrl=""), "<Say>goodbye</Say>"),
    })
    with hotline.sim(scale=0.01) as sim:
        client = SimulatorClient(sim.api_url, sim.account_sid, AUTH_TOKEN, "the simulator")
        after = client.register_agent("nora", 0, None, behaviour="manual")["seq"]
        assert client.device("nora", "accept") is None and client.device("nora", "hangup") is None  # nothing yet
        caller = client.place_call(CALLER, None, None, [])["sid"]
        sim.events.wait("conference.join", call_sid=caller)
        leg = rest_client(sim).calls.create(to="client:nora", from_=HOTLINE, url=PUBLIC_URL + "/voice/agent",
                                            timeout=600).sid
        seen = []
        while not any(e["kind"] == "device.ringing" for e in seen):
            events, after = client.agent_events("nora", after, wait=5)
            seen += events
        assert client.device("nora", "accept") == leg
        while not any(e["kind"] == "met" for e in seen):
            events, after = client.agent_events("nora", after, wait=5)
            seen += events
        assert client.device("nora", "hangup") == leg  # the agent leaves: the conference ends, the caller hears goodbye
        sim.handle(caller).join()
        events, _ = client.call_events(caller, 0, wait=0)
    kinds = [e["kind"] for e in seen if e["kind"] != "rest"]
    assert kinds[:3] == ["device.ringing", "device.answered", "conference.join"] and kinds[-1] == "met"
    met = seen[-1]
    assert (met["call_sid"], met["endpoint"], met["met"], met["met_label"]) == (leg, "client:nora", CALLER, "caller")
    transcript = CallTranscript(interactive=False)
    lines = [line for line in map(transcript.line, events) if line]
    assert lines[lines.index("[connected to nora (client:nora)]"):] == [
        "[connected to nora (client:nora)]", "[nora has left the call]", "hotline: goodbye", "[call ended: completed]"]
    assert transcript.summary() == "[agents reached: nora]"
