"""<Dial> in the simulator: agents answering or not, whispers on the agent's leg, DialCallStatus."""
from __future__ import annotations

import pytest

from simulator import Script, SimulationError
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.twiml_app import CALLER, TwimlApp, doc
from webhooks.outbound.gateway import GatewayError, TwilioGateway

DIAL_ALICE = doc('<Dial action="/voice/dialed" timeout="20" callerId="+864001234567">'
                 '<Client url="/voice/whisper?agent=alice">alice</Client></Dial>')


def dial_app(dial: str = DIAL_ALICE) -> TwimlApp:
    """A hotline that dials and then reports DialCallStatus back to the caller."""
    return TwimlApp({
        "/voice/incoming": dial,
        "/voice/whisper": doc('<Say voice="Polly.Zhiyu" language="cmn-CN">高级会员来电</Say>'),
        "/voice/dialed": lambda p: doc(f"<Say>dial {p['DialCallStatus']}</Say>"),
    })


def test_answered_dial_whispers_to_the_agent_then_bridges():
    hotline = dial_app()
    sim = hotline.sim()
    sim.add_agent("alice", answer_after=4, talk_seconds=42)
    result = sim.place_call(CALLER)

    whisper = hotline.to("/voice/whisper")[0]
    leg = whisper.params
    assert whisper.query == {"agent": "alice"} and whisper.signed
    assert leg["Direction"] == "outbound-dial" and leg["ParentCallSid"] == result.sid and leg["CallSid"] != result.sid
    assert leg["To"] == "client:alice" and leg["From"] == "+864001234567" and leg["CallStatus"] == "in-progress"
    action = hotline.to("/voice/dialed")[0].params
    assert action["CallSid"] == result.sid and action["DialCallSid"] == leg["CallSid"]
    assert action["DialCallStatus"] == "completed" and 42 <= int(action["DialCallDuration"]) <= 46
    outcome = result.dial_results[0]
    assert outcome.endpoint == "client:alice" and outcome.whisper[0].text == "高级会员来电"
    assert result.said() == ["dial completed"]  # the whisper is heard by the agent only
    assert result.duration >= 4 + 42


@pytest.mark.parametrize(
    "behaviour, status, seconds", [("no-answer", "no-answer", 20), ("busy", "busy", 1), ("failed", "failed", 0)]
)
def test_unanswered_dials(behaviour, status, seconds):
    hotline = dial_app()
    sim = hotline.sim()
    sim.add_agent("alice", behaviour=behaviour)
    result = sim.place_call(CALLER)
    action = hotline.to("/voice/dialed")[0].params
    assert action["DialCallStatus"] == status and action["DialCallDuration"] == "0"
    assert hotline.to("/voice/whisper") == []
    assert result.said() == [f"dial {status}"] and result.duration == seconds + 1  # saying the result takes 1 s


def test_agent_slower_than_the_dial_timeout_is_no_answer():
    hotline = dial_app()
    sim = hotline.sim()
    sim.add_agent("alice", answer_after=25)
    sim.place_call(CALLER)
    assert hotline.to("/voice/dialed")[0].params["DialCallStatus"] == "no-answer"


def test_dial_number_without_action_goes_on_with_the_next_verb():
    hotline = TwimlApp(
        {"/voice/incoming": doc('<Dial timeout="10"><Number>+8613900000000</Number></Dial>', "<Say>after</Say>")}
    )
    sim = hotline.sim()
    sim.add_phone("+8613900000000", answer_after=1, talk_seconds=5)
    result = sim.place_call(CALLER)
    assert result.said() == ["after"]
    assert result.dial_results[0].status == "completed" and result.dial_results[0].duration == 5


def test_first_of_several_agents_to_answer_wins():
    hotline = dial_app(
        doc('<Dial action="/voice/dialed"><Client>slow</Client><Client><Identity>fast</Identity></Client></Dial>')
    )
    sim = hotline.sim()
    sim.add_agent("slow", answer_after=9)
    sim.add_agent("fast", answer_after=2, talk_seconds=10)
    result = sim.place_call(CALLER)
    assert result.dial_results[0].endpoint == "client:fast"
    assert sim.net.calls.get(result.dial_results[0].dial_call_sid).status == "completed"
    assert len(sim.events.all("dial.ringing", call_sid=result.sid)) == 2


def test_events_show_ringing_and_connected_and_the_agent_can_hang_up_over_rest():
    hotline = dial_app()
    sim = hotline.sim()
    sim.add_agent("alice", answer_after=3, talk_seconds=None)  # talks until someone hangs up
    with sim:
        handle = sim.start_call(CALLER)
        ringing = sim.events.wait("dial.ringing", endpoint="client:alice")
        connected = sim.events.wait("dial.connected", endpoint="client:alice", after=ringing.seq)
        assert not handle.done()
        TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url).hang_up(connected.data["dial_call_sid"])
        result = handle.join()
    assert result.dial_results[0].status == "completed" and result.said() == ["dial completed"]
    assert sim.events.wait("dial.ended", call_sid=handle.sid).data["status"] == "completed"


def test_caller_hangs_up_during_the_talk():
    hotline = dial_app()
    sim = hotline.sim()
    sim.add_agent("alice", answer_after=2, talk_seconds=600)
    result = sim.place_call(CALLER, script=Script(hangup_after_talk_seconds=30))
    action = hotline.to("/voice/dialed")[0].params
    assert action["CallStatus"] == "completed" and action["DialCallStatus"] == "completed"
    assert 30 <= int(action["DialCallDuration"]) <= 33
    assert result.said() == [] and hotline.hits[-1].path == "/voice/status"


def test_rest_redirect_during_a_dial_ends_the_bridge():
    hotline = dial_app()
    hotline.routes["/voice/elsewhere"] = doc("<Say>elsewhere</Say>")
    sim = hotline.sim()
    sim.add_agent("alice", answer_after=1, talk_seconds=None)
    with sim:
        handle = sim.start_call(CALLER)
        sim.events.wait("dial.connected", call_sid=handle.sid)
        gw = TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url)
        gw.redirect_call(handle.sid, PUBLIC_URL + "/voice/elsewhere")
        result = handle.join()
        with pytest.raises(GatewayError) as info:
            gw.redirect_call(handle.sid, PUBLIC_URL + "/voice/elsewhere")
    assert result.said() == ["elsewhere"]  # the Dial action was requested but its answer not followed
    assert hotline.to("/voice/dialed")[0].params["DialCallStatus"] == "completed"
    assert info.value.code == 21220


def test_unknown_agent_fails_loudly():
    with pytest.raises(SimulationError, match="client:bob"):
        dial_app(doc("<Dial><Client>bob</Client></Dial>")).sim().place_call(CALLER)


def test_whisper_may_only_speak():
    hotline = dial_app()
    hotline.routes["/voice/whisper"] = doc('<Enqueue>agents</Enqueue>')
    sim = hotline.sim()
    sim.add_agent("alice")
    with pytest.raises(SimulationError, match="whisper"):
        sim.place_call(CALLER)
