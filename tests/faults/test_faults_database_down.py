"""Issue 9 (items 1, 2): the hotline with the database down (made unreachable for real, then restored), and with
both stores down: callers are answered, callbacks are kept in Redis and end in SQL exactly once; the degraded URLs
answer a damaged or stale request safely.

Figures the README's RELIABILITY section quotes are printed with a `FIGURE` prefix (pytest -s shows them).
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from callqueue.live import calls
from callqueue.recovery import capture
from core import keys
from core.services import Services
from hotline import jobs
from hotline.app import create_app
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
from tests.support.outages import Database, RedisProcess
from tests.support.people import add_people


def test_with_the_database_down_callers_are_answered_callbacks_kept_in_redis_end_in_sql_exactly_once(
    services: Services, fault_redis: RedisProcess, database: Database, twiml_check: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console import stores
    monkeypatch.setattr(stores, "CHECK_EVERY_S", 0.0)
    svc = stores_services(services, fault_redis.url, db=database)
    add_people(svc, ["ann"])
    app = create_app(services=svc)
    tw, console = Twilio(app, twiml_check), app.test_client()
    with console.session_transaction() as sess:
        sess["login"] = "ann"
    page = console.get("/agent").get_data(as_text=True)
    assert 'id="store-banner"' in page and "stores.js" in page
    assert console.get("/stores").json["ok"] is True
    jobs.rebuild(svc)  # the hotline has been running: the sweep has been over Redis before
    with svc.unit_of_work() as s:  # a guest waiting when the database goes
        calls.join_queue(s, svc.redis, sid_of(50), tier="guest", now=NOW - timedelta(seconds=60), settings=svc.config,
                         from_number="+8613600000050")

    database.cut()
    t0 = time.perf_counter()
    first = tw.post("/voice/incoming", sid_of(51), caller="+8613600000051")
    incoming_ms = (time.perf_counter() - t0) * 1000
    figure("/voice/incoming with the database down", f"{incoming_ms:.0f} ms")
    offer = action(first)
    assert offer.startswith("/voice/degraded/offer?") and "系统出现故障" in said(first)
    kept = tw.post(offer, sid_of(51), caller="+8613600000051", Digits="1")
    assert "已记下您的回拨请求" in said(kept) and verbs(kept)[-1] == "Hangup"
    tw.post(offer, sid_of(51), caller="+8613600000051", Digits="1")  # Twilio retries the request
    second_call = action(tw.post("/voice/incoming", sid_of(52), caller="+8613600000051"))  # the same number again
    tw.post(second_call, sid_of(52), caller="+8613600000051", Digits="1")
    tw.post(action(tw.post("/voice/incoming", sid_of(53), caller="+8613600000053")), sid_of(53),
            caller="+8613600000053", Digits="1")
    assert svc.redis.hlen(keys.OUTBOX_CALLBACKS) == 3, "one request per call"

    wait = tw.post("/voice/wait", sid_of(50), caller="+8613600000050", QueueSid="QU1")
    assert "您现在排在第1位" in said(wait), "the queue's hold loop needs no database"
    assert verbs(tw.post("/voice/queue-result", sid_of(50), QueueResult="hangup")) == ["Hangup"]
    for n in (50, 51, 52, 53):
        assert verbs(tw.post("/voice/status", sid_of(n), CallStatus="completed")) == []
    assert svc.redis.zscore(keys.ORDER, sid_of(50)) is None, "Redis's half of the hang-up happened"

    status = console.get("/stores").json
    assert (status["ok"], status["database"], status["redis"], status["captured_callbacks"]) == (False, "down", "up", 3)
    assert "数据库暂时无法访问" in status["message"] and "3" in status["message"]
    from sqlalchemy.exc import OperationalError
    with pytest.raises(OperationalError):
        jobs.rebuild(svc)  # a sweep while the database is still down loses nothing
    assert capture.outbox_sizes(svc.redis)[0] == 3

    database.restore()
    out = jobs.rebuild(svc)
    assert out["captured_written"] == 2 and capture.outbox_sizes(svc.redis) == (0, 0)
    rows = ticket_rows(svc)
    assert sorted((t.phone, t.source_call_sid, t.reason, t.status) for t in rows) == [
        ("+8613600000051", sid_of(51), "outage", "scheduled"), ("+8613600000053", sid_of(53), "outage", "scheduled")]
    assert all(t.due == NOW for t in rows), "due at once: the callback sweep dials them"
    assert (record(svc, sid_of(50)).outcome, record(svc, sid_of(50)).waited_s) == ("abandoned", 60.0)
    assert [record(svc, sid_of(n)).outcome for n in (51, 52, 53)] == ["ivr"] * 3
    queued_jobs = svc.jobs().rq.get_job_ids()
    assert sum(j.startswith("callback-") for j in queued_jobs) == 2, "each new ticket's job, after its commit"
    from callqueue.reports import stats
    with svc.sessions() as s:
        recomputed = stats.from_records(s, NOW, svc.config, "today")
    live = stats.live(svc.redis, NOW, svc.config, "today")
    assert live["overall"] == recomputed["overall"], "the replayed records agree with the live counters"
    again = jobs.rebuild(svc)
    assert "captured_written" not in again and len(ticket_rows(svc)) == 2, "exactly once"
    assert console.get("/stores").json["ok"] is True
    figure(
        "callbacks captured in Redis while the database was down / tickets written when it returned",
        "3 / 2 (one number called twice)",
    )


def test_with_both_stores_down_callers_hear_an_apology_and_holding_callers_keep_holding(
    services: Services, fault_redis: RedisProcess, database: Database, twiml_check: Callable[[str], None],
) -> None:
    svc = stores_services(services, fault_redis.url, db=database)
    tw = Twilio(create_app(services=svc), twiml_check)
    database.cut()
    fault_redis.stop()
    incoming = tw.post("/voice/incoming", sid_of(60))
    assert verbs(incoming) == ["Say", "Hangup"] and "抱歉" in said(incoming)
    assert verbs(tw.post("/voice/wait", sid_of(61), QueueSid="QU1")) == ["Say", "Pause"]
    assert verbs(tw.post("/voice/degraded/hold?t=12345678&l=zh", sid_of(61))) == ["Say", "Say", "Pause"]
    assert verbs(tw.post("/voice/status", sid_of(61), CallStatus="completed")) == []
    # The connected call's webhooks (issue 16): an agent's leg rung for a holding caller, and the conference.
    leg, agent_leg = "CA" + "e" * 32, f"?caller={sid_of(62)}&agent=ann&offer=1"
    # a missed offer: nothing to do, the caller never left their queue (they keep holding)
    assert verbs(tw.post("/voice/agent/status" + agent_leg, leg, CallStatus="no-answer")) == []
    # an answer nobody can be moved to: the agent hears why and their leg ends, the caller keeps holding
    answered = tw.post("/voice/agent/answer" + agent_leg, leg, Direction="outbound-api")
    assert verbs(answered) == ["Say", "Say", "Hangup"] and "系统出现故障" in said(answered)
    joined = tw.post("/voice/connect?agent=ann", sid_of(62))  # moved just before: the caller joins the agent
    assert verbs(joined) == ["Dial", "Say", "Hangup"] and joined.xml.find("Dial/Conference").text == "hl-" + sid_of(62)
    conference = {"ConferenceSid": "CF" + "c" * 32, "FriendlyName": "hl-" + sid_of(62), "SequenceNumber": "1"}
    assert verbs(tw.post("/voice/conference/status", leg, StatusCallbackEvent="participant-leave",
                         ParticipantLabel="agent", ReasonParticipantLeft="participant_hung_up", **conference)) == []
    assert verbs(tw.post("/voice/conference/hold", sid_of(62))) == ["Say", "Pause", "Redirect"]  # held: hold audio


def test_the_store_status_needs_a_login_but_not_the_database(app: Any) -> None:
    client = app.test_client()
    resp = client.get("/stores")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path, params, expect", [
    ("/voice/degraded/pin?m=abc&n=0", {"Digits": "2468"}, ["Gather", "Say", "Hangup"]),
    ("/voice/degraded/pin?m=999999&n=0", {"Digits": "2468"}, ["Say", "Gather", "Say", "Hangup"]),
    ("/voice/degraded/pin?m=1&n=0", {"Digits": "12"}, ["Say", "Gather", "Redirect"]),
    ("/voice/degraded/offer?t=nonsense&l=xx", {"Digits": "1"}, ["Say", "Say", "Hangup"]),
    ("/voice/degraded/offer?t=guest&l=zh", {"Digits": "9"}, ["Say", "Hangup"]),
    ("/voice/degraded/hold?t=notanumber&l=en", {}, ["Say", "Pause"]),
])
def test_the_degraded_urls_answer_a_damaged_or_stale_request_safely(
    voice: Callable[..., Any], path: str, params: dict[str, str], expect: list[str],
) -> None:
    resp = voice(path, {"CallSid": sid_of(80), "From": "+8613600000080", **params})
    assert resp.status_code == 200
    assert [child.tag for child in ET.fromstring(resp.get_data(as_text=True))] == expect
