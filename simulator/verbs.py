"""The simple TwiML verbs: Say, Play, Pause, Gather, Redirect, Hangup, Reject, Leave."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING

from simulator.control import HungUp
from simulator.errors import TwimlRejected
from simulator.flow import DECLINED, LEAVE, Context, Goto, Outcome
from simulator.results import Heard
from simulator.script import HANGUP, Speech
from simulator.twiml import method_attr, number_attr, resolve, speaking_seconds, text, url_attr

if TYPE_CHECKING:
    from simulator.call import SimulatedCall

Handler = Callable[["SimulatedCall", ET.Element, str, Context], Outcome]

KEY_SECONDS = 0.5  # simulated time a caller takes per keypress


def _loops(el: ET.Element) -> int | None:
    """Twilio's loop attribute: 1 by default, 0 for "until the call ends" (None here)."""
    n = int(number_attr(el, "loop", 1))
    return None if n == 0 else n


def say(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Speak the text: recorded with its voice and language, costing its speaking time."""
    words = text(el)
    loops = _loops(el)
    seconds = speaking_seconds(words)
    call.hear(ctx, Heard("say", words, el.get("voice", ""), el.get("language", ""), doc_url, seconds * (loops or 1)))
    call.control.wait(None if loops is None else seconds * loops)
    return None


def play(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Play audio (never fetched: it lasts `play_seconds`) or send DTMF digits."""
    if el.get("digits"):
        call.hear(ctx, Heard("play", f"[digits {el.get('digits')}]", url=doc_url))
        return None
    loops = _loops(el)
    seconds = call.net.options.play_seconds
    call.hear(ctx, Heard("play", f"[audio {resolve(doc_url, text(el))}]", url=doc_url, seconds=seconds * (loops or 1)))
    call.control.wait(None if loops is None else seconds * loops)
    return None


def pause(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Silence for `length` seconds (default 1)."""
    length = number_attr(el, "length", 1)
    call.hear(ctx, Heard("pause", url=doc_url, seconds=length))
    call.control.wait(length)
    return None


PROMPTS: dict[str, Handler] = {"Say": say, "Play": play, "Pause": pause}


def keyed(keys: str, num_digits: int | None, finish_on_key: str) -> tuple[str, bool]:
    """The Digits Twilio submits for `keys`, and whether input ended before the timeout."""
    digits = ""
    for key in keys:
        if finish_on_key and key == finish_on_key:
            return digits, True
        digits += key
        if num_digits and len(digits) >= num_digits:
            return digits, True
    return digits, False


def gather(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Play the nested prompts, take the script's next answer, then post it to `action` (or fall through)."""
    inputs = set((el.get("input") or "dtmf").split())
    action = url_attr(el, "action", doc_url) or doc_url  # no action: Twilio requests the current document
    method_attr(el)
    timeout = number_attr(el, "timeout", 5)
    for child in el:
        PROMPTS[child.tag](call, child, doc_url, ctx)
    started = call.control.now
    answer = call.cursor.next_hold_answer(timeout) if ctx.kind == "wait" else call.cursor.next_answer(timeout)
    listened = (
        call.control.now - started
    )  # a live caller (simulator/softphone.py) may take time to answer; a script none
    if answer == HANGUP:
        raise HungUp("completed", by="caller")
    extra: dict[str, str] = {}
    if isinstance(answer, Speech) and "speech" in inputs:
        call.control.wait(speaking_seconds(answer.text) + 1)
        extra = {"SpeechResult": answer.text, "Confidence": f"{answer.confidence:.8f}"}
    elif isinstance(answer, str) and "dtmf" in inputs:
        num = number_attr(el, "numDigits", 0)
        digits, finished = keyed(answer, int(num) or None, el.get("finishOnKey", "#"))
        call.control.wait(KEY_SECONDS * len(answer) + (0 if finished else timeout))
        if digits:
            extra = {"Digits": digits}
    else:  # silence, or input of a kind this <Gather> does not listen for
        call.control.wait(max(0.0, timeout - listened))
    if extra:
        return Goto(action, "gather", extra)
    if el.get("actionOnEmptyResult") == "true":
        return Goto(action, "gather")
    return None


def redirect(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Continue with the TwiML at the (relative or absolute) URL."""
    method_attr(el)
    return Goto(resolve(doc_url, text(el)), "redirect")


def hangup(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """End the call; in a whisper, the called party declines instead."""
    if ctx.kind == "whisper":
        return DECLINED
    raise HungUp("completed", by="twiml")


def reject(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Refuse an unanswered call (busy or no-answer by `reason`); end an answered one."""
    if call.status != "ringing":
        raise HungUp("completed", by="twiml")
    raise HungUp("busy" if el.get("reason") == "busy" else "no-answer", by="twiml")


def leave(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Leave the queue; only meaningful in a waitUrl document."""
    if ctx.kind != "wait":
        raise TwimlRejected(f"call {call.sid}: <Leave> in {doc_url}, which is not an Enqueue waitUrl document")
    return LEAVE


BASIC: dict[str, Handler] = {
    **PROMPTS, "Gather": gather, "Redirect": redirect, "Hangup": hangup, "Reject": reject, "Leave": leave,
}
