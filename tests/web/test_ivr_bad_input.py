"""Bad input, repeated webhooks, lost sessions and store failures: a clear prompt, nothing changed that should not
be, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
import redis as redis_lib

from core import keys
from members.models import Member
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN, PREMIUM_UID, STANDARD_PIN, UNKNOWN_PHONE, Call, prompt


@pytest.mark.parametrize("digits", ["7", "12", "*", "abc", "９"])
def test_a_key_that_leads_nowhere_at_the_menu_is_sorry_and_asked_again(voice, redis, services, members, digits):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press(digits)
    assert prompt(services, "retry_invalid") in call.said and prompt(services, "menu_main") in call.said
    assert (call.state.step, call.state.node, call.state.tries) == ("menu", "main", 1)


@pytest.mark.parametrize("pin", ["12", "1" * 100, "abcd", "12*4", "１２３４"])
def test_a_pin_that_cannot_be_a_pin_is_explained_and_not_counted(voice, redis, services, members, db, pin):
    call = Call(voice, redis)
    call.start()
    call.press(pin)
    assert "4到8位数字" in call.said and call.state.step == "pin"
    assert db.get(Member, members["premium"], populate_existing=True).failed_pins == 0


def test_star_at_the_pin_prompt_continues_as_guest(voice, redis, services, members):
    call = Call(voice, redis)
    call.start()
    call.press("*")
    assert prompt(services, "as_guest") in call.said and call.state.step == "menu" and not call.state.verified
    call.press("0")  # asking for an agent later asks for the PIN again
    assert call.state.step == "pin" and call.state.after == "queue"
    call.press(PREMIUM_PIN)
    assert call.queued and call.state.tier == "premium"


@pytest.mark.parametrize("uid,reason", [("abc", "uid_format"), ("1" * 21, "uid_format"), ("99999", "uid_unknown")])
def test_a_bad_or_unknown_member_number_is_explained(voice, redis, services, members, uid, reason):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("0")
    call.press(uid)
    assert (
        prompt(services, reason).split("{")[0] in call.said
        and call.state.step == "uid"
        and call.state.member_id is None
    )


def test_star_at_the_member_number_prompt_queues_as_guest(voice, redis, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("5")
    call.press("0")
    call.press("*")
    assert call.queued and (call.state.tier, call.state.verified, call.state.category) == ("guest", False, "report")


def test_a_pin_of_another_member_is_a_wrong_pin(voice, redis, services, members, db):
    call = Call(voice, redis)
    call.start()
    call.press(STANDARD_PIN)
    assert call.state.step == "pin" and not call.state.verified
    assert (
        db.get(Member, members["premium"], populate_existing=True).failed_pins == 1
        and db.get(Member, members["standard"], populate_existing=True).failed_pins == 0
    )


def test_failing_the_member_number_three_times_ends_with_the_offer(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("0")
    for _ in range(3):
        call.press("99999")
    assert call.state.step == "offer" and prompt(services, "offer_sms") in call.said


def test_a_retried_incoming_webhook_gets_the_same_answer(voice, redis, members):
    call = Call(voice, redis)
    first = call.start()
    again = call.start()
    assert first == again and call.state.seq == 0


def test_a_repeated_answer_is_not_counted_twice(voice, redis, members, db):
    call = Call(voice, redis)
    call.start()
    action = call.gather.get("action", "")
    call.post(action, Digits="1111")
    call.post(action, Digits="1111")  # Twilio retrying the same request
    assert db.get(Member, members["premium"], populate_existing=True).failed_pins == 1 and call.state.seq == 1
    assert call.gather.get("action") == "/voice/ivr/pin?s=1"


def test_a_url_for_another_step_asks_the_current_question_again(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.post("/voice/ivr/pin?s=0", Digits="2468")
    assert call.state.step == "menu" and prompt(services, "menu_main") in call.said


def test_a_lost_session_starts_the_call_again(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    redis.flushdb()
    call.post("/voice/ivr/menu?s=0", Digits="1")
    assert prompt(services, "greeting") in call.said and call.state.step == "menu"


def test_a_number_with_too_many_wrong_pins_is_refused(voice, redis, services, members, db):
    redis.set(keys.pin_failures(PREMIUM_PHONE), services.config["verification"]["number_attempts_per_hour"])
    call = Call(voice, redis)
    call.start()
    assert prompt(services, "number_blocked") in call.said and call.state.locked == "number"
    call.press("0")
    assert call.queued and call.state.tier == "guest"


def test_wrong_pins_count_against_the_calling_number_across_members(voice, redis, services, members, db):
    limit = services.config["verification"]["number_attempts_per_hour"]
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("0")
    call.press(PREMIUM_UID)
    call.press("0000")
    assert (
        int(redis.get(keys.pin_failures(UNKNOWN_PHONE))) == 1
        and 0 < redis.ttl(keys.pin_failures(UNKNOWN_PHONE)) <= 3600
    )
    redis.set(keys.pin_failures(UNKNOWN_PHONE), limit)
    call.press(PREMIUM_PIN)  # even the right PIN is refused now
    assert call.state.locked == "number" and not call.state.verified
    assert (
        db.get(Member, members["premium"], populate_existing=True).failed_pins == 1
    )  # the member was not charged for the refusal


def test_a_store_failure_is_the_degraded_answer_not_a_500(voice, redis, services, members, monkeypatch):
    """Redis failing mid-request: the premium member is asked for the PIN against SQL (webhooks/degraded/answers.py);
    an unknown caller hears the notice and the callback offer. Full outages: tests/faults/test_faults_*_down.py."""
    def broken(*_a: Any, **_k: Any) -> Any:
        raise redis_lib.ConnectionError("redis is down")

    monkeypatch.setattr(services.redis, "pipeline", broken)
    resp = voice("/voice/incoming", {"From": PREMIUM_PHONE})
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert prompt(services, "degraded_notice") in body and "/voice/degraded/pin?" in body
    body = voice("/voice/incoming", {"From": "+8613900000999", "CallSid": "CA" + "9" * 32}).get_data(as_text=True)
    assert prompt(services, "degraded_offer") in body and "/voice/degraded/offer" in body


def test_withheld_caller_id_is_treated_as_unknown(voice, redis, services, members):
    call = Call(voice, redis, caller="anonymous")
    call.start()
    assert call.state.caller == "" and call.state.step == "menu"
    call.press("1")
    call.press("1")
    assert prompt(services, "sms_unavailable") in call.said


def test_each_answer_costs_at_most_two_redis_round_trips(voice, redis, members, monkeypatch):
    call = Call(voice, redis)
    call.start()
    sent = []
    original = redis_lib.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        return original(self, command, check_health)

    monkeypatch.setattr(redis_lib.connection.AbstractConnection, "send_packed_command", counting)
    for digits in (PREMIUM_PIN, "1", "*"):
        sent.clear()
        call.press(digits)
        assert len(sent) <= 2, (digits, len(sent))
    sent.clear()
    call.press("0")
    # joining the queue: session read, session write, the enqueue script, the holding-pen shard;
    # no dispatch request while no agent is available
    assert len(sent) <= 4, len(sent)
    assert call.queued


def test_sql_statements_per_webhook_are_few(voice, redis, services, members):
    from sqlalchemy import event

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(services.engine, "before_cursor_execute", record)
    try:
        call = Call(voice, redis)
        call.start()
        assert statements == ["SELECT", "INSERT"]  # the caller ID lookup, the call record (one idempotent INSERT)
        statements.clear()
        call.press("1111")
        assert statements == ["SELECT", "UPDATE"]  # the member (for update), its failure count
        statements.clear()
        call.press(PREMIUM_PIN)
        assert statements == ["SELECT", "UPDATE", "UPDATE"]  # …and the call record notes the verification
        statements.clear()
        call.press("1")
        call.press("*")
        assert statements == []  # menus touch no SQL
    finally:
        event.remove(services.engine, "before_cursor_execute", record)
