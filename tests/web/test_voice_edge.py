"""The /voice/* edge: signatures, required parameters, never a 500."""
from __future__ import annotations

import json
import logging
from datetime import UTC


def test_signed_incoming_answers_schema_valid_twiml(voice):
    resp = voice("/voice/incoming")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "<Say" in body and 'voice="Polly.Zhiyu"' in body and 'language="cmn-CN"' in body


def test_unsigned_request_is_forbidden(voice):
    resp = voice("/voice/incoming", signed=False)
    assert resp.status_code == 403
    assert b"Traceback" not in resp.data


def test_tampered_parameter_is_forbidden(client):
    from tests.support.common import PUBLIC_URL, sign

    params = {"CallSid": "CA" + "2" * 32, "From": "+8613800000001", "Digits": "1"}
    signature = sign(PUBLIC_URL + "/voice/incoming", params)
    params["Digits"] = "2"
    resp = client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


def test_signature_for_another_host_is_forbidden(client):
    from tests.support.common import sign

    params = {"CallSid": "CA" + "3" * 32}
    resp = client.post(
        "/voice/incoming", data=params, headers={"X-Twilio-Signature": sign("https://evil.test/voice/incoming", params)}
    )
    assert resp.status_code == 403


def test_missing_callsid_is_a_400_not_a_500(client):
    from tests.support.common import PUBLIC_URL, sign

    params = {"From": "+8613800000001"}
    resp = client.post(
        "/voice/incoming", data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/voice/incoming", params)}
    )
    assert resp.status_code == 400
    assert b"CallSid" in resp.data


def test_unknown_voice_url_apologises_and_hangs_up(voice):
    resp = voice("/voice/no-such-step?x=1")
    assert resp.status_code == 200
    assert "<Hangup" in resp.get_data(as_text=True)


def test_fallback_answers_from_no_state(voice, redis):
    redis.flushdb()
    resp = voice("/voice/fallback", {"ErrorCode": "11205", "ErrorUrl": "https://hotline.test/voice/incoming"})
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "<Say" in body and "<Hangup" in body


def test_status_callback_is_acknowledged(voice):
    resp = voice("/voice/status", {"CallStatus": "completed", "CallDuration": "12"})
    assert resp.status_code == 200


def test_oversized_body_is_refused(client):
    resp = client.post("/voice/incoming", data={"CallSid": "CA1", "Junk": "x" * 300_000})
    assert resp.status_code == 413


def test_webhook_log_line_is_structured_and_masked(voice, caplog):
    from core.logs import JsonFormatter

    caplog.set_level(logging.INFO, logger="hotline.webhooks")
    voice("/voice/incoming", {"From": "+8613812345678", "CallSid": "CA" + "4" * 32})
    lines = [JsonFormatter().format(r) for r in caplog.records if r.getMessage() == "webhook"]
    assert len(lines) == 1
    fields = json.loads(lines[0])
    assert fields["call_sid"] == "CA" + "4" * 32
    assert fields["step"] == "incoming" and fields["status"] == 200 and fields["ms"] >= 0
    assert fields["caller"] == "+86138****5678"
    assert "+8613812345678" not in lines[0]


def test_get_is_not_allowed(client):
    assert client.get("/voice/incoming").status_code == 405


def test_healthz_reports_both_stores(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok", "problems": []}


def test_a_move_to_an_agent_that_races_a_callback_booking_reads_the_ticket_out(voice, db, redis, services):
    """The caller confirmed a callback from the hold loop while a dispatch claimed them: Twilio follows the
    dispatcher's redirect to /voice/connect, which must say the ticket's number, not hang up silently."""
    from datetime import datetime

    from callqueue.callbacks import tickets
    from callqueue.live import calls, presence
    from webhooks.booking import spell_ticket

    sid, now = "CA" + "7" * 32, datetime.now(UTC)
    presence.set_state(redis, "ann", "available", now, endpoint="client:ann")
    calls.join_queue(db, redis, sid, tier="premium", now=now, settings=services.config)
    offer = calls.dispatch(db, redis, now)
    assert offer is not None and offer.call_sid == sid
    t = tickets.create(db, phone="+8613800000001", tier="premium", lang="zh", reason="caller_request", score=1.0,
                       due=now, now=now, max_attempts=3, source_call_sid=sid).ticket
    calls.left_for_callback(db, redis, sid, now, services.config)
    db.commit()

    body = voice(f"/voice/connect?agent=ann&offer={offer.attempt}", {"CallSid": sid}).get_data(as_text=True)
    assert spell_ticket(t.number) in body and "<Hangup" in body
    assert "<Dial" not in body and "<Enqueue" not in body
    assert calls.records.get(db, sid).outcome == "to_callback"


def test_a_stale_move_without_a_booking_puts_the_caller_back_in_line(voice, db, redis, services):
    from datetime import datetime

    from callqueue.live import calls, dispatch, presence

    sid, now = "CA" + "8" * 32, datetime.now(UTC)
    presence.set_state(redis, "ann", "available", now, endpoint="client:ann")
    calls.join_queue(db, redis, sid, tier="premium", now=now, settings=services.config)
    offer = calls.dispatch(db, redis, now)
    dispatch.undo_claim(redis, sid, "ann", now)  # the offer was returned before Twilio followed the move
    db.commit()
    body = voice(f"/voice/connect?agent=ann&offer={offer.attempt}", {"CallSid": sid}).get_data(as_text=True)
    assert "<Enqueue" in body and "<Dial" not in body


def test_webhooks_skip_the_cookie_session_and_console_pages_keep_it(voice, client):
    from flask import request
    from flask.sessions import NullSession

    app = client.application
    with app.test_request_context("/voice/wait", method="POST"):
        assert isinstance(app.session_interface.open_session(app, request), NullSession)
    with app.test_request_context("/login"):
        assert not isinstance(app.session_interface.open_session(app, request), NullSession)
    assert "Set-Cookie" not in voice("/voice/incoming").headers
