"""The hotline on stores of the test's own, and signed webhooks into it as Twilio sends them, for the tests of a store
down (tests/faults/test_faults_{redis_down,rebuild,database_down,redis_restart}.py). Fixture: `member_phones`."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callqueue import records
from callqueue.callbacks.tickets import CallbackTicket
from callqueue.records import CallRecord
from core.db import make_session_factory
from core.redisconn import make_redis
from core.services import Services
from tests.support.common import PUBLIC_URL, sign
from tests.support.outages import Database
from tests.support.people import add_members

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2030, 3, 5, 10, 0, tzinfo=SH)  # a Tuesday morning (the test configuration is open all the time anyway)


def figure(name: str, value: Any) -> None:
    """A measured figure for the RELIABILITY section (shown with pytest -s)."""
    print(f"FIGURE {name}: {value}")


def stores_services(
    services: Services,
    redis_url: str,
    db: Database | None = None,
    clock: Callable[[], datetime] | None = None,
    timeout_s: float = 2.0,
) -> Services:
    """The test services with another Redis (and database): same configuration and gateway, fresh caches."""
    svc = replace(services, redis=make_redis(redis_url, timeout_s=timeout_s), redis_url=redis_url, extras={},
                  embedded=None, settings=replace(services.settings, redis_url=redis_url, redis_timeout_s=timeout_s),
                  clock=clock or (lambda: NOW))
    if db is not None:
        svc = replace(svc, engine=db.engine, sessions=make_session_factory(db.engine),
                      settings=replace(svc.settings, database_url=db.url))
    return svc


class Twilio:
    """Signed webhook requests into an app, as Twilio sends them; every 200 answer is checked against the schema."""

    def __init__(self, app: Any, twiml_check: Callable[[str], None]) -> None:
        self.client, self.check = app.test_client(), twiml_check

    def post(self, path: str, sid: str, caller: str = "+8613600000001", **params: str) -> Any:
        form = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": "+864001234567",
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **params}
        resp = self.client.post(path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, form)})
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True))
        body = resp.get_data(as_text=True)
        self.check(body)
        resp.xml = ET.fromstring(body)
        return resp


def verbs(resp: Any) -> list[str]:
    """The top-level verbs of a TwiML answer, in order."""
    return [child.tag for child in resp.xml]


def said(resp: Any) -> str:
    return " ".join((e.text or "") for e in resp.xml.iter("Say"))


def action(resp: Any, verb: str = "Gather") -> str:
    el = resp.xml.find(f".//{verb}")
    assert el is not None, ET.tostring(resp.xml, encoding="unicode")
    return el.get("action") or ""


def sid_of(n: int) -> str:
    return f"CA{n:032d}"


def ticket_rows(svc: Services) -> list[CallbackTicket]:
    with svc.sessions() as s:
        return list(s.scalars(select(CallbackTicket).order_by(CallbackTicket.id)))


def record(svc: Services, sid: str) -> CallRecord:
    with svc.sessions() as s:
        rec = records.get(s, sid)
        assert rec is not None, sid
        return rec


@pytest.fixture
def member_phones(services: Services) -> dict[str, list[str]]:
    """Members per tier (an annual premium, three premium, two standard), their phones by tier; PIN `PIN`."""
    return add_members(services, services.config, {"annual_premium": 1, "premium": 3, "standard": 2})
