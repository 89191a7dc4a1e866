"""The call flow's callback steps: the after-hours offer, choosing the number to call back, confirming it.

The same steps run in two places: in the main call after hours (ending with goodbye), and inside
the queue's hold loop (ending with <Leave>, or back to holding on "*" or too many failed tries).
Pure like the rest of the flow: the edge books the ticket when a Reply asks for `callback`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import phonenumbers

from core.config import Config
from ivr.replies import (
    CB_CONFIRM,
    CB_ENTER,
    CB_NUMBER,
    CLOSED,
    END,
    HOLD_REASONS,
    MENU,
    QUEUE,
    Ask,
    Deps,
    Input,
    Reply,
    Say,
    say,
)
from ivr.session import CallState
from ivr.tree import Tree
from members.phones import callback_number

CONFIRM_KEY, OTHER_KEY, SELF_SERVICE_KEY, TICKET_KEY, KEEP_WAITING_KEY = "1", "2", "2", "8", "*"


@dataclass(frozen=True)
class NumberRules:
    """Which keyed-in numbers may be called back ([callbacks] and hotline.phone_region)."""

    region: str
    allow_foreign: bool
    allow_premium_rate: bool

    @classmethod
    def from_config(cls, config: Config) -> NumberRules:
        """The rules of a validated configuration."""
        cb = config["callbacks"]
        return cls(config["hotline"]["phone_region"], cb["allow_foreign_numbers"], cb["allow_premium_rate"])

    def check(self, raw: str) -> str | None:
        """`raw` as an E.164 number we may call, or None."""
        return callback_number(
            raw, self.region, allow_foreign=self.allow_foreign, allow_premium_rate=self.allow_premium_rate
        )


class FlowMoves(Protocol):
    """What the callback steps use of the flow that runs them (ivr/flow.py's Flow)."""

    numbers: NumberRules
    tree: Tree

    def fail(self, now: datetime, state: CallState, reason: str, **params: Any) -> tuple[CallState, Reply]:
        """Say sorry and ask again, or fall back politely after the last try."""

    def to_agent(self, now: datetime, state: CallState) -> tuple[CallState, Reply]:
        """Towards an agent (verification first where the tier asks for it)."""

    def ask(self, state: CallState, reprompt: bool = False) -> Ask:
        """The question of the caller's current step."""


def spell(e164: str) -> str:
    """A number as the caller dials it (national form at home), one digit at a time for speech."""
    try:
        number = phonenumbers.parse(e164, None)
        shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        shown = e164
    return " ".join(ch for ch in shown if ch.isdigit())


def when_params(iso: str) -> dict[str, Any]:
    """The {month} {day} {time} {weekday} {month_name} placeholders of a local time given in ISO 8601."""
    if not iso:
        return {}
    at = datetime.fromisoformat(iso)
    return {"month": at.month, "day": at.day, "time": f"{at:%H:%M}", "weekday": f"{at:%A}", "month_name": f"{at:%B}"}


def closed_notice(lang: str, opens_iso: str) -> Say:
    """'We are closed; we open at …'."""
    return say("closed", lang, **when_params(opens_iso))


class CallbackSteps:
    """The callback steps of one Flow."""

    def __init__(self, flow: FlowMoves) -> None:
        self.flow = flow

    def in_hold(self, state: CallState) -> bool:
        """True when the booking runs inside the queue's hold loop."""
        return state.cb_reason in HOLD_REASONS

    def start(self, state: CallState, reason: str, says: tuple[Say, ...] = ()) -> tuple[CallState, Reply]:
        """Begin booking: confirm the calling number if we may call it, else ask for one."""
        new = replace(state, cb_reason=reason, cb_phone="", tries=0)
        if state.caller and self.flow.numbers.check(state.caller):
            new = replace(new, step=CB_NUMBER, cb_phone=state.caller)
        else:
            new = replace(new, step=CB_ENTER)
        return new, Reply(says=says, ask=self.ask(new))

    def closed(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        """The after-hours offer: 1 callback, 8 my ticket, 2 self-service."""
        flow = self.flow
        if inp.empty:
            return flow.fail(now, state, "retry_no_input")
        if inp.digits == CONFIRM_KEY:
            return flow.to_agent(
                now, replace(state, category=state.category or flow.tree.nodes[flow.tree.root].category or "")
            )
        if inp.digits == SELF_SERVICE_KEY:
            new = replace(state, step=MENU, node=flow.tree.root, tries=0)
            return new, Reply(ask=flow.ask(new))
        if inp.digits == TICKET_KEY:
            return state, Reply(ticket=True, ask=self.ask(state, reprompt=True))
        return flow.fail(now, state, "retry_invalid")

    def number(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        """Call back the calling number (1), another one (2), or keep waiting (* in the queue)."""
        if inp.digits == CONFIRM_KEY:
            return self._book(state)
        if inp.digits == OTHER_KEY:
            new = replace(state, step=CB_ENTER, cb_phone="", tries=0)
            return new, self._reply(new)
        return self._other(state, inp, now)

    def enter(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        """A keyed-in number: refused with a re-prompt unless we may call it, else read back."""
        if inp.empty or inp.digits == KEEP_WAITING_KEY:
            return self._other(state, inp, now)
        e164 = self.flow.numbers.check(inp.digits)
        if e164 is None:
            return self.flow.fail(now, state, "cb_invalid")
        new = replace(state, step=CB_CONFIRM, cb_phone=e164, tries=0)
        return new, self._reply(new)

    def confirm(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        """The read-back: 1 books, 2 enters the number again."""
        if inp.digits == CONFIRM_KEY and state.cb_phone:
            return self._book(state)
        if inp.digits == OTHER_KEY:
            new = replace(state, step=CB_ENTER, cb_phone="", tries=0)
            return new, self._reply(new)
        return self._other(state, inp, now)

    def ask(self, state: CallState, reprompt: bool = False) -> Ask:
        """The question of a callback step."""
        lang = state.lang
        if state.step == CLOSED:
            return Ask(CLOSED, (say("closed_offer", lang),), lang, digits=1)
        if state.step == CB_NUMBER:
            prompt = "cb_number_hold" if self.in_hold(state) else "cb_number"
            return Ask(CB_NUMBER, (say(prompt, lang, digits=spell(state.cb_phone)),), lang, digits=1)
        if state.step == CB_CONFIRM:
            return Ask(CB_CONFIRM, (say("cb_readback", lang, digits=spell(state.cb_phone)),), lang, digits=1)
        assert state.step == CB_ENTER, state.step
        return Ask(CB_ENTER, (say("cb_enter", lang),), lang)

    def _reply(self, state: CallState) -> Reply:
        return Reply(ask=self.ask(state))

    def _book(self, state: CallState) -> tuple[CallState, Reply]:
        return replace(state, step=END, tries=0), Reply(callback=state.cb_phone)

    def _other(self, state: CallState, inp: Input, now: datetime) -> tuple[CallState, Reply]:
        """Star in the queue goes back to holding; silence or another key is a failed try."""
        if inp.digits == KEEP_WAITING_KEY and self.in_hold(state):
            return replace(state, step=QUEUE, tries=0, cb_reason="", cb_phone=""), Reply(resume_hold=True)
        return self.flow.fail(now, state, "retry_no_input" if inp.empty else "retry_invalid")
