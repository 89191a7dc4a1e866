"""The call flow's rules: from the call session and the caller's input, what to say and ask next.

Pure: the stores are reached only through `Deps` (member lookup and PIN check), `now` is given,
and the answer is plain values (`Reply`) that webhooks/ renders as TwiML.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from callqueue.hours import Calendar
from core.config import Config
from ivr.callback_steps import CallbackSteps, NumberRules, closed_notice
from ivr.replies import (
    CALLBACK_STEPS,
    CB_CONFIRM,
    CB_ENTER,
    CB_NUMBER,
    CLOSED,
    END,
    GUEST,
    HOLD_REASONS,
    MENU,
    OFFER,
    OFFER_KEY,
    PIN,
    QUEUE,
    SKIP_KEY,
    UID,
    Ask,
    Deps,
    Input,
    Reply,
    Say,
    ToQueue,
    say,
)
from ivr.session import CallState
from ivr.tree import Node, Option, Tree, build_tree, match
from members.verification import UID_MAX_LENGTH, MemberRef, Outcome, Rules, uid_format_ok


class Flow:
    """The rules of one configuration: build once per process with `Flow.from_config`."""

    def __init__(self, tree: Tree, rules: Rules, tiers: Mapping[str, Any], default_lang: str, hours: Calendar,
                 numbers: NumberRules) -> None:
        self.tree, self.rules, self.tiers, self.default_lang = tree, rules, tiers, default_lang
        self.hours, self.numbers = hours, numbers
        self.callbacks = CallbackSteps(self)

    @classmethod
    def from_config(cls, config: Config) -> Flow:
        """The flow of a validated configuration."""
        return cls(build_tree(config), Rules.from_config(config), config.tiers, config["hotline"]["default_language"],
                   Calendar.from_config(config), NumberRules.from_config(config))

    # --- the start of a call -------------------------------------------------------------------
    def start(self, caller: str, member: MemberRef | None, number_blocked: bool, now: datetime) -> CallState:
        """The new call's session: a known caller ID is asked for the PIN unless the member or the number is locked."""
        claimed = member.tier if member is not None and member.tier in self.tiers else GUEST
        state = CallState(
            caller=caller, lang=self.default_lang, step=MENU, node=self.tree.root, started_at=now.isoformat()
        )
        if not self.hours.is_open(now, claimed):
            opens = self.hours.next_opening(now, claimed)
            state = replace(state, step=CLOSED, closed=True, opens=opens.isoformat() if opens else "")
        if member is None:
            return state  # unknown callers verify (member number, then PIN) only when they ask for an agent
        state = replace(state, member_id=member.id, uid=member.uid)
        if member.minutes_locked(now):
            return replace(state, locked="member", lock_minutes=member.minutes_locked(now))
        if number_blocked:
            return replace(state, locked="number")
        return replace(state, step=PIN, after=MENU)

    def opening(self, state: CallState, extra: tuple[Say, ...] = ()) -> Reply:
        """The answer to /voice/incoming (the same for a retried webhook): greeting, closed and lock notices, `extra`
        (e.g. the caller's open ticket), the first question."""
        closed = (closed_notice(state.lang, state.opens),) if state.closed else ()
        notice = (self._lock_notice(state),) if state.locked and state.step in (MENU, CLOSED) else ()
        return replace(self.render(state), says=(say("greeting", state.lang), *closed, *notice, *extra))

    def render(self, state: CallState) -> Reply:
        """Ask the current step's question again (a repeated or stale request changes nothing)."""
        if state.step == QUEUE:
            return Reply(queue=ToQueue(state.tier, state.category, state.verified))
        if state.step == END:
            return Reply(hangup=True)
        return Reply(ask=self.ask(state))

    # --- one step --------------------------------------------------------------------------------
    def advance(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        """The caller answered the current question with `inp`: the new session and what to say."""
        handler = {MENU: self._menu, PIN: self._pin, UID: self._uid, OFFER: self._offer, CLOSED: self.callbacks.closed,
                   CB_NUMBER: self.callbacks.number, CB_ENTER: self.callbacks.enter, CB_CONFIRM: self.callbacks.confirm,
                   }.get(state.step)
        if handler is None:
            new, reply = state, self.render(state)
        else:
            new, reply = handler(state, inp, now, deps)
        return replace(new, seq=state.seq + 1), reply

    def _menu(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        node = self._node(state)
        if inp.empty:
            return self.fail(now, state, "retry_no_input")
        opt = match(node, inp.digits, inp.speech, state.lang)
        if opt is None:
            return self.fail(now, state, "retry_invalid")
        state = replace(state, node=node.name, tries=0)
        if opt.goto is not None:
            new = replace(state, node=opt.goto)
            return new, Reply(ask=self.ask(new))
        if opt.do == "language":
            new = replace(state, lang=self._target_lang(state, opt))
            return new, Reply(ask=self.ask(new))
        if opt.do == "sms" and node.sms:
            if node.sms in state.sms.split():  # sent already in this call: say so, do not send twice
                return state, Reply(says=(say("sms_sent", state.lang),), ask=self.ask(state, reprompt=True))
            return state, Reply(sms=node.sms, ask=self.ask(state, reprompt=True))
        if opt.do == "ticket":
            return state, Reply(ticket=True, ask=self.ask(state, reprompt=True))
        if opt.do == "agent":
            return self.to_agent(now, replace(state, category=node.category or ""))
        return state, Reply(ask=self.ask(state))  # "repeat"

    def to_agent(self, now: datetime, state: CallState) -> tuple[CallState, Reply]:
        """Towards an agent: the queue when verified (or refused), else the PIN or member number first."""
        if (
            state.verified or state.locked
        ):  # verified, or verification refused in this call: queue (the latter as guest)
            return self._to_queue(now, state)
        new = replace(state, step=PIN if state.member_id else UID, after=QUEUE, tries=0)
        return new, Reply(ask=self.ask(new))

    def _pin(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        pin = inp.digits
        lang_opt = self.tree.language_option()
        if not pin:
            return self.fail(now, state, "retry_no_input")
        if state.after == MENU and lang_opt is not None and pin == lang_opt.key:
            new = replace(state, lang=self._target_lang(state, lang_opt))
            return new, Reply(ask=self.ask(new))
        if pin == SKIP_KEY:
            return self._continue(now, state, (say("as_guest", state.lang),))
        if not self.rules.pin_format_ok(pin):
            return self.fail(now, state, "pin_format", min=self.rules.pin_min, max=self.rules.pin_max)
        if state.member_id is None:
            return self._continue(now, state, (say("as_guest", state.lang),))
        v = deps.verify_pin(state.member_id, pin)
        if v.outcome is Outcome.OK:
            tier = v.tier if v.tier in self.tiers and v.tier != GUEST else GUEST
            new = replace(state, verified=True, tier=tier, tries=0)
            label = self.tiers[tier]["label"].get(state.lang) or self.tiers[tier]["label"][self.default_lang]
            return self._continue(now, new, (say("verified", state.lang, tier=label),))
        if v.outcome is Outcome.WRONG:
            return self.fail(now, state, "pin_wrong", left=v.left)
        if v.outcome is Outcome.LOCKED:
            return self._refused(replace(state, locked="member", lock_minutes=v.minutes))
        if v.outcome is Outcome.NUMBER_BLOCKED:
            return self._refused(replace(state, locked="number"))
        return self._continue(now, replace(state, member_id=None, uid=""), (say("as_guest", state.lang),))

    def _uid(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        uid = inp.digits
        if not uid:
            return self.fail(now, state, "retry_no_input")
        if uid == SKIP_KEY:
            return self._continue(now, state, (say("as_guest", state.lang),))
        if not uid_format_ok(uid):
            return self.fail(now, state, "uid_format", max=UID_MAX_LENGTH)
        ref = deps.find_uid(uid)
        if ref is None:
            return self.fail(now, state, "uid_unknown")
        new = replace(state, member_id=ref.id, uid=ref.uid)
        if ref.minutes_locked(now):
            return self._refused(replace(new, locked="member", lock_minutes=ref.minutes_locked(now)))
        new = replace(new, step=PIN, tries=0)
        return new, Reply(ask=self.ask(new))

    def _offer(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        new = replace(state, step=END, tries=0)
        return new, Reply(sms=self.tree.help_sms if inp.digits == OFFER_KEY else "", hangup=True)

    # --- shared moves ----------------------------------------------------------------------------
    def fail(self, now: datetime, state: CallState, reason: str, **params: Any) -> tuple[CallState, Reply]:
        """Silence or an answer leading nowhere: say sorry and ask again, up to max_tries, then fall back politely."""
        sorry = (say(reason, state.lang, **params),)
        tries = state.tries + 1
        if tries < self.tree.max_tries:
            new = replace(state, tries=tries)
            return new, Reply(says=sorry, ask=self.ask(new, reprompt=True))
        if state.step in CALLBACK_STEPS and state.cb_reason in HOLD_REASONS:
            return replace(state, step=QUEUE, tries=0, cb_reason=""), Reply(says=sorry, resume_hold=True)
        if state.verified and state.step not in CALLBACK_STEPS:
            return self._to_queue(now, state, sorry)
        new = replace(state, step=OFFER, tries=0)
        return new, Reply(says=sorry, ask=self.ask(new))

    def _continue(self, now: datetime, state: CallState, says: tuple[Say, ...]) -> tuple[CallState, Reply]:
        """Verification is over (passed or skipped): go where it was leading."""
        if state.after == QUEUE:
            return self._to_queue(now, state, says)
        new = self._home(state)
        return new, Reply(says=says, ask=self.ask(new))

    def _home(self, state: CallState) -> CallState:
        """The first question: the main menu, or after hours the callback offer."""
        return replace(state, step=CLOSED if state.closed else MENU, node=self.tree.root, tries=0)

    def _refused(self, state: CallState) -> tuple[CallState, Reply]:
        """Locked member or number: say so, then the self-service menu (no queue as a member)."""
        new = replace(self._home(state), verified=False, tier=GUEST)
        return new, Reply(says=(self._lock_notice(new),), ask=self.ask(new))

    def _to_queue(self, now: datetime, state: CallState, says: tuple[Say, ...] = ()) -> tuple[CallState, Reply]:
        """Hand over to the agent queue, or, when the line is closed for the caller's tier, to booking a callback."""
        tier = state.tier if state.verified else GUEST
        category = state.category or self.tree.nodes[self.tree.root].category or ""
        new = replace(state, tier=tier, category=category, tries=0)
        if not self.hours.is_open(now, tier):
            opens = self.hours.next_opening(now, tier)
            new = replace(new, opens=opens.isoformat() if opens else "")
            notice = () if state.closed else (closed_notice(state.lang, new.opens),)
            return self.callbacks.start(new, "after_hours", (*says, *notice))
        new = replace(new, step=QUEUE)
        return new, Reply(says=(*says, say("to_agent", state.lang)), queue=ToQueue(tier, category, state.verified))

    def _lock_notice(self, state: CallState) -> Say:
        if state.locked == "member":
            return say("locked", state.lang, minutes=state.lock_minutes)
        return say("number_blocked", state.lang)

    # --- questions -------------------------------------------------------------------------------
    def _node(self, state: CallState) -> Node:
        return self.tree.nodes.get(state.node) or self.tree.nodes[self.tree.root]

    def _target_lang(self, state: CallState, opt: Option) -> str:
        """A language option switches to its language, or back to the default when already there."""
        return opt.lang if opt.lang and state.lang != opt.lang else self.default_lang

    def _language_offers(self, state: CallState, options: tuple[Option, ...]) -> tuple[Say, ...]:
        offers = []
        for opt in options:
            if opt.do == "language":
                target = self._target_lang(state, opt)
                if target != state.lang:
                    offers.append(say("language_offer", target, key=opt.key))
        return tuple(offers)

    def hold_offer(self, state: CallState, inp: Input, long_wait: bool) -> tuple[CallState, Reply]:
        """A key pressed in the hold loop: 1 starts booking a callback that keeps the place; anything else holds on."""
        if inp.digits != "1":
            return state, Reply(resume_hold=True)
        new, reply = self.callbacks.start(state, "long_wait" if long_wait else "caller_request")
        return replace(new, seq=state.seq + 1), reply

    def ask(self, state: CallState, reprompt: bool = False) -> Ask:
        """The question of the caller's current step (its re-prompt after a failed try)."""
        lang = state.lang
        if state.step in (CLOSED, *CALLBACK_STEPS):
            return self.callbacks.ask(state, reprompt)
        if state.step == MENU:
            node = self._node(state)
            prompts = (
                say(node.reprompt if reprompt else node.prompt, lang),
                *self._language_offers(state, node.options),
            )
            return Ask(MENU, prompts, lang, digits=1, speech=self.tree.speech, hints=node.hints(lang))
        if state.step == PIN:
            lang_opt = self.tree.language_option()
            offers = self._language_offers(state, (lang_opt,)) if state.after == MENU and lang_opt else ()
            return Ask(PIN, (say("pin_prompt", lang), *offers), lang)
        if state.step == UID:
            return Ask(UID, (say("uid_prompt", lang),), lang)
        return Ask(OFFER, (say("offer_sms", lang),), lang, digits=1, end_on_silence=True)
