"""Whole IVR calls, step by step, through signed webhooks (every TwiML document is schema-checked by `voice`)."""
from __future__ import annotations

from datetime import UTC, datetime

from members.models import Member
from tests.support.members import PREMIUM_PIN, PREMIUM_UID, UNKNOWN_PHONE, Call, prompt


def test_premium_member_with_known_caller_id_and_right_pin_reaches_the_queue_as_premium(
    voice, redis, services, members
):
    call = Call(voice, redis)
    call.start()
    assert prompt(services, "greeting") in call.said and prompt(services, "pin_prompt") in call.said
    assert call.gather.get("finishOnKey") == "#" and call.gather.get("input") == "dtmf"
    call.press(PREMIUM_PIN)
    assert "大会员" in call.said and call.state.verified and call.state.tier == "premium"
    assert prompt(services, "menu_main") in call.said
    call.press("0")
    assert call.queued and prompt(services, "to_agent") in call.said
    st = call.state
    assert (st.step, st.tier, st.verified, st.category, st.uid) == ("queue", "premium", True, "general", PREMIUM_UID)


def test_a_members_older_scrypt_pin_hash_is_replaced_at_the_first_right_pin(
    voice, redis, services, members, db, caplog
):
    from core.passwords import hash_secret, pin_key_id, verify_pin_hash

    caplog.set_level("INFO")
    member = db.get(Member, members["premium"])
    member.pin_hash = hash_secret(PREMIUM_PIN)
    db.commit()
    call = Call(voice, redis)
    call.start()
    call.press(PREMIUM_PIN)
    assert call.state.verified and call.state.tier == "premium"
    db.expire_all()
    stored = db.get(Member, members["premium"]).pin_hash  # committed by the webhook
    key = services.settings.pin_key_bytes
    assert stored.startswith(f"hmac-sha256${pin_key_id(key)}$") and verify_pin_hash(PREMIUM_PIN, stored, key)
    assert "pin checked" in caplog.text and PREMIUM_PIN not in caplog.text and stored not in caplog.text


def test_verified_member_choosing_a_category_then_agent_carries_the_category(voice, redis, members):
    call = Call(voice, redis)
    call.start()
    call.press(PREMIUM_PIN)
    call.press("2")
    call.press("0")
    assert call.queued and (call.state.category, call.state.tier) == ("billing", "premium")


