"""The call flow's rules: from the call session and the caller's input, what to say and ask next.

Pure: the stores are reached only through `Deps` (member lookup and PIN check), `now` is given,
and the answer is plain values (`Reply`) that webhooks/ renders as TwiML.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping, Protocol

from hotline.config import Config
from ivr.session import CallState
from ivr.tree import Node, Option, Tree, build_tree, match
from members.verification import UID_MAX_LENGTH, MemberRef, Outcome, Rules, Verification, uid_format_ok

MENU, PIN, UID, OFFER, QUEUE, END = "menu", "pin", "uid", "offer", "queue", "end"
SKIP_KEY = "*"        # at the PIN and member-number prompts: go on without verifying
OFFER_KEY = "1"       # at the goodbye offer: text me the help-centre link
GUEST = "guest"


@dataclass(frozen=True)
class Say:
    """Prompt `prompt` spoken in `lang`, its {placeholders} filled from `params`."""

    prompt: str
    lang: str
    params: tuple[tuple[str, Any], ...] = ()


def say(prompt: str, lang: str, **params: Any) -> Say:
    return Say(prompt, lang, tuple(sorted(params.items())))


@dataclass(frozen=True)
class Ask:
    """A question (a <Gather>): its prompts, and how the answer is collected."""

    step: str
    prompts: tuple[Say, ...]
    lang: str
    digits: int | None = None      # keys to collect; None: any number, ended by "#"
    speech: bool = False
    hints: tuple[str, ...] = ()
    end_on_silence: bool = False   # silence ends the call politely instead of asking again


@dataclass(frozen=True)
class ToQueue:
    """The hand-off to the agent queue."""

    tier: str
    category: str
    verified: bool


@dataclass(frozen=True)
class Reply:
    """What the caller hears next: `says`, then one of ask / queue / hangup (with goodbye)."""

    says: tuple[Say, ...] = ()
    ask: Ask | None = None
    queue: ToQueue | None = None
    hangup: bool = False
    sms: str = ""         # first text the caller this prompt (the edge sends it and says whether it went)
    ticket: bool = False  # first read out the caller's callback ticket


@dataclass(frozen=True)
class Input:
    """What the caller keyed (`Digits`) or said (`SpeechResult`)."""

    digits: str = ""
    speech: str = ""

    @property
    def empty(self) -> bool:
        return not self.digits and not self.speech.strip()


class Deps(Protocol):
    """The stores, as the flow needs them (bound to a SQL session, a calling number and `now` by the edge)."""

    def find_uid(self, uid: str) -> MemberRef | None: ...

    def verify_pin(self, member_id: int, pin: str) -> Verification: ...


class Flow:
    """The rules of one configuration: build once per process with `Flow.from_config`."""

    def __init__(self, tree: Tree, rules: Rules, tiers: Mapping[str, Any], default_lang: str) -> None:
        self.tree, self.rules, self.tiers, self.default_lang = tree, rules, tiers, default_lang

    @classmethod
    def from_config(cls, config: Config) -> "Flow":
        return cls(build_tree(config), Rules.from_config(config), config.tiers, config["hotline"]["default_language"])

    # --- the start of a call -------------------------------------------------------------------
    def start(self, caller: str, member: MemberRef | None, number_blocked: bool, now: datetime) -> CallState:
        """The new call's session: a known caller ID is asked for the PIN unless the member or the number is locked."""
        state = CallState(caller=caller, lang=self.default_lang, step=MENU, node=self.tree.root, started_at=now.isoformat())
        if member is None:
            return state  # unknown callers verify (member number, then PIN) only when they ask for an agent
        state = replace(state, member_id=member.id, uid=member.uid)
        if member.minutes_locked(now):
            return replace(state, locked="member", lock_minutes=member.minutes_locked(now))
        if number_blocked:
            return replace(state, locked="number")
        return replace(state, step=PIN, after=MENU)

    def opening(self, state: CallState) -> Reply:
        """The answer to /voice/incoming (the same for a retried webhook): greeting, any lock notice, the first question."""
        notice = (self._lock_notice(state),) if state.locked and state.step == MENU else ()
        return replace(self.render(state), says=(say("greeting", state.lang), *notice))

    def render(self, state: CallState) -> Reply:
        """Ask the current step's question again (a repeated or stale request changes nothing)."""
        if state.step == QUEUE:
            return Reply(queue=ToQueue(state.tier, state.category, state.verified))
        if state.step == END:
            return Reply(hangup=True)
        return Reply(ask=self._ask(state))

    # --- one step --------------------------------------------------------------------------------
    def advance(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        """The caller answered the current question with `inp`: the new session and what to say."""
        handler = {MENU: self._menu, PIN: self._pin, UID: self._uid, OFFER: self._offer}.get(state.step)
        if handler is None:
            new, reply = state, self.render(state)
        else:
            new, reply = handler(state, inp, now, deps)
        return replace(new, seq=state.seq + 1), reply

    def _menu(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        node = self._node(state)
        if inp.empty:
            return self._fail(state, "retry_no_input")
        opt = match(node, inp.digits, inp.speech, state.lang)
        if opt is None:
            return self._fail(state, "retry_invalid")
        state = replace(state, node=node.name, tries=0)
        if opt.goto is not None:
            new = replace(state, node=opt.goto)
            return new, Reply(ask=self._ask(new))
        if opt.do == "language":
            new = replace(state, lang=self._target_lang(state, opt))
            return new, Reply(ask=self._ask(new))
        if opt.do == "sms" and node.sms:
            if node.sms in state.sms.split():  # sent already in this call: say so, do not send twice
                return state, Reply(says=(say("sms_sent", state.lang),), ask=self._ask(state, reprompt=True))
            return state, Reply(sms=node.sms, ask=self._ask(state, reprompt=True))
        if opt.do == "ticket":
            return state, Reply(ticket=True, ask=self._ask(state, reprompt=True))
        if opt.do == "agent":
            return self._agent(replace(state, category=node.category or ""))
        return state, Reply(ask=self._ask(state))  # "repeat"

    def _agent(self, state: CallState) -> tuple[CallState, Reply]:
        if state.verified or state.locked:  # verified, or verification refused in this call: queue (the latter as guest)
            return self._to_queue(state)
        new = replace(state, step=PIN if state.member_id else UID, after=QUEUE, tries=0)
        return new, Reply(ask=self._ask(new))

    def _pin(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        pin = inp.digits
        lang_opt = self.tree.language_option()
        if not pin:
            return self._fail(state, "retry_no_input")
        if state.after == MENU and lang_opt is not None and pin == lang_opt.key:
            new = replace(state, lang=self._target_lang(state, lang_opt))
            return new, Reply(ask=self._ask(new))
        if pin == SKIP_KEY:
            return self._continue(state, (say("as_guest", state.lang),))
        if not self.rules.pin_format_ok(pin):
            return self._fail(state, "pin_format", min=self.rules.pin_min, max=self.rules.pin_max)
        if state.member_id is None:
            return self._continue(state, (say("as_guest", state.lang),))
        v = deps.verify_pin(state.member_id, pin)
        if v.outcome is Outcome.OK:
            tier = v.tier if v.tier in self.tiers and v.tier != GUEST else GUEST
            new = replace(state, verified=True, tier=tier, tries=0)
            label = self.tiers[tier]["label"].get(state.lang) or self.tiers[tier]["label"][self.default_lang]
            return self._continue(new, (say("verified", state.lang, tier=label),))
        if v.outcome is Outcome.WRONG:
            return self._fail(state, "pin_wrong", left=v.left)
        if v.outcome is Outcome.LOCKED:
            return self._refused(replace(state, locked="member", lock_minutes=v.minutes))
        if v.outcome is Outcome.NUMBER_BLOCKED:
            return self._refused(replace(state, locked="number"))
        return self._continue(replace(state, member_id=None, uid=""), (say("as_guest", state.lang),))

    def _uid(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        uid = inp.digits
        if not uid:
            return self._fail(state, "retry_no_input")
        if uid == SKIP_KEY:
            return self._continue(state, (say("as_guest", state.lang),))
        if not uid_format_ok(uid):
            return self._fail(state, "uid_format", max=UID_MAX_LENGTH)
        ref = deps.find_uid(uid)
        if ref is None:
            return self._fail(state, "uid_unknown")
        new = replace(state, member_id=ref.id, uid=ref.uid)
        if ref.minutes_locked(now):
            return self._refused(replace(new, locked="member", lock_minutes=ref.minutes_locked(now)))
        new = replace(new, step=PIN, tries=0)
        return new, Reply(ask=self._ask(new))

    def _offer(self, state: CallState, inp: Input, now: datetime, deps: Deps) -> tuple[CallState, Reply]:
        new = replace(state, step=END, tries=0)
        return new, Reply(sms=self.tree.help_sms if inp.digits == OFFER_KEY else "", hangup=True)

    # --- shared moves ----------------------------------------------------------------------------
    def _fail(self, state: CallState, reason: str, **params: Any) -> tuple[CallState, Reply]:
        """A silence or an answer that leads nowhere: say sorry and ask again, up to max_tries, then fall back politely."""
        sorry = (say(reason, state.lang, **params),)
        tries = state.tries + 1
        if tries < self.tree.max_tries:
            new = replace(state, tries=tries)
            return new, Reply(says=sorry, ask=self._ask(new, reprompt=True))
        if state.verified:
            return self._to_queue(state, sorry)
        new = replace(state, step=OFFER, tries=0)
        return new, Reply(says=sorry, ask=self._ask(new))

    def _continue(self, state: CallState, says: tuple[Say, ...]) -> tuple[CallState, Reply]:
        """Verification is over (passed or skipped): go where it was leading."""
        if state.after == QUEUE:
            return self._to_queue(state, says)
        new = replace(state, step=MENU, node=self.tree.root, tries=0)
        return new, Reply(says=says, ask=self._ask(new))

    def _refused(self, state: CallState) -> tuple[CallState, Reply]:
        """Locked member or number: say so, then the self-service menu (no queue as a member)."""
        new = replace(state, step=MENU, node=self.tree.root, tries=0, verified=False, tier=GUEST)
        return new, Reply(says=(self._lock_notice(new),), ask=self._ask(new))

    def _to_queue(self, state: CallState, says: tuple[Say, ...] = ()) -> tuple[CallState, Reply]:
        tier = state.tier if state.verified else GUEST
        category = state.category or self.tree.nodes[self.tree.root].category or ""
        new = replace(state, step=QUEUE, tier=tier, category=category, tries=0)
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

    def _ask(self, state: CallState, reprompt: bool = False) -> Ask:
        lang = state.lang
        if state.step == MENU:
            node = self._node(state)
            prompts = (say(node.reprompt if reprompt else node.prompt, lang), *self._language_offers(state, node.options))
            return Ask(MENU, prompts, lang, digits=1, speech=self.tree.speech, hints=node.hints(lang))
        if state.step == PIN:
            lang_opt = self.tree.language_option()
            offers = self._language_offers(state, (lang_opt,)) if state.after == MENU and lang_opt else ()
            return Ask(PIN, (say("pin_prompt", lang), *offers), lang)
        if state.step == UID:
            return Ask(UID, (say("uid_prompt", lang),), lang)
        return Ask(OFFER, (say("offer_sms", lang),), lang, digits=1, end_on_silence=True)
