"""The Conference and Participant resources of the simulator's REST API, driven by twilio-python: JSON shapes,
404s, hold with HoldUrl, mute, removal, a REST redirect out of a conference, Participants create (a warm
transfer), announcements and coaching."""
from __future__ import annotations

import json

import pytest
from twilio.base.exceptions import TwilioRestException

from simulator import Fault, Script
from tests.support.common import PUBLIC_URL, ROOT
from tests.support.twiml_app import CALLER, CONFERENCE_EVENTS, HOTLINE, TwimlApp, conference, doc, rest_client

ROOM = "hl-CA0002"
SCALE = 0.01
SPEC = ROOT / "tests/prism/node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json"
CONFERENCE_KEYS = {"account_sid", "date_created", "date_updated", "api_version", "friendly_name", "region", "sid",
                   "status", "uri", "subresource_uris", "reason_conference_ended", "call_sid_ending_conference"}
PARTICIPANT_KEYS = {"account_sid", "call_sid", "label", "call_sid_to_coach", "coaching", "conference_sid",
                    "date_created", "date_updated", "end_conference_on_exit", "muted", "hold",
                    "start_conference_on_enter", "status", "queue_time", "uri"}


def room(label: str, start: str, end: str, dial: str = "") -> str:
    return conference(ROOM, dial=dial, startConferenceOnEnter=start, endConferenceOnExit=end, beep="false",
                      participantLabel=label, statusCallback="/voice/conf", statusCallbackEvent=CONFERENCE_EVENTS)


@pytest.fixture
def hotline() -> TwimlApp:
    return TwimlApp({
        "/voice/incoming": doc(room("caller", "false", "true", ' action="/voice/after"')),
        "/voice/after": lambda p: doc(f"<Say>after {p['DialCallStatus']}</Say>"),
        "/voice/agent": doc(room("agent", "true", "false")),
        "/voice/hold": doc("<Say>You are on hold</Say>", '<Pause length="60"/>'),
        "/voice/announce": doc("<Say>This call is recorded</Say>"),
        "/voice/elsewhere": doc("<Say>elsewhere</Say>"),
        "/voice/conf": doc(),
    })


@pytest.fixture
def sim(hotline):
    with hotline.sim(scale=SCALE) as s:
        s.add_agent("ann", answer_after=1, talk_seconds=None)  # stays until something ends the call
        s.add_agent("bob", answer_after=1, talk_seconds=None)
        yield s


def talking(sim, caller_script: Script | None = None):
    """A caller and ann in the conference, talking; the caller's handle, ann's CallSid, the conference sid."""
    handle = sim.start_call(CALLER, caller_script)
    sim.events.wait("conference.join", call_sid=handle.sid)
    agent = rest_client(sim).calls.create(to="client:ann", from_=HOTLINE, url=PUBLIC_URL + "/voice/agent").sid
    started = sim.events.wait("conference.start", conference=ROOM)
    return handle, agent, started.data["conference_sid"]


def raw(sim, path: str) -> dict:
    """A resource as JSON, fetched with the REST API's credentials."""
    client = rest_client(sim)
    return json.loads(client.request("GET", sim.api_url + path).text)


def keys_of(schema: str, fallback: set[str]) -> set[str]:
    """The properties Twilio's OpenAPI description gives a resource (when the npm package is installed)."""
    if not SPEC.is_file():
        return fallback
    return set(json.loads(SPEC.read_text())["components"]["schemas"][schema]["properties"])


