"""After hours through the webhooks: the shipped hours at /voice/incoming (the closed notice and the offer), and
booking a callback ticket to the calling number, to a keyed-in one, or with the caller ID withheld. Fixed instants,
shipped hours."""
from __future__ import annotations

from datetime import UTC, datetime

from tests.support.after_hours import (
    KEYED_E164,
    KEYED_MOBILE,
    SH,
    SPACED_TICKET,
    TUESDAY_NIGHT,
    WEDNESDAY_OPENING,
    all_tickets,
    guest_to_callback,
    p,
    spaced,
    ticket_count,
)
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN, PREMIUM_UID, UNKNOWN_PHONE, Call

# --- the shipped hours at /voice/incoming ----------------------------------------------------------------------------

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


# --- a verified member books the calling number ----------------------------------------------------------------------

def test_member_verifies_and_books_a_callback_to_the_calling_number(hotline_at, redis, db, services, premium_member):
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


# --- a keyed-in number -----------------------------------------------------------------------------------------------

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


# --- a withheld caller ID --------------------------------------------------------------------------------------------

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
