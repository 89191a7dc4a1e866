"""Twilio's conferences as data: a conference, its participants and announcements, what a participant asks for.

Facts from https://www.twilio.com/docs/voice/api/conference-resource (status init, in-progress, completed) and
https://www.twilio.com/docs/voice/api/conference-participant-resource (participant status queued, connecting,
ringing, connected, complete, failed; only participants connecting to or in a conference that is not completed
are listed). The registry that changes them is simulator/conferences.py.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from simulator.confcallbacks import Delivery
from simulator.control import CallControl
from simulator.endpoints import Endpoint
from simulator.results import CallResult, ConferenceVisit, WebhookRequest

LARGEST = 250  # "a maximum participant capacity of 250" (https://www.twilio.com/docs/voice/twiml/conference)
EVENTS = frozenset({"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"})
# Which statusCallbackEvent value selects each StatusCallbackEvent sent.
GROUP = {
    "conference-start": "start", "conference-end": "end", "participant-join": "join", "participant-leave": "leave",
    "participant-mute": "mute", "participant-unmute": "mute", "participant-hold": "hold",
    "participant-unhold": "hold", "participant-modify": "modify", "announcement-end": "announcement",
}
REASONS = {  # the free-text Reason sent with conference-end (Twilio's wording is not documented)
    "conference-ended-via-api": "Conference ended via API",
    "participant-with-end-conference-on-exit-left": "Participant with endConferenceOnExit left the conference",
    "participant-with-end-conference-on-exit-kicked": "Participant with endConferenceOnExit was removed via API",
    "last-participant-left": "Last participant left the conference",
    "last-participant-kicked": "Last participant was removed via API",
}


class ConferenceCall(Protocol):
    """What a conference needs of a participant's call (simulator/call.py's SimulatedCall)."""

    sid: str
    from_: str
    to: str
    direction: str
    status: str
    control: CallControl
    result: CallResult
    callee: Endpoint | None


def party(call: ConferenceCall) -> str:
    """Who is on a call: the caller of an inbound call, the called device or number of an outbound one."""
    return call.to if call.direction.startswith("outbound") else call.from_


@dataclass(frozen=True)
class JoinSpec:
    """What a <Conference> noun (or a Participants create) asks for; Twilio's defaults."""

    name: str
    label: str | None = None
    muted: bool = False
    beep: str = "true"  # true, false, onEnter, onExit (no audio is simulated)
    start_on_enter: bool = True
    end_on_exit: bool = False
    wait_url: str | None = None  # None: Twilio's default hold music; "": silence
    max_participants: int = LARGEST
    coach: str | None = None  # the CallSid this participant coaches
    status_callback: str | None = None
    events: frozenset[str] = frozenset()
    hangup_on_star: bool = False  # the enclosing <Dial>'s


@dataclass(eq=False)
class Announcement:
    """An AnnounceUrl played to one participant or to everyone in a conference; fetched once, heard by each."""

    url: str
    participant: Participant | None  # None: the whole conference
    pending: set[str]  # the CallSids still to hear it
    root: ET.Element | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def document(self, fetch: Callable[[str], ET.Element]) -> ET.Element:
        """The announcement's TwiML, requested by the first participant to play it."""
        with self.lock:
            if self.root is None:
                self.root = fetch(self.url)
            return self.root


@dataclass(eq=False)
class Participant:
    """A call connecting to or in a conference. Fields change under the registry's lock only; token() reads them
    without it (a call's thread watches it while waiting)."""

    conference: Conference
    call: ConferenceCall
    spec: JoinSpec
    label: str | None
    muted: bool
    start_on_enter: bool
    end_on_exit: bool
    wait_url: str | None
    coaching: bool = False
    call_sid_to_coach: str | None = None
    hold: bool = False
    hold_url: str | None = None  # None: Twilio's default hold music
    beep_on_exit: bool | None = None
    joined: bool = False  # False: a participant the REST API is still dialling
    left: str | None = None  # ReasonParticipantLeft, once it is out
    star: bool = False  # the caller pressed * (hangupOnStar)
    announcements: list[Announcement] = field(default_factory=list)
    visit: ConferenceVisit | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def call_sid(self) -> str:
        """The participant's CallSid."""
        return self.call.sid

    def status(self) -> str:
        """The Participant resource's status."""
        if self.left is not None:
            return "complete"
        if self.joined:
            return "connected"
        return {"queued": "queued", "ringing": "ringing", "in-progress": "connecting"}.get(self.call.status, "failed")

    def token(self) -> tuple[object, ...]:
        """Everything that changes what the participant hears; a change wakes its call's thread."""
        first = next(iter(self.announcements), None)
        return self.left, self.star, self.hold, self.conference.status, id(first) if first else None

    def mode(self) -> str:
        """What the participant hears now: left, announce, hold, wait (not started) or talk."""
        if self.left is not None or self.star:
            return "left"
        if self.announcements:
            return "announce"
        if self.hold:
            return "hold"
        return "talk" if self.conference.status == "in-progress" else "wait"

    def fields(self) -> dict[str, str]:
        """The participant's part of a status callback."""
        fields = {
            "CallSid": self.call_sid, "Muted": _bool(self.muted), "Hold": _bool(self.hold),
            "Coaching": _bool(self.coaching), "EndConferenceOnExit": _bool(self.end_on_exit),
            "StartConferenceOnEnter": _bool(self.start_on_enter),
        }
        if self.label:
            fields["ParticipantLabel"] = self.label
        return fields


@dataclass(eq=False)
class Conference:
    """One conference room's life: created by its first participant, ended once (a name may be reused after)."""

    sid: str
    friendly_name: str
    delivery: Delivery
    status_callback: str | None  # set by the first participant; later ones are ignored
    events: frozenset[str]
    max_participants: int
    status: str = "init"
    participants: list[Participant] = field(default_factory=list)  # joined and being dialled, in order
    reason_ended: str | None = None
    call_sid_ending: str | None = None
    label_ending: str | None = None
    sequence: int = 0
    results: list[CallResult] = field(default_factory=list)  # every call that took part
    requests: list[WebhookRequest] = field(default_factory=list)  # every status callback sent
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))

    def joined(self) -> list[Participant]:
        """The participants in the conference (not those still being dialled)."""
        return [p for p in self.participants if p.joined]

    def find(self, who: str) -> Participant | None:
        """A participant by CallSid or label."""
        return next((p for p in self.participants if who in (p.call_sid, p.label)), None)


def note_who_hears(conf: Conference) -> list[tuple[Participant, Participant]]:
    """Note, for each participant in a conference in progress, every party it can hear now (who talked with whom);
    returns the pairs (hearer, heard) noted for the first time in the hearer's visit."""
    if conf.status != "in-progress":
        return []
    joined, first = conf.joined(), []
    for x in joined:
        for y in joined:
            if x is not y and x.visit is not None and _hears(x, y) and party(y.call) not in x.visit.met:
                x.visit.met.append(party(y.call))
                x.visit.met_labels.append(y.label or "")
                first.append((x, y))
    return first


def _hears(x: Participant, y: Participant) -> bool:
    """x hears y: neither is on hold, y is not muted, and y coaches nobody or coaches x (whom alone a coach reaches)."""
    return not x.hold and not y.hold and not y.muted and (not y.coaching or y.call_sid_to_coach == x.call_sid)


def _bool(value: bool) -> str:
    return "true" if value else "false"
