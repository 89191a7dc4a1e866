"""The simulator's call engine: signed requests, TwiML followed as Twilio documents it, loud failures."""
from __future__ import annotations

import threading

import pytest
from flask import Flask, Response

from simulator import (
    BackgroundServer,
    RequestCapExceeded,
    Script,
    SimulationError,
    Simulator,
    Speech,
    TwimlRejected,
)
from simulator.transport import FlaskTransport, HttpTransport
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.twiml_app import CALLER, TwimlApp, doc

ZH = 'voice="Polly.Zhiyu" language="cmn-CN"'


# -- the real hotline --

def test_real_hotline_call_hears_greeting_and_completes(app, services):
    sim = Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=0.0)
    result = sim.place_call(CALLER)
    cfg = services.config
    lang = cfg["hotline"]["default_language"]
    assert result.status == "completed"
    assert result.said()[0] == cfg.prompt("greeting", lang)
    assert result.transcript[0].language == "cmn-CN" and result.transcript[0].voice == "Polly.Zhiyu"
    first, last = result.requests[0], result.requests[-1]
    assert first.kind == "voice" and first.url == PUBLIC_URL + "/voice/incoming"
    assert first.params["CallStatus"] == "ringing" and first.params["Direction"] == "inbound"
    assert (
        last.kind == "status"
        and last.params["CallStatus"] == "completed"
        and last.params["CallDuration"] == str(result.duration)
    )
    assert result.duration >= 1  # the greeting takes time to say


def test_real_hotline_over_http(app, services):
    server = BackgroundServer(app)
    server.start()
    sim = Simulator.over_http(PUBLIC_URL, AUTH_TOKEN, connect_to=server.url, scale=0.0)
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(sim.place_call(CALLER))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        server.stop()
    assert [r.status for r in results] == ["completed"] * 3
    assert len({r.sid for r in results}) == 3
    assert all(
        r.said()[0] == services.config.prompt("greeting", services.config["hotline"]["default_language"])
        for r in results
    )


def test_unsigned_or_wrongly_signed_requests_are_refused_by_the_hotline(app):
    sim = Simulator(FlaskTransport(app, "not-the-token"), PUBLIC_URL, AUTH_TOKEN, scale=0.0)
    with pytest.raises(TwimlRejected, match="HTTP 403"):
        sim.place_call(CALLER)


# -- parameters and signatures --

def test_every_request_is_signed_and_carries_twilio_parameters():
    hotline = TwimlApp({"/voice/incoming": doc(f"<Say {ZH}>你好</Say>", "<Redirect>/voice/next</Redirect>"),
                        "/voice/next": doc("<Hangup/>")})
    result = hotline.sim(account_sid="AC" + "a" * 32).place_call(CALLER, to="+864009999999")
    assert [h.path for h in hotline.hits] == ["/voice/incoming", "/voice/next", "/voice/status"]
    assert all(h.signed for h in hotline.hits)
    first, second, status = (h.params for h in hotline.hits)
    sid = result.sid
    assert sid.startswith("CA") and len(sid) == 34 and int(sid[2:], 16) >= 0
    for p in (first, second, status):
        assert p["CallSid"] == sid and p["AccountSid"] == "AC" + "a" * 32 and p["ApiVersion"] == "2010-04-01"
        assert p["From"] == p["Caller"] == CALLER and p["To"] == p["Called"] == "+864009999999"
        assert p["Direction"] == "inbound"
    assert (first["CallStatus"], second["CallStatus"], status["CallStatus"]) == ("ringing", "in-progress", "completed")
    assert result.transcript[0].text == "你好" and result.transcript[0].language == "cmn-CN"


def test_http_transport_signs_the_public_url_and_reuses_its_connection():
    hotline = TwimlApp(
        {"/voice/incoming": doc("<Redirect>again?n=1</Redirect>"), "/voice/again?n=1": doc("<Say>done</Say>")}
    )
    server = BackgroundServer(hotline.app)
    server.start()
    try:
        transport = HttpTransport(AUTH_TOKEN, connect_to=server.url)
        result = Simulator(transport, PUBLIC_URL, AUTH_TOKEN, scale=0.0).place_call(CALLER)
        transport.close()
    finally:
        server.stop()
    assert result.said() == ["done"]
    assert [h.path for h in hotline.hits] == ["/voice/incoming", "/voice/again", "/voice/status"]
    assert hotline.hits[1].query == {"n": "1"} and all(h.signed for h in hotline.hits)