def test_json_shapes_lists_filters_and_404s(sim):
    handle, agent, cf = talking(sim)
    base = f"/2010-04-01/Accounts/{sim.account_sid}/Conferences"
    conf = raw(sim, f"{base}/{cf}.json")
    assert set(conf) == keys_of("api.v2010.account.conference", CONFERENCE_KEYS) == CONFERENCE_KEYS
    assert (conf["sid"], conf["friendly_name"], conf["status"], conf["reason_conference_ended"]) == (
        cf, ROOM, "in-progress", None)
    assert conf["subresource_uris"]["participants"] == f"{base}/{cf}/Participants.json"
    parts = raw(sim, f"{base}/{cf}/Participants.json")
    assert [p["label"] for p in parts["participants"]] == ["caller", "agent"] and parts["page_size"] == 50
    caller = parts["participants"][0]
    assert set(caller) == keys_of("api.v2010.account.conference.participant", PARTICIPANT_KEYS) == PARTICIPANT_KEYS
    assert caller == {**caller, "call_sid": handle.sid, "conference_sid": cf, "status": "connected", "muted": False,
                      "hold": False, "end_conference_on_exit": True, "start_conference_on_enter": False,
                      "coaching": False, "call_sid_to_coach": None, "queue_time": None}
    client = rest_client(sim)
    assert client.conferences(cf).participants("agent").fetch().call_sid == agent
    assert [c.sid for c in client.conferences.list(friendly_name=ROOM, status="in-progress")] == [cf]
    assert client.conferences.list(status="completed") == []
    for missing in (lambda: client.conferences("CF" + "0" * 32).fetch(),
                    lambda: client.conferences(cf).participants("nobody").fetch(),
                    lambda: client.conferences("CF" + "0" * 32).participants.create(from_=HOTLINE, to="client:bob")):
        with pytest.raises(TwilioRestException) as info:
            missing()
        assert (info.value.status, info.value.code) == (404, 20404)
    client.conferences(cf).update(status="completed")
    handle.join()
    assert client.conferences(cf).fetch().reason_conference_ended == "conference-ended-via-api"
    with pytest.raises(TwilioRestException) as gone:
        client.conferences(cf).participants(handle.sid).fetch()  # only participants of a live conference are listed
    assert gone.value.status == 404


def test_hold_with_hold_url_then_unhold_and_mute(sim, hotline):
    handle, _, cf = talking(sim, Script(hangup_after_talk_seconds=600))
    caller = rest_client(sim).conferences(cf).participants("caller")
    held = caller.update(hold=True, hold_url=PUBLIC_URL + "/voice/hold", hold_method="POST")
    assert held.hold is True
    sim.events.wait("heard", call_sid=handle.sid, party="hold", text="You are on hold")
    assert caller.update(hold=False).hold is False
    assert caller.update(muted=True).muted is True
    assert [p.call_sid for p in rest_client(sim).conferences(cf).participants.list(muted=True)] == [handle.sid]
    caller.update(muted=False)
    with pytest.raises(TwilioRestException) as get:  # Twilio would GET a HoldUrl: the simulator says so
        caller.update(hold=True, hold_url=PUBLIC_URL + "/voice/hold")
    assert get.value.status == 400 and "HoldMethod=POST" in str(get.value)
    sim.failures.clear()
    handle.hangup()
    result = handle.join()
    assert [(h.party, h.text) for h in result.transcript][:2] == [
        ("conference-wait", "[default hold music]"), ("hold", "You are on hold")]  # unheld during the <Say>
    assert hotline.to("/voice/hold")[0].params["CallSid"] == handle.sid
    sent = [h.params for h in hotline.to("/voice/conf")]
    events = [p["StatusCallbackEvent"] for p in sent if p.get("CallSid") == handle.sid]
    assert events == ["participant-join", "participant-hold", "participant-unhold", "participant-mute",
                      "participant-unmute", "participant-leave"]
    assert [e.kind for e in sim.events.all() if e.call_sid == handle.sid and e.kind.startswith("conference.")][1:5] == [
        "conference.hold", "conference.unhold", "conference.mute", "conference.unmute"]


def test_removing_the_caller_sends_it_to_the_action_and_ends_the_conference(sim, hotline):
    handle, agent, cf = talking(sim)
    rest_client(sim).conferences(cf).participants(handle.sid).delete()
    result = handle.join()
    assert result.said() == ["after answered"] and result.conferences[0].reason_left == "participant_updated_via_api"
    assert sim.handle(agent).join().conferences[0].reason_left == "moderator_ended_conference"
    leave = next(h.params for h in hotline.to("/voice/conf") if h.params["StatusCallbackEvent"] == "participant-leave")
    assert (leave["CallSid"], leave["ReasonParticipantLeft"]) == (handle.sid, "participant_updated_via_api")
    assert sim.conference(cf).reason_ended == "participant-with-end-conference-on-exit-kicked"


def test_a_rest_redirect_takes_the_caller_out_of_the_conference(sim, hotline):
    handle, _, cf = talking(sim)
    rest_client(sim).calls(handle.sid).update(url=PUBLIC_URL + "/voice/elsewhere", method="POST")
    result = handle.join()
    assert result.said() == ["elsewhere"]  # the <Dial> action is requested, its answer not followed
    assert hotline.to("/voice/after")[0].params["DialCallStatus"] == "answered"
    assert result.conferences[0].reason_left == "participant_updated_via_api"
    assert sim.conference(cf).status == "completed"  # the caller had endConferenceOnExit


