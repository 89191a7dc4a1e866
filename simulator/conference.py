"""<Dial><Conference>: join a named conference, wait for it to start, talk, be held or announced to, and leave.

Facts from https://www.twilio.com/docs/voice/twiml/conference unless said otherwise:
- attributes and defaults: muted false; beep true|false|onEnter|onExit (true); startConferenceOnEnter true;
  endConferenceOnExit false; participantLabel (unique in the conference, at most 128 characters); waitUrl
  (Twilio's default classical playlist; "" for nothing); waitMethod POST; maxParticipants at most 250; coach
  (a CallSid); statusCallback, statusCallbackMethod (POST), statusCallbackEvent (start end join leave mute hold
  modify speaker announcement; none by default);
- a waitUrl document may hold <Play>, <Say>, <Pause>, <Redirect>; "once the TwiML document located at the
  waitUrl runs out of verbs to execute, silence will be played" (a loop needs a <Redirect>); the same verbs for
  holdUrl and announceUrl documents (https://www.twilio.com/docs/api/errors/13238);
- with <Dial>, "callerId and timeout have no effect"; "you can set a timeLimit, after which you'll be removed
  from the conference"; hangupOnStar "lets you leave a conference by pressing the * key"; "you can specify an
  action, so that after you leave the conference room Twilio will submit to the action";
- the action request (https://www.twilio.com/docs/voice/twiml/dial#action): DialCallStatus is "answered" "when
  calling a conference"; DialCallSid and DialCallDuration are "not sent after dialing a conference"; without an
  action the call goes on with the next verb (https://www.twilio.com/docs/voice/twiml/dial).
What each participant hears is recorded in its CallResult's transcript with party "conference-wait", "hold" or
"announce"; whom it could hear, in result.conferences (simulator/results.py).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from simulator.conferences import JoinRefused
from simulator.confmodel import EVENTS, LARGEST, Announcement, JoinSpec, Participant
from simulator.control import HungUp, Redirected, Woken
from simulator.errors import NotSimulated, TwimlRejected
from simulator.flow import Context, Goto, Outcome
from simulator.results import Heard
from simulator.twiml import method_attr, number_attr, resolve, text, url_attr

if TYPE_CHECKING:
    from simulator.call import SimulatedCall

CONFERENCE_VERBS = frozenset({"Play", "Say", "Pause", "Redirect"})  # waitUrl, holdUrl and announceUrl documents
BEEPS = ("true", "false", "onEnter", "onExit")
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
DEFAULT_MUSIC = "[default hold music]"


def dial_conference(call: SimulatedCall, dial_el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Join, stay until out, then request the <Dial>'s action with DialCallStatus=answered (or go on)."""
    if len(dial_el) != 1:
        raise TwimlRejected(f"call {call.sid}: in {doc_url} <Conference> must be the only noun of its <Dial>")
    action = url_attr(dial_el, "action", doc_url)
    method_attr(dial_el)
    time_limit = number_attr(dial_el, "timeLimit", 0) or None  # Twilio's default (4 h) is the call's own limit
    spec = read_spec(dial_el, dial_el[0], doc_url)
    registry, control = call.net.conferences, call.control
    try:
        part = registry.join(call, spec)
    except JoinRefused as refused:
        call.net.events.emit("conference.refused", call.sid, conference=spec.name, code=refused.code, why=str(refused))
        if refused.code == 13240 and action:  # the coach case "fails to the action URL"
            return Goto(action, "dial-action", {"DialCallStatus": "failed", "DialBridged": "false"})
        return None  # "does not add the call ... continues to the next TwiML verb"
    try:
        reason = _stay(call, part, control.now + time_limit if time_limit else None)
        registry.leave(part, reason)  # nothing happens when it was taken out from outside
    except (Redirected, HungUp) as exc:
        # Twilio still requests the action when the call leaves the <Dial>; the call goes where the interrupt says.
        if isinstance(exc, Redirected):
            registry.leave(part, "participant_updated_via_api")
        else:
            registry.leave(part, "participant_hung_up", exc.status)
        if action:
            figures = {"DialCallStatus": "answered", "DialBridged": "true"}
            call.fetch(action, "dial-action", figures, status=exc.status if isinstance(exc, HungUp) else None)
        raise
    except BaseException:
        registry.leave(part, "participant_hung_up", "failed")  # a broken call never holds a conference open
        raise
    finally:
        control.hang_up_after("device", None)
        control.hang_up_after("talk", None)
    return Goto(action, "dial-action", {"DialCallStatus": "answered", "DialBridged": "true"}) if action else None


