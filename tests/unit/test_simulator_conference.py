"""<Dial><Conference> in the simulator: waiting then starting, status callbacks in order, endConferenceOnExit, the
<Dial>'s action (or the next verb), labels, time limits and what Twilio refuses."""
from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from simulator import Script, SimulationError, TwimlRejected
from tests.support.common import PUBLIC_URL
from tests.support.twiml_app import CALLER, CONFERENCE_EVENTS, HOTLINE, TwimlApp, conference, doc, rest_client

ROOM = "hl-CA0001"
SCALE = 0.01  # where a manual device rings: real seconds per simulated second


def caller_room(dial: str = ' action="/voice/after"', **extra: str) -> str:
    """The caller's side: waits (startConferenceOnEnter false), ends the conference when it leaves."""
    attrs = {"startConferenceOnEnter": "false", "endConferenceOnExit": "true", "beep": "false",
             "waitUrl": "/voice/wait", "participantLabel": "caller", "statusCallback": "/voice/conf",
             "statusCallbackEvent": CONFERENCE_EVENTS, **extra}
    return conference(ROOM, dial=dial, **attrs)


def agent_room(end: str = "false") -> str:
    """The agent's side: starts the conference, leaves it running (or ends it) when it leaves."""
    return conference(ROOM, startConferenceOnEnter="true", endConferenceOnExit=end, beep="false",
                      participantLabel="agent", statusCallback="/voice/conf", statusCallbackEvent=CONFERENCE_EVENTS)


def conference_app(incoming: str | None = None, agent_end: str = "false") -> TwimlApp:
    """A hotline that puts the caller in a conference and, over REST, an agent after a whisper."""
    return TwimlApp({
        "/voice/incoming": incoming or doc(caller_room()),
        "/voice/wait": doc("<Say>Please hold for an agent</Say>", '<Pause length="5"/>'),
        "/voice/after": lambda p: doc(f"<Say>after {p['DialCallStatus']}</Say>"),
        "/voice/agent": doc("<Say>member calling</Say>", agent_room(agent_end)),
        "/voice/conf": doc(),
    })


def ring_agent(sim, identity: str = "ann") -> str:
    """Calls.create to the agent's Client (behaviour manual), answered by the test; the agent's CallSid. (A manual
    device rings Timeout x scale real seconds: 600 x 0.01 s is time enough to answer.)"""
    sid = rest_client(sim).calls.create(to=f"client:{identity}", from_=HOTLINE, url=PUBLIC_URL + "/voice/agent",
                                        timeout=600).sid
    sim.events.wait("device.ringing", identity=identity, call_sid=sid)
    assert sim.device(identity).accept() == sid
    return sid


def test_caller_waits_hearing_the_wait_url_then_talks_with_the_agent_who_starts_the_conference():
    hotline = conference_app()
    with hotline.sim(scale=SCALE) as sim:
        sim.add_agent("ann", behaviour="manual")
        handle = sim.start_call(CALLER, Script(hangup_after_talk_seconds=30))
        sim.events.wait("heard", call_sid=handle.sid, party="conference-wait", text="Please hold for an agent")
        sim.events.wait("heard", call_sid=handle.sid, party="conference-wait", verb="pause")  # then silence
        assert sim.conference(ROOM).status == "init" and [p.label for p in sim.conference(ROOM).joined()] == ["caller"]
        agent_sid = ring_agent(sim)
        started = sim.events.wait("conference.start", conference=ROOM)
        result, agent = handle.join(), sim.handle(agent_sid).join()

    assert started.call_sid == agent_sid and started.data["label"] == "agent"
    assert [(h.party, h.verb) for h in result.transcript] == [("conference-wait", "say"), ("conference-wait", "pause")]
    assert result.talked_with() == ["client:ann"] and result.conferences[0].met_labels == ["agent"]
    assert result.conferences[0].reason_left == "participant_hung_up" and result.status == "completed"
    assert agent.said() == ["member calling"] and agent.transcript[0].party == "main"  # the whisper: the agent's alone
    assert agent.talked_with() == [CALLER] and agent.conferences[0].reason_left == "moderator_ended_conference"
    assert agent.status == "completed"  # its <Dial> completed and the agent's TwiML had nothing more
    conf = sim.conference(ROOM)
    assert conf.status == "completed" and conf.reason_ended == "participant-with-end-conference-on-exit-left"
    assert conf.call_sid_ending == result.sid and conf.label_ending == "caller"