def test_participants_create_dials_a_device_in_a_warm_transfer(sim, hotline):
    handle, agent, cf = talking(sim, Script(hangup_after_talk_seconds=600))
    client = rest_client(sim)
    created = client.conferences(ROOM).participants.create(  # by FriendlyName, as the hotline may
        from_=HOTLINE, to="client:bob", label="agent2", status_callback=PUBLIC_URL + "/voice/conf",
        status_callback_event=["initiated", "answered", "completed"], timeout=30)
    assert (created.label, created.status, created.conference_sid, created.queue_time) == ("agent2", "queued", cf, "0")
    sim.events.wait("conference.join", call_sid=created.call_sid)
    with pytest.raises(TwilioRestException) as taken:
        client.conferences(ROOM).participants.create(from_=HOTLINE, to="client:bob", label="caller")
    assert (taken.value.status, taken.value.code) == (400, 16026)
    client.conferences(cf).participants("agent").delete()  # ann leaves, bob stays with the caller
    sim.events.wait("conference.leave", call_sid=agent)
    handle.hangup()
    result, bob = handle.join(), sim.handle(created.call_sid).join()
    assert result.talked_with() == ["client:ann", "client:bob"]
    assert result.conferences[0].met_labels == ["agent", "agent2"]
    assert bob.direction == "outbound-api" and bob.conferences[0].label == "agent2"
    progress = [h.params["CallStatus"] for h in hotline.to("/voice/conf")
                if h.params.get("CallSid") == created.call_sid and "CallbackSource" in h.params]
    assert progress == ["initiated", "in-progress", "completed"]


def test_announcements_to_everyone_and_to_one(sim, hotline):
    handle, agent, cf = talking(sim, Script(hangup_after_talk_seconds=600))
    client = rest_client(sim)
    client.conferences(cf).update(announce_url=PUBLIC_URL + "/voice/announce")
    sim.events.wait("conference.announced", conference_sid=cf)
    client.conferences(cf).participants("caller").update(announce_url=PUBLIC_URL + "/voice/announce")
    sim.events.wait("conference.announced", call_sid=handle.sid)
    handle.hangup()
    result, ann = handle.join(), sim.handle(agent).join()
    assert [(h.party, h.text) for h in result.transcript][1:] == [("announce", "This call is recorded")] * 2
    assert [(h.party, h.text) for h in ann.transcript] == [("announce", "This call is recorded")]
    assert len(hotline.to("/voice/announce")) == 2  # fetched once per announcement, heard by each
    ends = [h.params for h in hotline.to("/voice/conf") if h.params["StatusCallbackEvent"] == "announcement-end"]
    assert [(p["AnnounceUrl"], p.get("CallSid")) for p in ends] == [
        (PUBLIC_URL + "/voice/announce", None), (PUBLIC_URL + "/voice/announce", handle.sid)]


def test_coaching_is_a_modify_and_a_coach_is_heard_by_the_coached_only(sim, hotline):
    handle, agent, cf = talking(sim, Script(hangup_after_talk_seconds=600))
    client = rest_client(sim)
    sup = client.conferences(cf).participants.create(from_=HOTLINE, to="client:bob", label="supervisor",
                                                      coaching=True, call_sid_to_coach=agent)
    sim.events.wait("conference.join", call_sid=sup.call_sid)
    fetched = client.conferences(cf).participants("supervisor").fetch()
    assert (fetched.coaching, fetched.call_sid_to_coach) == (True, agent)
    client.conferences(cf).participants("supervisor").update(coaching=False)  # barge in: everyone hears bob
    sim.events.wait("conference.modify", call_sid=sup.call_sid)
    handle.hangup()
    result, ann = handle.join(), sim.handle(agent).join()
    assert ann.talked_with() == [CALLER, "client:bob"] and result.talked_with() == ["client:ann", "client:bob"]
    modify = [h.params for h in hotline.to("/voice/conf") if h.params["StatusCallbackEvent"] == "participant-modify"]
    assert [(p["CallSid"], p["Coaching"]) for p in modify] == [(sup.call_sid, "false")]


def test_faults_apply_to_the_conference_paths(sim):
    handle, _, cf = talking(sim)
    sim.faults.add(Fault("POST", "/Participants/", status=503, code=20503, times=None))
    with pytest.raises(TwilioRestException) as info:
        rest_client(sim).conferences(cf).participants("agent").update(muted=True)
    assert (info.value.status, info.value.code) == (503, 20503) and not sim.conference(cf).find("agent").muted
    sim.faults.clear()
    handle.hangup()
    handle.join()