def test_relative_urls_resolve_against_the_current_document():
    hotline = TwimlApp({
        "/voice/ivr/start": doc('<Gather numDigits="1" action="menu?step=2"/>'),
        "/voice/ivr/menu?step=2": doc('<Redirect>../other</Redirect>'),
        "/voice/other": doc('<Redirect>https://hotline.test/voice/ivr/end</Redirect>'),
        "/voice/ivr/end": doc("<Say>end</Say>"),
    })
    result = hotline.sim(voice_path="/voice/ivr/start").place_call(CALLER, script=["2"])
    assert [r.url for r in result.requests[:4]] == [
        PUBLIC_URL + "/voice/ivr/start", PUBLIC_URL + "/voice/ivr/menu?step=2",
        PUBLIC_URL + "/voice/other", PUBLIC_URL + "/voice/ivr/end",
    ]
    assert result.requests[1].params["Digits"] == "2"


# -- Gather --

def test_gather_digits_numdigits_and_finish_on_key():
    hotline = TwimlApp({
        "/voice/incoming": doc('<Gather numDigits="1" action="/voice/one"><Say>Press one</Say></Gather>'),
        "/voice/one": doc('<Gather finishOnKey="#" action="/voice/pin" timeout="3"><Say>PIN then hash</Say></Gather>'),
        "/voice/pin": doc('<Gather numDigits="4" finishOnKey="" action="/voice/last"/>'),
        "/voice/last": doc("<Say>ok</Say>"),
    })
    result = hotline.sim().place_call(CALLER, script=["12", "123456#9", "98#76"])
    assert hotline.to("/voice/one")[0].params["Digits"] == "1"  # numDigits=1 keeps the first key only
    assert hotline.to("/voice/pin")[0].params["Digits"] == "123456"  # finishOnKey ends input and is not sent
    assert hotline.to("/voice/last")[0].params["Digits"] == "98#7"  # finishOnKey="" makes # an ordinary key
    assert result.said() == ["Press one", "PIN then hash", "ok"]


def test_gather_without_input_falls_through_to_the_next_verb():
    hotline = TwimlApp({
        "/voice/incoming": doc('<Gather action="/voice/got" timeout="7"><Say>Say something</Say></Gather>',
                               "<Say>Nothing heard</Say>", '<Redirect>/voice/retry</Redirect>'),
        "/voice/retry": doc('<Gather input="speech" actionOnEmptyResult="true" action="/voice/got"/>'),
        "/voice/got": doc("<Say>got</Say>"),
    })
    result = hotline.sim().place_call(CALLER, script=[None, None])
    assert result.said() == ["Say something", "Nothing heard", "got"]
    empty = hotline.to("/voice/got")[0].params
    assert "Digits" not in empty and "SpeechResult" not in empty
    assert result.duration >= 7 + 5  # both timeouts were waited out


def test_gather_speech_and_default_action_is_the_current_document():
    calls = []

    def start(params: dict[str, str]) -> str:
        calls.append(params)
        if "SpeechResult" in params:
            return doc(f"<Say>heard {params['SpeechResult']}</Say>")
        return doc('<Gather input="speech dtmf" language="cmn-CN"/>')

    hotline = TwimlApp({"/voice/incoming": start})
    result = hotline.sim().place_call(CALLER, script=[("speech", "人工服务", 0.8)])
    assert (
        len(calls) == 2
        and calls[1]["SpeechResult"] == "人工服务"
        and float(calls[1]["Confidence"]) == pytest.approx(0.8)
    )
    assert result.said() == ["heard 人工服务"]
    assert result.requests[1].url == PUBLIC_URL + "/voice/incoming" and result.requests[1].kind == "gather"