def test_status_callbacks_are_signed_in_order_with_twilio_parameters():
    hotline = conference_app()
    with hotline.sim(scale=SCALE) as sim:
        sim.add_agent("ann", behaviour="manual")
        handle = sim.start_call(CALLER, Script(hangup_after_talk_seconds=30))
        sim.events.wait("conference.join", call_sid=handle.sid)
        agent_sid = ring_agent(sim)
        result, agent = handle.join(), sim.handle(agent_sid).join()
    conf = sim.conference(ROOM)
    sent = [h.params for h in hotline.to("/voice/conf")]
    assert all(h.signed for h in hotline.to("/voice/conf")) and sent == [r.params for r in conf.requests]
    assert [(p["StatusCallbackEvent"], p.get("ParticipantLabel")) for p in sent] == [
        ("participant-join", "caller"), ("participant-join", "agent"), ("conference-start", None),
        ("participant-leave", "caller"), ("participant-leave", "agent"), ("conference-end", None),
    ]
    assert [p["SequenceNumber"] for p in sent] == ["1", "2", "3", "4", "5", "6"]
    for p in sent:
        assert (p["AccountSid"], p["ConferenceSid"], p["FriendlyName"]) == (sim.account_sid, conf.sid, ROOM)
        assert parsedate_to_datetime(p["Timestamp"]).tzinfo is not None
    caller_join, agent_join, start, caller_leave, agent_leave, end = sent
    assert caller_join == {**caller_join, "CallSid": result.sid, "Muted": "false", "Hold": "false", "Coaching": "false",
                           "EndConferenceOnExit": "true", "StartConferenceOnEnter": "false"}
    assert agent_join["CallSid"] == agent_sid and agent_join["StartConferenceOnEnter"] == "true"
    assert "CallSid" not in start and "CallSid" not in end
    assert (caller_leave["ParticipantCallStatus"], caller_leave["ReasonParticipantLeft"]) == (
        "completed", "participant_hung_up")
    assert (agent_leave["ParticipantCallStatus"], agent_leave["ReasonParticipantLeft"]) == (
        "in-progress", "moderator_ended_conference")
    assert (end["ReasonConferenceEnded"], end["CallSidEndingConference"], end["ParticipantLabelEndingConference"]) == (
        "participant-with-end-conference-on-exit-left", result.sid, "caller")
    # Each call's result holds its own participant's callbacks and the conference's.
    assert [r.params["StatusCallbackEvent"] for r in result.requests_of("conference-status")] == [
        "participant-join", "conference-start", "participant-leave", "conference-end"]
    assert [r.params["StatusCallbackEvent"] for r in agent.requests_of("conference-status")] == [
        "participant-join", "conference-start", "participant-leave", "conference-end"]


def test_only_selected_events_are_sent_and_the_first_participant_sets_them():
    incoming = doc(caller_room(statusCallbackEvent="start end"))
    hotline = conference_app(incoming)
    with hotline.sim(scale=SCALE) as sim:
        sim.add_agent("ann", behaviour="manual")
        handle = sim.start_call(CALLER, Script(hangup_after_talk_seconds=5))
        sim.events.wait("conference.join", call_sid=handle.sid)
        ring_agent(sim)  # the agent asks for every event: ignored, the caller was first
        handle.join()
    sent = [h.params["StatusCallbackEvent"] for h in hotline.to("/voice/conf")]
    assert sent == ["conference-start", "conference-end"]


def test_an_agent_ending_the_conference_sends_the_caller_to_the_dial_action():
    hotline = conference_app(agent_end="true")
    with hotline.sim(scale=SCALE) as sim:
        sim.add_agent("ann", behaviour="manual")
        handle = sim.start_call(CALLER)
        sim.events.wait("conference.join", call_sid=handle.sid)
        agent_sid = ring_agent(sim)
        sim.events.wait("conference.start", conference=ROOM)
        assert sim.device("ann").hangup() == agent_sid
        result = handle.join()
    after = hotline.to("/voice/after")[0].params
    assert after["DialCallStatus"] == "answered" and after["DialBridged"] == "true" and after["CallSid"] == result.sid
    assert "DialCallSid" not in after and "DialCallDuration" not in after  # "not sent after dialing a conference"
    assert result.said() == ["Please hold for an agent", "after answered"] and result.status == "completed"
    assert result.conferences[0].reason_left == "moderator_ended_conference"
    assert sim.conference(ROOM).reason_ended == "participant-with-end-conference-on-exit-left"
    assert sim.conference(ROOM).call_sid_ending == agent_sid


