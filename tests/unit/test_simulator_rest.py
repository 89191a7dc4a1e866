"""The simulator's REST API, driven by the hotline's own gateway (twilio-python underneath)."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from twilio.base.exceptions import TwilioRestException

from simulator import Script
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.twiml_app import CALLER, TwimlApp, dequeue, doc
from webhooks.outbound.gateway import GatewayError, TwilioGateway

MEMBER = "+8613812345678"
HOTLINE = "+864001234567"
CALLBACK_DOC = doc('<Gather numDigits="1" action="/voice/callback/confirm"><Say>Press 1 to be connected</Say></Gather>')


@pytest.fixture
def hotline() -> TwimlApp:
    return TwimlApp({
        "/voice/callback/answer": CALLBACK_DOC,
        "/voice/callback/confirm": lambda p: doc(f"<Say>you pressed {p['Digits']}</Say>"),
        "/voice/callback/status": doc(),
    })


@pytest.fixture
def sim(hotline):
    with hotline.sim() as s:
        yield s


@pytest.fixture
def gw(sim) -> TwilioGateway:
    return TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url, from_number=HOTLINE)


def raw(sim, method: str, path: str, user: str, password: str) -> tuple[int, dict]:
    """A REST request with explicit credentials."""
    req = urllib.request.Request(sim.api_url + path, method=method, data=b"" if method == "POST" else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_credentials_get_a_twilio_401(sim):
    path = f"/2010-04-01/Accounts/{sim.account_sid}/Queues.json"
    status, body = raw(sim, "GET", path, sim.account_sid, "wrong-token")
    assert (
        status == 401 and body["code"] == 20003 and body["status"] == 401 and "more_info" in body and "message" in body
    )
    assert raw(sim, "GET", path, "AC" + "f" * 32, AUTH_TOKEN)[0] == 401
    assert raw(sim, "GET", path, sim.account_sid, AUTH_TOKEN)[0] == 200
    with pytest.raises(GatewayError) as info:
        TwilioGateway(sim.account_sid, "wrong-token", sim.api_url).send_sms(MEMBER, "hi", HOTLINE)
    assert info.value.status == 401 and sim.messages == []
    assert [r.authorized for r in sim.rest_requests()] == [False, False, True, False]


def test_outbound_call_sends_status_callbacks_and_runs_the_url(sim, gw, hotline):
    sim.add_phone(MEMBER, answer_after=6, script=["1"])
    sid = gw.create_call(
        MEMBER, PUBLIC_URL + "/voice/callback/answer", PUBLIC_URL + "/voice/callback/status", timeout_s=20
    )
    result = sim.handle(sid).join()

    assert (
        sid == result.sid
        and result.direction == "outbound-api"
        and result.said() == ["Press 1 to be connected", "you pressed 1"]
    )
    statuses = [(h.params["CallStatus"], h.params.get("CallDuration")) for h in hotline.to("/voice/callback/status")]
    assert statuses == [
        ("initiated", None),
        ("ringing", None),
        ("in-progress", None),
        ("completed", str(result.duration)),
    ]
    assert [h.params["SequenceNumber"] for h in hotline.to("/voice/callback/status")] == ["0", "1", "2", "3"]
    answer = hotline.to("/voice/callback/answer")[0].params
    assert answer["Direction"] == "outbound-api" and answer["CallStatus"] == "in-progress"
    assert answer["From"] == HOTLINE and answer["To"] == MEMBER and answer["CallSid"] == sid
    created = sim.rest_requests("POST", "/Calls.json")[0]
    assert created.lists["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert created.params["Timeout"] == "20" and created.params["Url"] == PUBLIC_URL + "/voice/callback/answer"
    assert gw.client.calls(sid).fetch().status == "completed"


@pytest.mark.parametrize("behaviour, answer_after, final", [("busy", 3, "busy"), ("no-answer", 3, "no-answer"),
                                                            ("answer", 30, "no-answer"), ("failed", 3, "failed")])
def test_unanswered_outbound_calls(sim, gw, hotline, behaviour, answer_after, final):
    sim.add_phone(MEMBER, behaviour=behaviour, answer_after=answer_after)
    sid = gw.create_call(
        MEMBER, PUBLIC_URL + "/voice/callback/answer", PUBLIC_URL + "/voice/callback/status", timeout_s=20
    )
    result = sim.handle(sid).join()
    assert result.status == final and hotline.to("/voice/callback/answer") == []
    last = hotline.to("/voice/callback/status")[-1].params
    assert last["CallStatus"] == final and last["CallDuration"] == "0"


def test_cancel_a_ringing_outbound_call(hotline):
    with hotline.sim(scale=1.0) as sim:  # real-time ringing, so the cancel lands while it rings
        sim.add_phone(MEMBER, answer_after=30)
        gw = TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url, from_number=HOTLINE)
        sid = gw.create_call(MEMBER, PUBLIC_URL + "/voice/callback/answer", PUBLIC_URL + "/voice/callback/status")
        sim.events.wait("call.started", call_sid=sid)
        gw.hang_up(sid)
        result = sim.handle(sid).join()
    assert result.status == "canceled" and hotline.to("/voice/callback/answer") == []


def test_twiml_parameter_and_unknown_phone(sim, gw):
    sim.add_phone(MEMBER)
    call = gw.client.calls.create(to=MEMBER, from_=HOTLINE, twiml="<Response><Say>inline</Say></Response>")
    assert sim.handle(call.sid).join().said() == ["inline"]
    with pytest.raises(GatewayError) as info:
        gw.create_call("+8613999999999", PUBLIC_URL + "/voice/callback/answer", PUBLIC_URL + "/voice/callback/status")
    assert info.value.status == 400 and "+8613999999999" in str(info.value)
    with pytest.raises(AssertionError, match="no simulated endpoint"):
        sim.join_all()  # a failure answered over REST still fails the test


def test_unknown_and_finished_calls(sim, gw, hotline):
    with pytest.raises(GatewayError) as unknown:
        gw.redirect_call("CA" + "9" * 32, PUBLIC_URL + "/x")
    assert (unknown.value.status, unknown.value.code) == (404, 20404)
    hotline.routes["/voice/incoming"] = doc("<Say>short</Say>")
    finished = sim.place_call(CALLER)
    with pytest.raises(GatewayError) as done:
        gw.redirect_call(finished.sid, PUBLIC_URL + "/x")
    assert (done.value.status, done.value.code) == (400, 21220)
    assert gw.client.calls(finished.sid).fetch().duration == str(finished.duration)
    assert [c.sid for c in gw.client.calls.list()] == [finished.sid]


def test_queues_ensure_fetch_and_limits(sim, gw):
    created = gw.ensure_queue("premium", 200)
    again = gw.ensure_queue("premium", 200)
    assert (
        created.sid == again.sid
        and created.sid.startswith("QU")
        and created.max_size == 200
        and created.current_size == 0
    )
    assert len(sim.rest_requests("POST", "/Queues.json")) == 1
    fetched = gw.client.queues(created.sid).fetch()
    assert fetched.friendly_name == "premium" and fetched.average_wait_time == 0
    updated = gw.client.queues(created.sid).update(max_size=5000)
    assert updated.max_size == 5000 and sim.net.queues.get(created.sid).max_size == 5000
    with pytest.raises(Exception) as too_big:
        gw.client.queues.create(friendly_name="huge", max_size=5001)
    assert getattr(too_big.value, "status", None) == 400
    with pytest.raises(TwilioRestException) as missing:
        dequeue(gw, created.sid, "CA" + "1" * 32, PUBLIC_URL + "/x")
    assert missing.value.status == 404


def test_queue_member_resource_while_queued(gw, hotline):
    hotline.routes.update({"/voice/incoming": doc('<Enqueue waitUrl="/voice/wait">support</Enqueue>'),
                           "/voice/wait": doc('<Play loop="0">hold.mp3</Play>'), "/voice/out": doc("<Say>out</Say>")})
    with hotline.sim() as sim:
        gw = TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url)
        handle = sim.start_call(CALLER, script=Script())
        joined = sim.events.wait("queue.joined", call_sid=handle.sid)
        queue = gw.ensure_queue("support", 1000)
        assert queue.sid == joined.data["queue_sid"] and queue.current_size == 1
        members = gw.client.queues(queue.sid).members.list()
        assert [m.call_sid for m in members] == [handle.sid] and members[0].position == 1
        with pytest.raises(TwilioRestException) as wrong_queue:
            dequeue(gw, gw.ensure_queue("other", 10).sid, handle.sid, PUBLIC_URL + "/voice/out")
        assert wrong_queue.value.status == 404
        dequeue(gw, queue.sid, handle.sid, PUBLIC_URL + "/voice/out")
        assert handle.join().said() == ["out"]


def test_send_sms_is_recorded(sim, gw):
    sid = gw.send_sms(MEMBER, "Your ticket is T-1001")
    assert sid.startswith("SM") and len(sid) == 34
    assert [(m.sid, m.to, m.from_, m.body) for m in sim.messages] == [(sid, MEMBER, HOTLINE, "Your ticket is T-1001")]
    assert sim.events.wait("sms.sent", to=MEMBER).data["body"] == "Your ticket is T-1001"
    listed = gw.client.messages.list()
    assert [m.sid for m in listed] == [sid]
