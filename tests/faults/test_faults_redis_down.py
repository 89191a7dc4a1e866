"""Issue 9 (item 1): the hotline with Redis down. Redis stopped and frozen (a real redis-server process of the
test's own, never the shared one): the client fails fast, every webhook still answers valid TwiML fast, premium
callers hold with a parked ticket, everyone else can book a callback.

Figures the README's RELIABILITY section quotes are printed with a `FIGURE` prefix (pytest -s shows them).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import redis as redis_lib
from sqlalchemy import select

from callqueue import records
from callqueue.callbacks import tickets
from callqueue.recovery import outage_tickets
from core.redisconn import make_redis
from core.services import Services
from hotline.app import create_app
from members.models import Member
from tests.support.degraded import (
    NOW,
    Twilio,
    action,
    figure,
    record,
    said,
    sid_of,
    stores_services,
    ticket_rows,
    verbs,
)
from tests.support.outages import RedisProcess
from tests.support.people import PIN


def test_the_redis_client_fails_fast_when_redis_is_stopped_or_frozen_and_survives_a_restart(
    fault_redis: RedisProcess,
) -> None:
    r = make_redis(fault_redis.url, timeout_s=1.0)
    assert r.set("k", "v")
    fault_redis.freeze()
    t0 = time.perf_counter()
    with pytest.raises(redis_lib.TimeoutError):
        r.get("k")
    frozen_s = time.perf_counter() - t0
    assert 0.9 <= frozen_s < 1.5, "one timeout, never retried (a hung server costs a command its timeout once)"
    fault_redis.stop()
    t0 = time.perf_counter()
    with pytest.raises(redis_lib.ConnectionError):
        r.get("k")
    stopped_s = time.perf_counter() - t0
    assert stopped_s < 0.5, "a stopped server is refused at once: no retry backoff"
    fault_redis.start()
    assert r.get("k") is None and r.set("k", "w"), "the pooled client reconnects by itself (the data did not survive)"
    figure("redis command with the server frozen (timeout 1 s)", f"{frozen_s:.2f} s")
    figure("redis command with the server stopped", f"{stopped_s * 1000:.1f} ms")


# --- Redis down: the calls -------------------------------------------------------------------------

@pytest.fixture
def rdown(
    services: Services, fault_redis: RedisProcess, twiml_check: Callable[[str], None]
) -> Iterator[tuple[Services, Twilio]]:
    svc = stores_services(services, fault_redis.url)
    yield svc, Twilio(create_app(services=svc), twiml_check)
    svc.redis.close()


def test_with_redis_stopped_a_verified_premium_member_holds_with_a_parked_ticket_and_a_guest_books_a_callback(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess, member_phones: dict[str, list[str]],
) -> None:
    svc, tw = rdown
    fault_redis.stop()
    premium = member_phones["premium"][0]

    t0 = time.perf_counter()
    first = tw.post("/voice/incoming", sid_of(1), caller=premium)
    incoming_ms = (time.perf_counter() - t0) * 1000
    assert incoming_ms < 1000
    figure("/voice/incoming with Redis stopped", f"{incoming_ms:.0f} ms")
    pin_url = action(first)
    assert pin_url.startswith("/voice/degraded/pin?") and "会员密码" in said(first)
    assert record(svc, sid_of(1)).arrived is not None, "every degraded call is recorded"

    held = tw.post(pin_url, sid_of(1), caller=premium, Digits=PIN)
    assert verbs(held)[-1] == "Enqueue"
    queue = held.xml.find("Enqueue")
    assert queue.text == "hotline-degraded" and queue.get("action") == "/voice/queue-result"
    wait_url = queue.get("waitUrl")
    (t,) = ticket_rows(svc)
    assert (t.reason, t.status, t.phone, t.tier, t.source_call_sid) == (
        "outage",
        "scheduled",
        premium,
        "premium",
        sid_of(1),
    )
    assert t.due == NOW + timedelta(seconds=outage_tickets.PARK_S), "parked: not rung while the member holds"
    assert " ".join(t.number) in said(held) and parse_qs(urlsplit(wait_url).query)["t"] == [t.number]
    rec = record(svc, sid_of(1))
    assert (rec.tier, rec.verified, rec.outcome) == ("premium", True, "in_progress")
    assert rec.queued == NOW and rec.score == t.score == NOW.timestamp() - 600, "the place they would have had"

    hold = tw.post(wait_url, sid_of(1), caller=premium, QueueSid="QU1", QueuePosition="1")
    assert verbs(hold) == ["Say", "Say", "Pause"], "a static hold document: no Redis, no hang-up"
    assert " ".join(t.number) in said(hold)

    guest = "+8613600000009"
    offer = tw.post("/voice/incoming", sid_of(2), caller=guest)
    assert action(offer).startswith("/voice/degraded/offer?") and verbs(offer)[-1] == "Hangup"
    booked = tw.post(action(offer), sid_of(2), caller=guest, Digits="1")
    t2 = ticket_rows(svc)[1]
    assert (t2.reason, t2.tier, t2.phone, t2.due, t2.score) == ("outage", "guest", guest, NOW, NOW.timestamp())
    assert " ".join(t2.number) in said(booked) and verbs(booked)[-1] == "Hangup"
    again = tw.post(action(offer), sid_of(2), caller=guest, Digits="1")  # Twilio retries the webhook
    assert len(ticket_rows(svc)) == 2 and " ".join(t2.number) in said(again)


def test_with_redis_stopped_wrong_pins_lock_the_member_in_sql_and_end_in_the_callback_offer(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess, member_phones: dict[str, list[str]],
) -> None:
    svc, tw = rdown
    fault_redis.stop()
    premium = member_phones["premium"][1]
    url = action(tw.post("/voice/incoming", sid_of(3), caller=premium))
    first = tw.post(url, sid_of(3), caller=premium, Digits="1111")
    assert "2" in said(first) and action(first).endswith("n=1")
    second = tw.post(action(first), sid_of(3), caller=premium, Digits="1111")
    third = tw.post(action(second), sid_of(3), caller=premium, Digits="1111")
    assert action(third).startswith("/voice/degraded/offer?t=guest"), "locked: treated as a guest"
    with svc.sessions() as s:
        locked = s.scalar(select(Member.locked_until).where(Member.id == int(parse_qs(urlsplit(url).query)["m"][0])))
    assert locked is not None and locked > NOW, "the member's own lock, in SQL, bounds guessing without Redis"
    assert ticket_rows(svc) == []


LEG = "CA" + "e" * 32  # the agent's leg, rung for the waiting guest sid_of(4)
AGENT_LEG = f"?caller={sid_of(4)}&agent=ann&offer=1"
CONFERENCE = {"ConferenceSid": "CF" + "c" * 32, "FriendlyName": "hl-" + sid_of(4), "SequenceNumber": "1"}


@pytest.mark.parametrize("path, params, expect", [
    ("/voice/wait", {"QueueSid": "QU1"}, ["Say", "Pause"]),
    ("/voice/hold/offer?s=3", {"Digits": "1"}, ["Say", "Pause"]),
    ("/voice/ivr/menu?s=1", {"Digits": "0"}, ["Say", "Gather", "Say", "Hangup"]),
    ("/voice/queue", {}, ["Say", "Gather", "Say", "Hangup"]),
    ("/voice/queue-result", {"QueueResult": "hangup"}, ["Hangup"]),
    ("/voice/queue-result", {"QueueResult": "bridged"}, []),
    ("/voice/queue-result", {"QueueResult": "redirected"}, []),
    ("/voice/queue-result", {"QueueResult": "error"}, ["Say", "Hangup"]),
    ("/voice/status", {"CallStatus": "completed"}, []),
    ("/voice/agent/answer" + AGENT_LEG, {"CallSid": LEG, "Direction": "outbound-api"}, ["Say", "Say", "Hangup"]),
    ("/voice/agent/status" + AGENT_LEG, {"CallSid": LEG, "CallStatus": "no-answer"}, []),
    ("/voice/agent/status" + AGENT_LEG, {"CallSid": LEG, "CallStatus": "completed"}, []),
    ("/voice/connect?agent=ann", {}, ["Dial", "Say", "Hangup"]),
    ("/voice/conference/status", {**CONFERENCE, "StatusCallbackEvent": "participant-join",
                                  "ParticipantLabel": "caller"}, []),
    ("/voice/conference/status", {**CONFERENCE, "CallSid": LEG, "StatusCallbackEvent": "participant-leave",
                                  "ParticipantLabel": "agent", "ReasonParticipantLeft": "participant_hung_up"}, []),
    ("/voice/conference/hold", {}, ["Say", "Pause", "Redirect"]),
    ("/voice/callback/answer?ticket=99999&n=1", {}, ["Say", "Hangup"]),
    ("/voice/callback/status?ticket=1&n=1", {"CallStatus": "busy"}, []),
])
def test_with_redis_stopped_every_mid_call_webhook_answers_safe_twiml(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess, path: str, params: dict[str, str], expect: list[str],
) -> None:
    svc, tw = rdown
    with svc.unit_of_work() as s:  # a guest who was waiting in the queue when Redis stopped
        records.note_queued(
            s,
            sid_of(4),
            tier="guest",
            category="billing",
            verified=False,
            member_uid=None,
            score=NOW.timestamp() - 30,
            queued_at=NOW - timedelta(seconds=30),
            from_number="+8613600000004",
        )
    fault_redis.stop()
    resp = tw.post(path, sid_of(4), caller="+8613600000004", **params)
    assert verbs(resp) == expect
    if "Enqueue" in expect:
        assert resp.xml.find("Enqueue").text == "hotline-degraded", "back to holding, in the queue that needs no Redis"
    if path == "/voice/status":
        rec = record(svc, sid_of(4))
        assert (rec.outcome, rec.waited_s) == ("abandoned", 30.0), "closed in SQL from its own queue time"
    if path.startswith("/voice/agent/"):
        rec = record(svc, sid_of(4))
        assert (rec.outcome, rec.answered) == ("in_progress", None), "the caller keeps holding, for the rebuild"
    if path.startswith("/voice/agent/answer"):
        assert "<Conference" not in resp.get_data(as_text=True), "nobody can be moved to the agent: no whisper"
    if path.startswith("/voice/connect"):
        # moved by an agent's answer as Redis failed: the caller joins that agent in the call's conference
        assert resp.xml.find("Dial/Conference").text == "hl-" + sid_of(4)


def test_with_redis_stopped_a_member_answering_their_callback_holds_with_the_tickets_place(
    rdown: tuple[Services, Twilio], fault_redis: RedisProcess,
) -> None:
    from callqueue.callbacks import attempts
    svc, tw = rdown
    with svc.unit_of_work() as s:
        t = tickets.create(s, phone="+8613800000070", tier="premium", lang="en", reason="after_hours", score=12345.0,
                           due=NOW, now=NOW, max_attempts=3).ticket
        attempts.claim(s, t.id, NOW)
    fault_redis.stop()
    resp = tw.post(f"/voice/callback/answer?ticket={t.id}&n=1", sid_of(70), caller="+864001234567")
    assert verbs(resp) == ["Say", "Say", "Enqueue"] and resp.xml.find("Enqueue").text == "hotline-degraded"
    assert "calling you back about ticket" in said(resp), "in the ticket's language"
    rec = record(svc, sid_of(70))
    assert (rec.score, rec.tier, rec.outcome) == (12345.0, "premium", "in_progress"), (
        "the ticket's place, for the rebuild"
    )
    assert ticket_rows(svc)[0].status == "connected"


def test_a_frozen_redis_costs_one_request_its_timeout_then_is_skipped_for_a_moment(
    services: Services, fault_redis: RedisProcess, twiml_check: Callable[[str], None],
    member_phones: dict[str, list[str]],
) -> None:
    svc = stores_services(services, fault_redis.url, timeout_s=2.0)  # the shipped default
    tw = Twilio(create_app(services=svc), twiml_check)
    fault_redis.freeze()
    try:
        t0 = time.perf_counter()
        first = tw.post("/voice/incoming", sid_of(5), caller=member_phones["premium"][0])
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = tw.post("/voice/incoming", sid_of(6), caller=member_phones["standard"][0])
        second_s = time.perf_counter() - t0
    finally:
        fault_redis.thaw()
    assert action(first).startswith("/voice/degraded/pin?") and action(second).startswith("/voice/degraded/offer?")
    assert 2.0 <= first_s < 4.0, "one timeout (2 s), not a retried one: far below Twilio's 15 s"
    assert second_s < 0.5, "the next request does not wait for the hung server again"
    figure("/voice/incoming with Redis frozen (first request, timeout 2 s)", f"{first_s:.2f} s")
    figure("/voice/incoming with Redis frozen (next request)", f"{second_s * 1000:.0f} ms")
    svc.redis.close()