def test_without_an_action_the_call_goes_on_with_the_next_verb():
    hotline = conference_app(doc(caller_room(dial=""), "<Say>next verb</Say>"))
    with hotline.sim() as sim:
        handle = sim.start_call(CALLER)
        joined = sim.events.wait("conference.join", call_sid=handle.sid)
        rest_client(sim).conferences(joined.data["conference_sid"]).update(status="completed")
        result = handle.join()
    assert result.said() == ["Please hold for an agent", "next verb"]
    assert result.conferences[0].reason_left == "conference_ended_via_api"
    conf = sim.conference(ROOM)
    assert conf.reason_ended == "conference-ended-via-api" and conf.call_sid_ending is None


def test_a_label_in_use_keeps_the_call_out_and_it_goes_on():
    hotline = conference_app(doc(caller_room(dial=""), "<Say>not added</Say>"))
    with hotline.sim() as sim:
        first = sim.start_call(CALLER)
        sim.events.wait("conference.join", call_sid=first.sid)
        second = sim.place_call("+8613800000002")  # same label "caller": 16025, on to the next verb
        refused = sim.events.wait("conference.refused", call_sid=second.sid)
        first.hangup()
        first.join()
    assert refused.data["code"] == 16025 and second.said() == ["not added"] and second.conferences == []


def test_time_limit_and_hangup_on_star_take_the_caller_out():
    hotline = conference_app(doc(caller_room(dial=' action="/voice/after" timeLimit="30"')))
    with hotline.sim() as sim:
        result = sim.place_call(CALLER)
    visit = result.conferences[0]
    assert visit.left_at - visit.joined_at == 30 and result.said()[-1] == "after answered"
    hotline = conference_app(doc(caller_room(dial=' action="/voice/after" hangupOnStar="true"')))
    with hotline.sim() as sim:
        handle = sim.start_call(CALLER)
        sim.events.wait("conference.join", call_sid=handle.sid)
        assert sim.net.conferences.press_star(handle.sid)
        assert handle.join().said()[-1] == "after answered"


def test_default_music_silence_and_what_a_wait_url_may_hold():
    hotline = conference_app(doc(caller_room(dial="", waitUrl="")))  # "" : nothing plays while waiting
    with hotline.sim() as sim:
        handle = sim.start_call(CALLER)
        sim.events.wait("conference.join", call_sid=handle.sid)
        handle.hangup()
        assert handle.join().transcript == [] and hotline.to("/voice/wait") == []
    incoming = doc(conference(ROOM, startConferenceOnEnter="false"))  # no waitUrl: Twilio's classical playlist
    with conference_app(incoming).sim() as sim:
        handle = sim.start_call(CALLER)
        heard = sim.events.wait("heard", call_sid=handle.sid, party="conference-wait")
        handle.hangup()
        handle.join()
    assert heard.data["text"] == "[default hold music]"
    hotline = conference_app()
    hotline.routes["/voice/wait"] = doc('<Gather numDigits="1"><Say>press 1</Say></Gather>')
    with pytest.raises(TwimlRejected, match="Gather"), hotline.sim() as sim:
        sim.place_call(CALLER)


@pytest.mark.parametrize("attrs, complaint", [
    ({"startConferenceOnEnter": "yes"}, "startConferenceOnEnter"),
    ({"beep": "loud"}, "beep"),
    ({"statusCallbackEvent": "start finish"}, "finish"),
    ({"participantLabel": "CA" + "a" * 32}, "participantLabel"),
    ({"maxParticipants": "251"}, "maxParticipants"),
])
def test_invalid_conference_attributes_fail_loudly(attrs, complaint):
    with pytest.raises(SimulationError, match=complaint), conference_app(doc(conference(ROOM, **attrs))).sim() as sim:
        sim.place_call(CALLER)
