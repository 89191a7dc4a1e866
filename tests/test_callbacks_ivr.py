"""After hours through the webhooks: the closed notice and offer, booking a callback ticket (calling number or a keyed-in
one), one open ticket per number, "check my ticket", and a retried booking webhook. Fixed instants, shipped hours."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callqueue.callbacks import attempts, tickets
from callqueue.callbacks.tickets import CallbackTicket
from core import keys
from hotline.app import create_app
from hotline.configuration import full_config
from tests.conftest import PUBLIC_URL, sign
from tests.test_ivr_calls import PREMIUM_PHONE, PREMIUM_PIN, PREMIUM_UID, UNKNOWN_PHONE, Call, make_member

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
def premium(db: Any, services: Any) -> int:
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


# --- 1. the shipped hours at /voice/incoming ------------------------------------------------------------------

def test_national_day_is_closed_with_the_notice_and_the_offer(hotline_at, redis):
    call = Call(hotline_at(datetime(2026, 10, 1, 10, 0, tzinfo=SH)), redis, caller=UNKNOWN_PHONE)
    call.start()
    # Oct 1-7 is the announced block (Sunday the 4th included); Thursday Oct 8 opens at 09:00.
    assert p("closed", month=10, day=8, time="09:00") in call.said
    assert p("closed_offer") in call.said and p("menu_main") not in call.said
    assert call.gather.get("action", "").startswith("/voice/ivr/closed?")
    assert call.state.closed and call.state.step == "closed"
    assert call.state.opens.startswith("2026-10-08T09:00")


def test_a_make_up_working_saturday_is_open_with_the_main_menu(hotline_at, redis):
    call = Call(hotline_at(datetime(2026, 10, 10, 10, 0, tzinfo=SH)), redis, caller=UNKNOWN_PHONE)
    call.start()
    assert p("menu_main") in call.said
    assert "非服务时间" not in call.said and p("closed_offer") not in call.said
    assert call.state.step == "menu" and not call.state.closed


def test_an_ordinary_weekday_at_22_00_is_closed_and_names_the_next_opening(hotline_at, redis):
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    says = [e.text for e in call.doc.iter("Say")]
    assert p("closed", month=11, day=25, time="09:00") in says  # "…将于11月25日09:00开放。"
    assert p("closed_offer") in call.said and call.state.step == "closed"


def test_an_ordinary_weekday_at_20_59_is_still_open(hotline_at, redis):
    call = Call(hotline_at(datetime(2026, 11, 24, 20, 59, tzinfo=SH)), redis, caller=UNKNOWN_PHONE)
    call.start()
    assert p("menu_main") in call.said and call.state.step == "menu"


# --- 2. a verified member books the calling number ------------------------------------------------------------

def test_member_verifies_and_books_a_callback_to_the_calling_number(hotline_at, redis, db, services, premium):
    sid = "CA" + "c" * 32
    call = Call(hotline_at(TUESDAY_NIGHT), redis, sid=sid)
    call.start()
    assert p("closed", month=11, day=25, time="09:00") in call.said and p("pin_prompt") in call.said
    call.press(PREMIUM_PIN)
    assert "大会员" in call.said and p("closed_offer") in call.said
    assert call.state.verified and call.state.step == "closed"
    call.press("1")
    assert call.state.step == "cbnum" and call.state.cb_phone == PREMIUM_PHONE
    assert p("cb_number", digits="1 3 8 0 0 0 0 0 0 0 1") in call.said
    assert ticket_count(db) == 0  # nothing booked before the caller confirms
    call.press("1")

    [t] = all_tickets(db)
    assert (t.phone, t.tier, t.member_uid, t.reason, t.status) == (
        PREMIUM_PHONE,
        "premium",
        PREMIUM_UID,
        "after_hours",
        "scheduled",
    )
    assert t.due == WEDNESDAY_OPENING.astimezone(UTC)  # due at the next opening
    assert t.source_call_sid == sid and t.lang == "zh" and t.attempts == 0
    assert len(t.number) == 8 and t.number.isdigit() and t.number[0] != "0"
    assert p("ticket_created", number=spaced(t.number), month=11, day=25, time="09:00") in call.said
    assert SPACED_TICKET.search(call.said) and spaced(t.number) in call.said
    assert call.ended and call.doc.find("Gather") is None
    assert call.said.strip().endswith(p("goodbye")) and call.state.step == "end"
    # the ticket's dialling job waits for the due time
    scheduled = services.jobs().rq.scheduled_job_registry.get_job_ids()
    assert f"callback-{t.id}-1" in scheduled


# --- 3. a keyed-in number -------------------------------------------------------------------------------------

def test_keyed_in_number_refuses_invalid_and_foreign_then_reads_back_re_enters_and_books(hotline_at, redis, db):
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    guest_to_callback(call)
    assert call.state.step == "cbnum" and p("cb_number", digits="1 3 7 0 0 0 0 0 0 0 3") in call.said
    call.press("2")
    assert p("cb_enter") in call.said and call.state.step == "cbenter"
    assert call.gather.get("finishOnKey") == "#" and call.gather.get("numDigits") is None

    call.press("123")  # keyed "123#": Twilio sends the digits before the finishing key
    assert p("cb_invalid") in call.said and p("cb_enter") in call.said
    assert call.state.step == "cbenter" and call.state.tries == 1 and ticket_count(db) == 0

    call.press("0012025550123")  # a US number through the international prefix: foreign numbers are refused
    assert p("cb_invalid") in call.said and call.state.step == "cbenter" and ticket_count(db) == 0

    call.press(KEYED_MOBILE)
    assert call.state.step == "cbconfirm" and call.state.cb_phone == KEYED_E164 and call.state.tries == 0
    assert p("cb_readback", digits="1 3 8 0 0 1 3 8 0 0 0") in call.said
    call.press("2")  # enter it again
    assert p("cb_enter") in call.said and call.state.step == "cbenter" and call.state.cb_phone == ""
    call.press(KEYED_MOBILE)
    assert p("cb_readback", digits="1 3 8 0 0 1 3 8 0 0 0") in call.said and ticket_count(db) == 0
    call.press("1")

    [t] = all_tickets(db)
    assert (t.phone, t.tier, t.member_uid, t.reason) == (KEYED_E164, "guest", None, "after_hours")
    assert spaced(t.number) in call.said and call.ended


def test_a_shared_cost_400_number_is_refused_and_too_many_bad_numbers_end_politely(hotline_at, redis, db):
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    guest_to_callback(call)
    call.press("2")
    call.press("4001234567")  # a CN 400 number: SHARED_COST, refused by default
    assert p("cb_invalid") in call.said and p("cb_enter") in call.said and call.state.step == "cbenter"
    call.press("+12025550123")
    assert p("cb_invalid") in call.said and call.state.step == "cbenter"
    call.press("123")
    assert p("cb_invalid") in call.said and p("offer_sms") in call.said  # the polite fallback
    assert call.state.step == "offer" and p("cb_enter") not in call.said
    assert ticket_count(db) == 0
    assert call.doc.find("Redirect") is None  # silence at the offer ends the call politely


def test_silence_at_the_readback_is_a_failed_try_not_a_booking(hotline_at, redis, db):
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    guest_to_callback(call)
    call.press("2")
    call.press(KEYED_MOBILE)
    call.silence()
    assert p("retry_no_input") in call.said and p("cb_readback", digits="1 3 8 0 0 1 3 8 0 0 0") in call.said
    call.press("7")
    assert p("retry_invalid") in call.said and call.state.step == "cbconfirm"
    assert ticket_count(db) == 0


# --- 4. a withheld caller ID ----------------------------------------------------------------------------------

def test_withheld_caller_id_goes_straight_to_keying_in_a_number(hotline_at, redis, db):
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller="anonymous")
    call.start()
    assert call.state.caller == "" and p("closed_offer") in call.said
    guest_to_callback(call)
    assert call.state.step == "cbenter" and p("cb_enter") in call.said
    assert "我们将回拨到号码" not in call.said  # no calling number to offer
    call.press(KEYED_MOBILE)
    call.press("1")
    [t] = all_tickets(db)
    assert t.phone == KEYED_E164 and spaced(t.number) in call.said and call.ended


# --- 5. one open ticket per number ----------------------------------------------------------------------------

def test_a_second_call_from_the_same_number_hears_its_ticket_and_books_nothing_new(hotline_at, redis, db, premium):
    voice = hotline_at(TUESDAY_NIGHT)
    first = Call(voice, redis, sid="CA" + "d" * 32)
    first.start()
    first.press(PREMIUM_PIN)
    first.press("1")
    first.press("1")
    [t] = all_tickets(db)

    later = hotline_at(TUESDAY_NIGHT + timedelta(minutes=30))
    second = Call(later, redis, sid="CA" + "e" * 32)
    second.start()
    exists = p("ticket_exists", number=spaced(t.number))
    says = [e.text for e in second.doc.iter("Say")]
    assert exists in says
    assert says.index(exists) < len(says) - 1 and p("pin_prompt") in says[-2:]  # told before the first question
    second.press(PREMIUM_PIN)
    second.press("1")
    assert second.state.step == "cbnum"
    second.press("1")
    assert p("ticket_exists", number=spaced(t.number)) in second.said
    assert "已为您登记回拨" not in second.said and second.ended
    assert [x.number for x in all_tickets(db)] == [t.number]


def test_a_keyed_in_number_that_has_an_open_ticket_books_nothing_new(hotline_at, redis, db):
    existing = book_directly(db, KEYED_E164, WEDNESDAY_OPENING, TUESDAY_NIGHT - timedelta(hours=1))
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller="anonymous")
    call.start()
    guest_to_callback(call)
    call.press(KEYED_MOBILE)
    call.press("1")
    assert p("ticket_exists", number=spaced(existing.number)) in call.said
    assert ticket_count(db) == 1


def test_after_a_ticket_is_closed_the_number_may_book_again(hotline_at, redis, db):
    old = book_directly(db, UNKNOWN_PHONE, WEDNESDAY_OPENING, TUESDAY_NIGHT - timedelta(days=1))
    tickets.cancel(db, old.number, TUESDAY_NIGHT - timedelta(hours=2), by="sam")
    db.commit()
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    assert "您已有一张回拨工单" not in call.said
    guest_to_callback(call)
    call.press("1")
    rows = all_tickets(db)
    assert [r.status for r in rows] == ["cancelled", "scheduled"] and rows[1].number != old.number
    assert spaced(rows[1].number) in call.said


# --- 6. check my ticket ---------------------------------------------------------------------------------------

def test_key_8_at_the_closed_offer_reads_the_open_ticket(hotline_at, redis, db):
    t = book_directly(db, UNKNOWN_PHONE, WEDNESDAY_OPENING, TUESDAY_NIGHT - timedelta(hours=1))
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("8")
    status = p("ticket_scheduled", month=11, day=25, time="09:00")
    assert p("ticket_open", number=spaced(t.number), status=status) in call.said
    assert p("closed_offer") in call.said and call.state.step == "closed"  # asked again
    assert ticket_count(db) == 1


def test_key_8_at_the_closed_offer_with_no_open_ticket_says_none(hotline_at, redis, db):
    done = book_directly(db, UNKNOWN_PHONE, TUESDAY_NIGHT - timedelta(days=1), TUESDAY_NIGHT - timedelta(days=2))
    tickets.cancel(db, done.number, TUESDAY_NIGHT - timedelta(days=1), by="sam")  # closed tickets do not count
    db.commit()
    call = Call(hotline_at(TUESDAY_NIGHT), redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("8")
    assert p("ticket_none") in call.said and "您的回拨工单号是" not in call.said
    assert p("closed_offer") in call.said and call.state.step == "closed"


def test_key_8_in_the_main_menu_in_hours_reads_a_retrying_ticket(hotline_at, redis, db):
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=SH)
    t = book_directly(db, UNKNOWN_PHONE, WEDNESDAY_OPENING, TUESDAY_NIGHT)
    claimed = attempts.claim(db, t.id, noon - timedelta(minutes=5))
    assert claimed is not None
    attempts.ended(db, t.id, claimed.n, "no-answer", noon - timedelta(minutes=5), retry_delay_s=600)
    db.commit()
    call = Call(hotline_at(noon), redis, caller=UNKNOWN_PHONE)
    call.start()
    assert call.state.step == "menu"
    call.press("8")
    status = p("ticket_retry", month=11, day=25, time="12:05")
    assert p("ticket_open", number=spaced(t.number), status=status) in call.said
    assert p("menu_main") in call.said and call.state.step == "menu"


def test_key_8_in_the_main_menu_in_hours_reads_a_ringing_ticket_and_none_for_another_number(hotline_at, redis, db):
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=SH)
    t = book_directly(db, UNKNOWN_PHONE, WEDNESDAY_OPENING, TUESDAY_NIGHT)
    assert attempts.claim(db, t.id, noon) is not None
    db.commit()
    voice = hotline_at(noon)
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("8")
    assert p("ticket_open", number=spaced(t.number), status=p("ticket_dialing")) in call.said
    other = Call(voice, redis, sid="CA" + "f" * 32, caller="+8613900000002")
    other.start()
    other.press("8")
    assert p("ticket_none") in other.said


# --- 7. a retried booking webhook -----------------------------------------------------------------------------

def _to_confirmation(hotline_at: Any, redis: Any, sid: str) -> Call:
    call = Call(hotline_at(TUESDAY_NIGHT), redis, sid=sid, caller=UNKNOWN_PHONE)
    call.start()
    guest_to_callback(call)
    assert call.state.step == "cbnum"
    return call


def test_a_retried_booking_webhook_books_once(hotline_at, redis, db):
    call = _to_confirmation(hotline_at, redis, "CA" + "7" * 32)
    action = call.gather.get("action", "")
    call.post(action, Digits="1")
    [t] = all_tickets(db)
    assert spaced(t.number) in call.said
    call.post(action, Digits="1")  # Twilio retries the same request: same CallSid, step and seq
    assert call.ended
    assert [x.number for x in all_tickets(db)] == [t.number]
    assert call.state.step == "end"


def test_a_retry_racing_the_first_request_gets_the_same_ticket_number(hotline_at, redis, db):
    """The retry arrives before the first request's session write is seen: the SQL booking is keyed by the CallSid."""
    sid = "CA" + "8" * 32
    call = _to_confirmation(hotline_at, redis, sid)
    action = call.gather.get("action", "")
    session_before = redis.hgetall(keys.ivr_session(sid))
    call.post(action, Digits="1")
    [t] = all_tickets(db)
    first = call.said
    redis.hset(keys.ivr_session(sid), mapping=session_before)  # as the racing retry sees it
    call.post(action, Digits="1")
    assert [x.number for x in all_tickets(db)] == [t.number]
    assert p("ticket_created", number=spaced(t.number), month=11, day=25, time="09:00") in call.said
    assert call.said == first and call.ended