def test_dtmf_only_gather_ignores_speech_and_answers_run_out_to_hangup():
    hotline = TwimlApp({"/voice/incoming": doc('<Gather action="/voice/x"/>', '<Redirect>/voice/incoming</Redirect>')})
    result = hotline.sim().place_call(CALLER, script=Script([Speech("hello")], when_answers_run_out="hangup"))
    assert hotline.to("/voice/x") == []
    assert len(hotline.to("/voice/incoming")) == 2 and result.status == "completed"
    assert hotline.to("/voice/status")[0].params["CallStatus"] == "completed"


def test_caller_hangs_up_after_seconds():
    hotline = TwimlApp({"/voice/incoming": doc('<Pause length="10"/>', "<Say>late</Say>")})
    result = hotline.sim().place_call(CALLER, script=Script(hangup_after_seconds=4))
    assert result.said() == [] and result.duration == 4
    assert hotline.to("/voice/status")[0].params["CallDuration"] == "4"


def test_play_pause_and_reject():
    hotline = TwimlApp(
        {"/voice/incoming": doc('<Play loop="2">music/hold.mp3</Play>', '<Pause length="3"/>', "<Reject/>")}
    )
    result = hotline.sim(play_seconds=20).place_call(CALLER)
    assert result.transcript[0].verb == "play" and PUBLIC_URL + "/voice/music/hold.mp3" in result.transcript[0].text
    assert result.transcript[1].verb == "pause" and result.transcript[1].seconds == 3
    assert result.status == "completed" and result.duration == 43  # Reject after answering just ends the call


def test_reject_as_first_verb_leaves_the_call_unanswered():
    hotline = TwimlApp({"/voice/incoming": doc('<Reject reason="busy"/>')})
    result = hotline.sim().place_call(CALLER)
    assert result.status == "busy" and result.duration == 0
    assert hotline.to("/voice/status")[0].params["CallStatus"] == "busy"


def test_time_scale_makes_pauses_cost_real_time_in_proportion():
    import time

    hotline = TwimlApp({"/voice/incoming": doc('<Pause length="100"/>')})
    t0 = time.monotonic()
    hotline.sim(scale=0.002).place_call(CALLER)
    assert 0.2 <= time.monotonic() - t0 < 5


# -- loud failures --

def test_invalid_twiml_fails_the_call_with_the_document():
    hotline = TwimlApp({"/voice/incoming": doc("<Say>fine</Say>", "<Dance/>")})
    with pytest.raises(TwimlRejected) as info:
        hotline.sim().place_call(CALLER)
    assert "<Dance" in str(info.value) and "/voice/incoming" in str(info.value)
    assert hotline.to("/voice/status") == []


@pytest.mark.parametrize("answer, fragment", [
    (Response("<Response/>", 500, mimetype="application/xml"), "HTTP 500"),
    (Response("hello", 200, mimetype="text/plain"), "not TwiML"),
    (Response("<Response><Say>", 200, mimetype="application/xml"), "malformed XML"),
    (Response("<Reply/>", 200, mimetype="text/xml"), "not <Response>"),
])
def test_bad_answers_fail_loudly(answer, fragment):
    app = Flask("bad")
    app.add_url_rule("/voice/incoming", "x", lambda: answer, methods=["POST"])
    with pytest.raises(TwimlRejected, match=fragment):
        Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=0.0).place_call(CALLER)


def test_redirect_loop_hits_the_request_cap():
    hotline = TwimlApp({"/voice/incoming": doc("<Redirect>/voice/incoming</Redirect>")})
    with pytest.raises(RequestCapExceeded):
        hotline.sim(max_requests=25).place_call(CALLER)
    assert len(hotline.to("/voice/incoming")) == 25


def test_leave_outside_a_queue_and_get_methods_fail_loudly():
    with pytest.raises(TwimlRejected, match="Leave"):
        TwimlApp({"/voice/incoming": doc("<Leave/>")}).sim().place_call(CALLER)
    with pytest.raises(SimulationError, match="POST"):
        TwimlApp({"/voice/incoming": doc('<Redirect method="GET">/x</Redirect>')}).sim().place_call(CALLER)


def test_bad_scripts_are_refused_before_dialling():
    with pytest.raises(ValueError):
        TwimlApp({}).sim().place_call(CALLER, script=["12a"])
