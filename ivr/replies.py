"""What the call flow answers: the steps, and the plain values (Say, Ask, Reply) that webhooks/ renders as TwiML."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from members.verification import MemberRef, Verification

MENU, PIN, UID, OFFER, QUEUE, END = "menu", "pin", "uid", "offer", "queue", "end"
CLOSED, CB_NUMBER, CB_ENTER, CB_CONFIRM = "closed", "cbnum", "cbenter", "cbconfirm"
CALLBACK_STEPS = (CB_NUMBER, CB_ENTER, CB_CONFIRM)
HOLD_REASONS = ("long_wait", "caller_request")  # callbacks booked from the hold loop (the rest: after hours)
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
    callback: str = ""  # book a callback ticket to this number (then say its number and end, or leave the queue)
    resume_hold: bool = (
        False  # back to holding in the queue, keeping the place (a callback booked from hold was dropped)
    )


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
