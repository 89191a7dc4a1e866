"""After hours through the webhooks (tests/web/test_callbacks_ivr_*.py): the shipped hours, fixed instants, an app
whose clock stands at one of them (fixture `hotline_at`), a premium member (fixture `premium_member`), and the
callback tickets in SQL."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callqueue.callbacks import tickets
from callqueue.callbacks.tickets import CallbackTicket
from hotline.app import create_app
from hotline.configuration import full_config
from tests.support.common import PUBLIC_URL, sign
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN, PREMIUM_UID, Call, make_member

SH = ZoneInfo("Asia/Shanghai")
SHIPPED = full_config(None)  # the shipped hours: CN holidays, weekdays 09:00-21:00, weekends 10:00-18:00
TUESDAY_NIGHT = datetime(2026, 11, 24, 22, 0, tzinfo=SH)  # an ordinary Tuesday, after 21:00
WEDNESDAY_OPENING = datetime(2026, 11, 25, 9, 0, tzinfo=SH)
KEYED_MOBILE, KEYED_E164 = "13800138000", "+8613800138000"
SPACED_TICKET = re.compile(r"(?<![\d ])[1-9]( \d){7}(?! ?\d)")  # an 8-digit ticket number read digit by digit


def p(name: str, **params: Any) -> str:
    """Prompt `name` in Mandarin with its placeholders filled."""
    text = SHIPPED.prompt(name, "zh")
    for k, v in params.items():
        text = text.replace("{" + k + "}", str(v))
    return text


def spaced(number: str) -> str:
    return " ".join(number)


@pytest.fixture
def hotline_at(services: Any, twiml_check: Callable[[str], None]) -> Callable[..., Callable[..., Any]]:
    """`hotline_at(instant)`: a signed-webhook poster for an app whose clock stands at `instant` (shipped hours)."""

    def build(at: datetime, config: Any = SHIPPED) -> Callable[..., Any]:
        svc = dataclasses.replace(services, clock=lambda: at, config=config,
                                  extras={"jobs": services.jobs()})  # the flow and hours are built afresh
        client = create_app(services=svc).test_client()

        def post(path: str, params: dict[str, str] | None = None) -> Any:
            params = {
                "CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": "+8613800000001",
                "To": "+864001234567", "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
                **(params or {}),
            }
            resp = client.post(path, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + path, params)})
            if resp.status_code == 200 and resp.mimetype == "application/xml":
                twiml_check(resp.get_data(as_text=True))
            return resp

        return post

    return build


@pytest.fixture
def premium_member(db: Any, services: Any) -> int:
    """A premium member whose phone is the default caller ID."""
    return make_member(
        db, SHIPPED, PREMIUM_UID, "premium", PREMIUM_PHONE, PREMIUM_PIN, pin_key=services.settings.pin_key_bytes
    )


def all_tickets(db: Any) -> list[CallbackTicket]:
    db.expire_all()
    return list(db.scalars(select(CallbackTicket).order_by(CallbackTicket.id)))


def ticket_count(db: Any) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count(CallbackTicket.id))) or 0)


def book_directly(db: Any, phone: str, due: datetime, now: datetime, **kw: Any) -> tickets.Ticket:
    created = tickets.create(db, phone=phone, tier=kw.pop("tier", "guest"), lang="zh", reason="after_hours", score=0.0,
                             due=due, now=now, max_attempts=3, **kw)
    db.commit()
    assert created.new
    return created.ticket


def guest_to_callback(call: Call) -> None:
    """From the closed offer: 1 (call me back), then * at the member number (go on as a guest)."""
    assert call.state.step == "closed"
    call.press("1")
    assert p("uid_prompt") in call.said and call.state.step == "uid"
    call.press("*")
    assert p("as_guest") in call.said
