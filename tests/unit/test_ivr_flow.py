"""The call flow's rules, without stores: fixed `now`, fake member lookups and PIN checks."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hotline.configuration import full_config
from ivr.flow import END, MENU, OFFER, PIN, QUEUE, UID, Flow, Input, ToQueue
from ivr.session import CallState
from members.verification import MemberRef, Outcome, Verification

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PREMIUM = MemberRef(7, "10001", "premium", None)


class FakeStores:
    def __init__(self, members: dict[str, MemberRef] | None = None, result: Verification | None = None) -> None:
        self.members = members or {}
        self.result = result or Verification(Outcome.OK, tier="premium")
        self.checked: list[tuple[int, str]] = []

    def find_uid(self, uid: str) -> MemberRef | None:
        return self.members.get(uid)

    def verify_pin(self, member_id: int, pin: str) -> Verification:
        self.checked.append((member_id, pin))
        return self.result


@pytest.fixture(scope="module")
def flow() -> Flow:
    return Flow.from_config(full_config())


def prompts(reply) -> list[str]:
    out = [s.prompt for s in reply.says]
    if reply.ask:
        out += [s.prompt for s in reply.ask.prompts]
    return out


def test_start_known_caller_is_asked_for_the_pin(flow):
    st = flow.start("+8613800000001", PREMIUM, False, NOW)
    assert (st.step, st.after, st.member_id, st.uid, st.tier, st.verified) == (PIN, MENU, 7, "10001", "guest", False)
    assert st.started_at == NOW.isoformat()
    assert prompts(flow.opening(st)) == ["greeting", "pin_prompt", "language_offer"]


def test_start_unknown_caller_hears_the_menu(flow):
    st = flow.start("", None, True, NOW)  # a blocked number only matters once a PIN is tried
    assert (st.step, st.node, st.locked) == (MENU, "main", "")
    assert prompts(flow.opening(st)) == ["greeting", "menu_main", "language_offer"]


def test_start_locked_member_hears_the_minutes_left_then_the_menu(flow):
    locked = replace(PREMIUM, locked_until=NOW + timedelta(minutes=9, seconds=10))
    st = flow.start("+8613800000001", locked, False, NOW)
    assert (st.step, st.locked, st.lock_minutes) == (MENU, "member", 10)
    reply = flow.opening(st)
    assert prompts(reply)[:2] == ["greeting", "locked"] and dict(reply.says[1].params) == {"minutes": 10}
    assert flow.start("+8613800000001", locked, False, NOW + timedelta(minutes=10)).step == PIN  # lock over


def test_right_pin_verifies_and_leads_to_the_menu(flow):
    st = flow.start("+8613800000001", PREMIUM, False, NOW)
    stores = FakeStores()
    new, reply = flow.advance(st, Input(digits="2468"), NOW, stores)
    assert stores.checked == [(7, "2468")]
    assert (new.step, new.verified, new.tier, new.seq) == (MENU, True, "premium", 1)
    assert reply.says[0].prompt == "verified" and dict(reply.says[0].params) == {"tier": "大会员"}


def test_wrong_pin_says_how_many_tries_are_left(flow):
    st = flow.start("+8613800000001", PREMIUM, False, NOW)
    new, reply = flow.advance(st, Input(digits="1111"), NOW, FakeStores(result=Verification(Outcome.WRONG, left=2)))
    assert (
        (new.step, new.tries) == (PIN, 1)
        and reply.says[0].prompt == "pin_wrong"
        and dict(reply.says[0].params) == {"left": 2}
    )


@pytest.mark.parametrize(
    "outcome,locked,notice",
    [(Outcome.LOCKED, "member", "locked"), (Outcome.NUMBER_BLOCKED, "number", "number_blocked")],
)
def test_refused_verification_leads_to_self_service_not_the_queue(flow, outcome, locked, notice):
    st = replace(flow.start("+8613800000001", PREMIUM, False, NOW), after=QUEUE, category="billing")
    new, reply = flow.advance(st, Input(digits="1111"), NOW, FakeStores(result=Verification(outcome, minutes=15)))
    assert (new.step, new.node, new.locked, new.verified, new.tier) == (MENU, "main", locked, False, "guest")
    assert reply.queue is None and prompts(reply)[:2] == [notice, "menu_main"]
    _, reply = flow.advance(new, Input(digits="0"), NOW, FakeStores())
    assert reply.queue == ToQueue("guest", "general", False)  # asking for an agent: no second verification


def test_unknown_caller_asking_for_an_agent_gives_member_number_then_pin(flow):
    st = flow.start("", None, False, NOW)
    st, _ = flow.advance(st, Input(digits="6"), NOW, FakeStores())
    st, reply = flow.advance(st, Input(digits="0"), NOW, FakeStores())
    assert (st.step, st.after, st.category) == (UID, QUEUE, "appeal") and prompts(reply) == ["uid_prompt"]
    st, reply = flow.advance(st, Input(digits="10001"), NOW, FakeStores({"10001": PREMIUM}))
    assert (st.step, st.member_id) == (PIN, 7) and prompts(reply) == ["pin_prompt"]  # no language offer mid-call
    st, reply = flow.advance(st, Input(digits="2468"), NOW, FakeStores())
    assert st.step == QUEUE and reply.queue == ToQueue("premium", "appeal", True)
    assert [s.prompt for s in reply.says] == ["verified", "to_agent"]


def test_failures_reset_when_the_caller_moves_on(flow):
    st = flow.start("", None, False, NOW)
    st, _ = flow.advance(st, Input(), NOW, FakeStores())
    st, _ = flow.advance(st, Input(digits="7"), NOW, FakeStores())
    assert st.tries == 2
    st, _ = flow.advance(st, Input(digits="1"), NOW, FakeStores())
    assert (st.node, st.tries) == ("account", 0)


def test_fallback_after_max_tries_unverified_is_the_offer_then_the_end(flow):
    st = flow.start("", None, False, NOW)
    for _ in range(3):
        st, reply = flow.advance(st, Input(), NOW, FakeStores())
    assert st.step == OFFER and reply.ask.end_on_silence and prompts(reply) == ["retry_no_input", "offer_sms"]
    done, reply = flow.advance(st, Input(digits="2"), NOW, FakeStores())
    assert done.step == END and reply.hangup and not reply.sms
    done, reply = flow.advance(st, Input(digits="1"), NOW, FakeStores())
    assert reply.hangup and reply.sms == "sms_help"
    assert flow.render(done).hangup  # a late request after the end: goodbye again


def test_language_switch_toggles_back_to_the_default(flow):
    st = flow.start("", None, False, NOW)
    st, reply = flow.advance(st, Input(digits="9"), NOW, FakeStores())
    assert st.lang == "en" and [(s.prompt, s.lang) for s in reply.ask.prompts] == [
        ("menu_main", "en"),
        ("language_offer", "zh"),
    ]
    st, _ = flow.advance(st, Input(speech="Mandarin please"), NOW, FakeStores())
    assert st.lang == "zh"


def test_queue_step_renders_the_hand_off_again(flow):
    st = CallState(step=QUEUE, tier="premium", verified=True, category="billing")
    assert flow.render(st).queue == ToQueue("premium", "billing", True)
    new, reply = flow.advance(st, Input(digits="5"), NOW, FakeStores())
    assert reply.queue == ToQueue("premium", "billing", True) and new.step == QUEUE


def test_a_tier_missing_from_the_config_is_not_trusted(flow):
    st = flow.start("+8613800000001", PREMIUM, False, NOW)
    new, _ = flow.advance(st, Input(digits="2468"), NOW, FakeStores(result=Verification(Outcome.OK, tier="platinum")))
    assert new.verified and new.tier == "guest"
