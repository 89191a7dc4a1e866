"""After hours through the webhooks: one open ticket per number, "check my ticket" (key 8) at the closed offer and in
the main menu, and a retried booking webhook that books once. Fixed instants, shipped hours."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from callqueue.callbacks import attempts, tickets
from core import keys
from tests.support.after_hours import (
    KEYED_E164,
    KEYED_MOBILE,
    SH,
    TUESDAY_NIGHT,
    WEDNESDAY_OPENING,
    all_tickets,
    book_directly,
    guest_to_callback,
    p,
    spaced,
    ticket_count,
)
from tests.support.members import PREMIUM_PIN, UNKNOWN_PHONE, Call

# --- one open ticket per number --------------------------------------------------------------------------------------

def test_a_second_call_from_the_same_number_hears_its_ticket_and_books_nothing_new(
    hotline_at, redis, db, premium_member
):
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


# --- check my ticket -------------------------------------------------------------------------------------------------

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


# --- a retried booking webhook ---------------------------------------------------------------------------------------

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
