"""The issue's 'done when' list, as whole calls placed by the simulator (signed requests, TwiML followed as Twilio
would)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core import keys
from ivr import session as ivr_session
from simulator import Script, Simulator, Speech
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN, PREMIUM_UID, UNKNOWN_PHONE, prompt
from webhooks.outbound.gateway import TwilioGateway


@pytest.fixture
def sim(app: Any, services: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    with Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN) as s:
        gateway = TwilioGateway(s.account_sid, AUTH_TOKEN, s.api_url, from_number=s.number)
        monkeypatch.setattr(services, "gateway", gateway)  # text messages go to the simulator's REST API
        yield s


def call(sim: Simulator, caller: str, *answers: Any) -> Any:
    # Whatever the queue step does with the caller, leave after a short wait there.
    return sim.place_call(caller, Script(answers=answers, when_answers_run_out="hangup", hangup_after_queue_seconds=5))


def session_of(redis: Any, result: Any) -> ivr_session.CallState:
    state = ivr_session.parse(redis.hgetall(keys.ivr_session(result.sid)))
    assert state is not None
    return state


def reached_queue(result: Any) -> bool:
    """The caller held in a Twilio queue (waitUrl requested) and left it by hanging up."""
    return bool(result.requests_of("wait")) and [q["QueueResult"] for q in result.queue_results] == ["hangup"]


def test_premium_caller_id_and_right_pin_reach_the_queue_as_premium(sim, redis, services, members):
    result = call(sim, PREMIUM_PHONE, PREMIUM_PIN + "#", "0")
    said = result.said()
    assert said[0] == prompt(services, "greeting") and prompt(services, "pin_prompt") in said
    assert "验证成功，欢迎您，尊敬的大会员。" in said and prompt(services, "to_agent") in said
    assert reached_queue(result)
    st = session_of(redis, result)
    assert (st.step, st.tier, st.verified, st.category, st.uid) == ("queue", "premium", True, "general", PREMIUM_UID)


def test_the_same_member_from_an_unknown_number_verifies_with_uid_and_pin(sim, redis, services, members):
    result = call(sim, UNKNOWN_PHONE, "3", "0", PREMIUM_UID + "#", PREMIUM_PIN + "#")
    assert prompt(services, "answer_playback") in result.said() and prompt(services, "uid_prompt") in result.said()
    assert reached_queue(result)
    st = session_of(redis, result)
    assert (st.tier, st.verified, st.category) == ("premium", True, "playback")


def test_three_wrong_pins_lock_and_a_fourth_call_is_refused(sim, redis, services, members):
    first = call(sim, PREMIUM_PHONE, "1111#", "2222#", "3333#", "0")
    assert any("15分钟" in s for s in first.said())
    st = session_of(redis, first)
    assert (st.locked, st.verified, st.tier) == ("member", False, "guest")
    fourth = call(sim, PREMIUM_PHONE, "0")
    assert prompt(services, "pin_prompt") not in fourth.said() and any("分钟后再试" in s for s in fourth.said())
    st = session_of(redis, fourth)
    assert (st.locked, st.verified, st.tier) == ("member", False, "guest")


def test_silence_three_times_ends_politely(sim, services, members):
    result = sim.place_call(UNKNOWN_PHONE, Script(answers=(None, None, None, None)))
    said = result.said()
    assert said.count(prompt(services, "retry_no_input")) == 2 + 1  # two re-prompts, then the sorry before the offer
    assert prompt(services, "offer_sms") in said and said[-1] == prompt(services, "goodbye")
    assert result.status == "completed" and len(result.requests_of("gather")) + len(result.requests_of("redirect")) >= 3


def test_english_chosen_with_9_stays_english(sim, services, members):
    result = call(sim, UNKNOWN_PHONE, "9", "4", "*", "0", PREMIUM_UID + "#", PREMIUM_PIN + "#")
    after = result.transcript[[h.text for h in result.transcript].index(prompt(services, "menu_main", "en")):]
    spoken = [
        h for h in after if h.verb == "say" and h.text != "普通话服务请按9。" and "/voice/ivr/" in h.url
    ]  # the IVR's part
    assert spoken and {(h.voice, h.language) for h in spoken} == {("Polly.Joanna", "en-US")}
    assert (
        prompt(services, "answer_benefits", "en") in result.said()
        and "Thank you. Welcome, premium member." in result.said()
    )


def test_check_my_ticket_and_self_service_with_a_text_message(sim, services, members):
    result = call(sim, UNKNOWN_PHONE, "8", "1", "1", Speech("转人工"), "*")
    said = result.said()
    assert prompt(services, "ticket_none") in said and prompt(services, "answer_account") in said
    assert prompt(services, "sms_sent") in said and reached_queue(result)
    assert [(m.to, m.body) for m in sim.messages] == [(UNKNOWN_PHONE, prompt(services, "sms_account"))]