def test_same_member_from_an_unknown_number_verifies_with_uid_and_pin(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    assert prompt(services, "pin_prompt") not in call.said and prompt(services, "menu_main") in call.said
    call.press("0")
    assert prompt(services, "uid_prompt") in call.said and call.state.step == "uid"
    call.press(PREMIUM_UID)
    assert prompt(services, "pin_prompt") in call.said
    call.press(PREMIUM_PIN)
    assert call.queued
    st = call.state
    assert (st.tier, st.verified, st.uid, st.category) == ("premium", True, PREMIUM_UID, "general")


def test_three_wrong_pins_lock_the_member_and_a_fourth_call_is_refused(voice, redis, services, members, db):
    call = Call(voice, redis)
    call.start()
    call.press("1111")
    assert "2" in call.said and call.state.step == "pin"
    call.press("2222")
    call.press("3333")
    assert "15" in call.said and call.state.locked == "member"  # "locked … try again in 15 minutes"
    assert call.state.step == "menu" and not call.state.verified  # the self-service menu, not the queue
    member = db.get(Member, members["premium"], populate_existing=True)
    assert member.locked_until is not None and member.locked_until > datetime.now(UTC)

    fourth = Call(voice, redis, sid="CA" + "b" * 32)
    fourth.start()
    assert prompt(services, "pin_prompt") not in fourth.said and "15" in fourth.said
    assert fourth.state.locked == "member" and fourth.state.step == "menu"
    fourth.press("0")  # asks for an agent: no verification, queued as a guest
    assert fourth.queued and (fourth.state.tier, fourth.state.verified) == ("guest", False)


def test_locked_member_from_another_number_is_refused_at_the_member_number(voice, redis, services, members, db):
    member = db.get(Member, members["premium"], populate_existing=True)
    member.locked_until = datetime(2999, 1, 1, tzinfo=UTC)
    db.commit()
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("0")
    call.press(PREMIUM_UID)
    assert call.state.locked == "member" and call.state.step == "menu" and prompt(services, "menu_main") in call.said


def test_silence_three_times_ends_politely_with_the_sms_offer(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.silence()
    assert prompt(services, "retry_no_input") in call.said and call.state.tries == 1
    call.silence()
    call.silence()
    assert prompt(services, "offer_sms") in call.said and call.state.step == "offer"
    assert call.ended  # silence at the offer: goodbye and hang up, never a silent hang-up
    assert call.said.strip().endswith(prompt(services, "goodbye"))


def test_english_chosen_with_9_stays_english(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    assert "For English, press 9." in call.said and call.voices == {"Polly.Zhiyu"}
    offer = [e for e in call.doc.iter("Say") if e.text == "For English, press 9."]
    assert offer[0].get("voice") == "Polly.Joanna" and offer[0].get("language") == "en-US"
    call.press("9")
    assert call.voices == {"Polly.Joanna"} and prompt(services, "menu_main", "en") in call.said
    assert "普通话服务请按9。" in call.said  # the way back, in Mandarin
    call.press("3")
    assert call.voices == {"Polly.Joanna"} and prompt(services, "answer_playback", "en") in call.said
    call.press("*")
    call.press("7")
    assert prompt(services, "retry_invalid", "en") in call.said and call.voices == {"Polly.Joanna"}
    call.press("0")
    assert prompt(services, "uid_prompt", "en") in call.said
    call.press(PREMIUM_UID)
    call.press(PREMIUM_PIN)
    assert call.queued and call.voices == {"Polly.Joanna"} and "premium member" in call.said
    assert call.state.lang == "en"


def test_english_can_be_chosen_at_the_first_pin_prompt(voice, redis, services, members):
    call = Call(voice, redis)
    call.start()
    assert "For English, press 9." in call.said
    call.press("9")
    assert prompt(services, "pin_prompt", "en") in call.said and call.voices == {"Polly.Joanna"}
    call.press(PREMIUM_PIN)
    assert prompt(services, "menu_main", "en") in call.said and call.state.lang == "en"


def test_check_my_ticket_says_there_is_none_and_asks_again(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("8")
    assert prompt(services, "ticket_none") in call.said and call.gather is not None
    assert call.state.step == "menu"


def test_self_service_answer_plays_and_its_link_is_texted_once(voice, redis, services, members, monkeypatch):
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(services.gateway, "send_sms", lambda to, body, from_number="": sent.append((to, body)) or "SM1")
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    call.press("1")
    assert prompt(services, "answer_account") in call.said and call.state.node == "account"
    call.press("1")
    assert sent == [(UNKNOWN_PHONE, prompt(services, "sms_account"))]
    assert prompt(services, "sms_sent") in call.said and prompt(services, "answer_options") in call.said
    call.press("1")
    assert len(sent) == 1 and prompt(services, "sms_sent") in call.said  # not sent twice in one call


def test_sms_that_cannot_be_sent_is_said_so_and_the_call_goes_on(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)  # the gateway points at a port nobody listens on
    call.start()
    call.press("4")
    call.press("1")
    assert (
        prompt(services, "sms_failed") in call.said and call.gather is not None and "sms_benefits" not in call.state.sms
    )


def test_sms_offer_after_fallback_texts_the_help_centre_then_says_goodbye(voice, redis, services, members, monkeypatch):
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(services.gateway, "send_sms", lambda to, body, from_number="": sent.append((to, body)) or "SM1")
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    for _ in range(3):
        call.press("7")
    assert call.state.step == "offer"
    call.press("1")
    assert sent == [(UNKNOWN_PHONE, prompt(services, "sms_help"))] and call.ended
    assert prompt(services, "sms_sent") in call.said and prompt(services, "goodbye") in call.said


def test_verified_member_who_keeps_failing_a_menu_is_queued_not_dropped(voice, redis, members):
    call = Call(voice, redis)
    call.start()
    call.press(PREMIUM_PIN)
    call.silence()
    call.press("7")
    call.silence()
    assert call.queued and (call.state.tier, call.state.verified) == ("premium", True)


def test_speech_picks_an_option_by_its_hints(voice, redis, services, members):
    call = Call(voice, redis, caller=UNKNOWN_PHONE)
    call.start()
    assert call.gather.get("input") == "dtmf speech" and "登录" in call.gather.get("hints", "")
    assert call.gather.get("language") == "cmn-Hans-CN"
    call.speak("我想问一下登录的问题")
    assert call.state.node == "account"
    call.speak("转人工")
    assert call.state.step == "uid"