def read_spec(dial_el: ET.Element, noun: ET.Element, doc_url: str) -> JoinSpec:
    """The noun's attributes, checked as Twilio checks them (an invalid value fails the test loudly)."""
    if noun.tag != "Conference":
        raise NotSimulated(f"<Dial><{noun.tag}> beside <Conference> in {doc_url}")
    name = text(noun)
    if not name:
        raise TwimlRejected(f"<Conference> without a room name in {doc_url}")
    label = noun.get("participantLabel") or None
    if label is not None and (len(label) > 128 or CALL_SID.fullmatch(label) or "/" in label):
        # https://www.twilio.com/docs/api/errors/16023
        raise TwimlRejected(f"participantLabel {label!r} in {doc_url}: at most 128 characters, no '/', not a CallSid")
    beep = noun.get("beep", "true")
    if beep not in BEEPS:
        raise TwimlRejected(f"<Conference beep={beep!r}> in {doc_url}: one of {BEEPS}")
    size = int(number_attr(noun, "maxParticipants", LARGEST))
    if not 1 <= size <= LARGEST:
        raise TwimlRejected(f"<Conference maxParticipants={size}> in {doc_url}: a positive integer <= {LARGEST}")
    coach = noun.get("coach") or None
    if coach is not None and not CALL_SID.fullmatch(coach):
        raise TwimlRejected(f"<Conference coach={coach!r}> in {doc_url}: a CallSid")
    events = frozenset((noun.get("statusCallbackEvent") or "").split())
    if events - EVENTS:
        raise TwimlRejected(f"<Conference statusCallbackEvent> in {doc_url}: unknown {sorted(events - EVENTS)}")
    if noun.get("record", "do-not-record") != "do-not-record" or noun.get("recordingStatusCallback"):
        raise NotSimulated(f"conference recording ({doc_url}) is not simulated")
    method_attr(noun, "waitMethod")
    method_attr(noun, "statusCallbackMethod")
    raw_wait = noun.get("waitUrl")
    return JoinSpec(
        name, label, _flag(noun, "muted", False, doc_url), beep, _flag(noun, "startConferenceOnEnter", True, doc_url),
        _flag(noun, "endConferenceOnExit", False, doc_url),
        None if raw_wait is None else (resolve(doc_url, raw_wait) if raw_wait.strip() else ""),
        size, coach, url_attr(noun, "statusCallback", doc_url), events, dial_el.get("hangupOnStar") == "true",
    )


def _flag(noun: ET.Element, name: str, default: bool, doc_url: str) -> bool:
    """A true/false attribute (https://www.twilio.com/docs/api/errors/13231, 13232: "must be either true or false")."""
    value = noun.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise TwimlRejected(f'<Conference {name}="{value}"> in {doc_url}: must be "true" or "false"')
    return value == "true"


def _stay(call: SimulatedCall, part: Participant, deadline: float | None) -> str:
    """Hear what the participant's state says until it is out; the ReasonParticipantLeft."""
    control, talking = call.control, False
    while True:
        token = part.token()
        mode = part.mode()
        if mode == "talk" and not talking:  # a scripted caller's patience counts from the conversation's start
            talking = True
            control.hang_up_after("talk", call.cursor.script.hangup_after_talk_seconds)
            callee = call.callee
            if callee is not None and callee.behaviour == "answer" and callee.talk_seconds is not None:
                # an agent's device talks for talk_seconds from the start of the conversation, then hangs up
                control.hang_up_after("device", callee.talk_seconds, by="callee")
        if mode == "left" or (deadline is not None and control.now >= deadline):
            return part.left or "participant_hung_up"  # hung up on the conference: * or the <Dial>'s timeLimit
        try:
            ann = next(iter(part.announcements), None)
            if mode == "announce" and ann is not None:
                with control.watching(lambda: part.left is not None or part.star, deadline):
                    _announce(call, ann)
                call.net.conferences.announced(part, ann)
                continue
            with control.watching(lambda seen=token: part.token() != seen, deadline):
                if mode == "hold":
                    _play(call, part.hold_url, "hold")
                elif mode == "wait":
                    _play(call, part.wait_url, "conference-wait")
                else:
                    control.wait(None)  # in the conversation until something changes
        except Woken:
            continue


def _play(call: SimulatedCall, url: str | None, party: str) -> None:
    """A waitUrl or holdUrl: the document once (then silence), or Twilio's default music (which plays on)."""
    ctx = Context(party, call.result.transcript, CONFERENCE_VERBS)
    if url is None:
        call.hear(ctx, Heard("play", DEFAULT_MUSIC, seconds=call.net.options.play_seconds))
    elif url:
        _run(call, Goto(url, party), ctx)
    call.control.wait(None)


def _announce(call: SimulatedCall, ann: Announcement) -> None:
    """An announcement's document, played to this participant."""
    ctx = Context("announce", call.result.transcript, CONFERENCE_VERBS)
    root = ann.document(lambda url: call.fetch(url, "announce"))
    outcome = call.run_document(root, ann.url, ctx)
    if isinstance(outcome, Goto):
        _run(call, outcome, ctx)


def _run(call: SimulatedCall, nxt: Goto | None, ctx: Context) -> None:
    """Fetch and run documents, following <Redirect>, until one runs out of verbs."""
    while nxt is not None:
        root = call.fetch(nxt.url, nxt.kind, nxt.extra)
        outcome = call.run_document(root, nxt.url, ctx)
        nxt = outcome if isinstance(outcome, Goto) else None
