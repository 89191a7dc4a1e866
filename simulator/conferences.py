"""The account's conferences: joining, leaving, starting, ending, participant updates and announcements, with the
status callbacks and events each change sends. Every method is atomic under one lock.

Facts from https://www.twilio.com/docs/voice/twiml/conference: room names are namespaced to the account; "start"
happens "when there are at least two participants in the conference, and at least one of the participants has
startConferenceOnEnter"; "end" when "the last participant has left the conference or a participant with
endConferenceOnExit leaves", and then "all other participants drop out" ("each participant's <Dial> will
complete"); "the statusCallback URL is set by the first Participant to join the conference" and "the first
Participant to join the conference sets the events"; the callback parameters are that page's table (ConferenceSid,
FriendlyName, AccountSid, SequenceNumber, Timestamp, StatusCallbackEvent; the participant's CallSid, Muted, Hold,
Coaching, EndConferenceOnExit, StartConferenceOnEnter, ParticipantLabel; ParticipantCallStatus and
ReasonParticipantLeft on leave; CallSidEndingConference, ParticipantLabelEndingConference, ReasonConferenceEnded
and Reason on end; AnnounceUrl on announcement). Events: conference.start, .end, .join, .leave, .hold, .unhold,
.mute, .unmute, .modify, .announced (call_sid: the participant's call; conference, conference_sid, label, endpoint),
and met (call_sid and endpoint: a call's; met, met_label: a party it hears for the first time in this stay).
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from simulator.confcallbacks import Delivery, Post
from simulator.confmodel import (
    GROUP,
    REASONS,
    Announcement,
    Conference,
    ConferenceCall,
    JoinSpec,
    Participant,
    note_who_hears,
    party,
)
from simulator.errors import SimulationError
from simulator.events import EventLog
from simulator.results import ConferenceVisit

# What the participant resource's update changes, besides Muted and Hold: each sends participant-modify
# ("BeepOnExit, EndConferenceOnExit, Coaching, WaitUrl").
MODIFY = ("coaching", "call_sid_to_coach", "end_on_exit", "beep_on_exit", "wait_url")


class JoinRefused(Exception):
    """Twilio does not add the call: a label in use (16025), an unknown coached call (13240), a full room."""

    def __init__(self, code: int | None, why: str) -> None:
        super().__init__(why)
        self.code = code


class ConferenceRegistry:
    """All conferences of the account, by sid; at most one active (not completed) per FriendlyName."""

    def __init__(self, account_sid: str, events: EventLog, post: Post, closed: threading.Event,
                 failures: list[BaseException], clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.lock = threading.RLock()
        self._account_sid, self._events, self._post, self._clock = account_sid, events, post, clock
        self._closed, self._failures = closed, failures
        self._by_sid: dict[str, Conference] = {}

    # -- lookups --

    def get(self, sid: str) -> Conference | None:
        """The conference with this sid, if any."""
        with self.lock:
            return self._by_sid.get(sid)

    def active_named(self, name: str) -> Conference | None:
        """The conference of that name that has not ended, if any."""
        with self.lock:
            return next((c for c in self._by_sid.values() if c.friendly_name == name and c.status != "completed"), None)

    def lookup(self, name_or_sid: str) -> Conference | None:
        """A conference by sid, or the latest by FriendlyName."""
        with self.lock:
            named = [c for c in self._by_sid.values() if c.friendly_name == name_or_sid]
            return self._by_sid.get(name_or_sid) or (named[-1] if named else None)

    def all(self) -> list[Conference]:
        """Every conference, oldest first."""
        with self.lock:
            return list(self._by_sid.values())

    # -- joining and leaving --

    def join(self, call: ConferenceCall, spec: JoinSpec) -> Participant:
        """Put a call in the named conference (created on demand); JoinRefused when Twilio would not."""
        with self.lock:
            conf = self.active_named(spec.name)
            part = conf.find(call.sid) if conf else None
            if part is None:  # a participant the Participants API dialled is already listed
                self._admit(conf, spec)
                conf = conf or self._create(spec)
                part = Participant(conf, call, spec, spec.label, spec.muted, spec.start_on_enter, spec.end_on_exit,
                                   spec.wait_url, coaching=bool(spec.coach), call_sid_to_coach=spec.coach)
                conf.participants.append(part)
            part.joined, part.updated = True, datetime.now(UTC)
            part.visit = ConferenceVisit(conf.friendly_name, conf.sid, part.label, call.control.now)
            call.result.conferences.append(part.visit)
            if call.result not in conf.results:
                conf.results.append(call.result)
            self._notify(conf, "participant-join", part)
            self._emit("join", conf, part)
            if conf.status == "init" and len(conf.joined()) >= 2 and any(p.start_on_enter for p in conf.joined()):
                conf.status, conf.updated = "in-progress", datetime.now(UTC)
                self._notify(conf, "conference-start")
                self._emit("start", conf, part)
                for p in conf.joined():
                    p.call.control.poke()  # their wait music stops
            self._note_who_hears(conf)
            return part

    def _admit(self, conf: Conference | None, spec: JoinSpec) -> None:
        if spec.label and conf is not None and conf.find(spec.label) is not None:
            # https://www.twilio.com/docs/api/errors/16025: "does not add the call ... continues to the next verb"
            raise JoinRefused(16025, f"participant label {spec.label!r} is in use in {spec.name!r}")
        if conf is not None and len(conf.joined()) >= conf.max_participants:
            raise JoinRefused(None, f"conference {spec.name!r} already holds {conf.max_participants} participants")
        if spec.coach and (conf is None or spec.coach not in {p.call_sid for p in conf.joined()}):
            # "a call SID that does not exist or is no longer connected to the conference will result in the call
            # failing to the action URL and throwing a 13240 error" (the <Conference> page, coach)
            raise JoinRefused(13240, f"coach: {spec.coach} is not in conference {spec.name!r}")

    def add_pending(self, call: ConferenceCall, spec: JoinSpec, conf: Conference | None) -> Participant:
        """A participant the Participants API is dialling (listed, not yet in); the conference is created if need be."""
        with self.lock:
            conf = conf or self.active_named(spec.name) or self._create(spec)
            part = Participant(conf, call, spec, spec.label, spec.muted, spec.start_on_enter, spec.end_on_exit,
                               spec.wait_url, coaching=bool(spec.coach), call_sid_to_coach=spec.coach)
            conf.participants.append(part)
            return part

    def _create(self, spec: JoinSpec) -> Conference:
        sid = "CF" + uuid.uuid4().hex
        conf = Conference(sid, spec.name, Delivery(self._post, self._closed, self._failures, sid),
                          spec.status_callback, spec.events, spec.max_participants)
        self._by_sid[sid] = conf
        return conf

    def leave(self, part: Participant, reason: str, call_status: str = "in-progress", kicked: bool = False) -> None:
        """The participant is out (nothing happens if it already is); the conference may end with it."""
        with self.lock:
            conf = part.conference
            if part not in conf.participants:
                return
            self._remove(part, reason, call_status)
            if conf.status == "completed":
                return
            how = "kicked" if kicked else "left"
            if part.end_on_exit and part.joined:
                self._end(conf, f"participant-with-end-conference-on-exit-{how}", part)
            elif not conf.participants:
                self._end(conf, f"last-participant-{how}", part)
            else:
                self._note_who_hears(conf)

    def end(self, conf: Conference, reason: str = "conference-ended-via-api") -> None:
        """End the conference (the REST API's Status=completed); every participant drops out."""
        with self.lock:
            if conf.status != "completed":
                self._end(conf, reason, None)

    def _remove(self, part: Participant, reason: str, call_status: str) -> None:
        conf = part.conference
        conf.participants.remove(part)
        part.left, part.updated = reason, datetime.now(UTC)
        if part.visit is not None:
            part.visit.left_at, part.visit.reason_left = part.call.control.now, reason
        for ann in list(part.announcements):
            self._heard(ann, part)
        self._notify(conf, "participant-leave", part,
                     {"ParticipantCallStatus": call_status, "ReasonParticipantLeft": reason})
        self._emit("leave", conf, part, reason=reason)
        part.call.control.poke()  # its <Dial> completes

    def _end(self, conf: Conference, reason: str, ending: Participant | None) -> None:
        conf.status, conf.updated, conf.reason_ended = "completed", datetime.now(UTC), reason
        if ending is not None:
            conf.call_sid_ending, conf.label_ending = ending.call_sid, ending.label
        dropped = "conference_ended_via_api" if reason == "conference-ended-via-api" else "moderator_ended_conference"
        for part in list(conf.participants):
            self._remove(part, dropped, "in-progress" if part.joined else part.call.status)
        extra = {"ReasonConferenceEnded": reason, "Reason": REASONS[reason]}
        if ending is not None:
            extra["CallSidEndingConference"] = ending.call_sid
            if ending.label:
                extra["ParticipantLabelEndingConference"] = ending.label
        self._notify(conf, "conference-end", None, extra)
        self._emit("end", conf, ending, reason=reason)

    def call_ended(self, call: ConferenceCall, status: str) -> None:
        """A call ended: a participant still being dialled failed to join; its conferences' callbacks are flushed."""
        with self.lock:
            pending = [p for c in self._by_sid.values() for p in c.participants if p.call is call and not p.joined]
            confs = {self._by_sid[v.conference_sid] for v in call.result.conferences} | {p.conference for p in pending}
        for part in pending:
            self.leave(part, "participant_add_failed", status)
        for conf in confs:
            if not conf.delivery.flush():
                self._failures.append(SimulationError(f"call {call.sid}: the status callbacks of conference "
                                                      f"{conf.friendly_name!r} were not answered in time"))

    def press_star(self, call_sid: str) -> bool:
        """The caller presses * in a conference joined with <Dial hangupOnStar="true">; False when that is not so."""
        with self.lock:
            part = next((p for c in self._by_sid.values() for p in c.joined() if p.call_sid == call_sid), None)
            if part is None or not part.spec.hangup_on_star:
                return False
            part.star = True
            part.call.control.poke()
            return True

    # -- the Participant resource's levers --

    def update(self, part: Participant, changes: dict[str, Any]) -> None:
        """Mute, hold (with hold_url) and the attributes participant-modify reports."""
        with self.lock:
            conf = part.conference
            if "muted" in changes and changes["muted"] != part.muted:
                part.muted = changes["muted"]
                self._notify(conf, "participant-mute" if part.muted else "participant-unmute", part)
                self._emit("mute" if part.muted else "unmute", conf, part)
            if "hold_url" in changes:
                part.hold_url = changes["hold_url"]
            if "hold" in changes and changes["hold"] != part.hold:
                part.hold = changes["hold"]
                self._notify(conf, "participant-hold" if part.hold else "participant-unhold", part)
                self._emit("hold" if part.hold else "unhold", conf, part)
            modified = [name for name in MODIFY if name in changes and getattr(part, name) != changes[name]]
            for name in modified:
                setattr(part, name, changes[name])
            if modified:
                self._notify(conf, "participant-modify", part)
                self._emit("modify", conf, part, changed=",".join(modified))
            part.updated = datetime.now(UTC)
            part.call.control.poke()
            self._note_who_hears(conf)

    def announce(self, conf: Conference, url: str, participant: Participant | None = None) -> Announcement:
        """Play `url` to one participant, or to everyone in the conference."""
        with self.lock:
            targets = [participant] if participant is not None else conf.joined()
            ann = Announcement(url, participant, {p.call_sid for p in targets})
            for part in targets:
                part.announcements.append(ann)
                part.call.control.poke()
            if not targets:
                self._announcement_end(conf, ann)
            return ann

    def announced(self, part: Participant, ann: Announcement) -> None:
        """The participant heard the announcement to its end."""
        with self.lock:
            self._heard(ann, part)

    def _heard(self, ann: Announcement, part: Participant) -> None:
        if ann in part.announcements:
            part.announcements.remove(ann)
        ann.pending.discard(part.call_sid)
        if not ann.pending:
            self._announcement_end(part.conference, ann)

    def _announcement_end(self, conf: Conference, ann: Announcement) -> None:
        to = ann.participant if ann.participant in conf.participants else None
        self._notify(conf, "announcement-end", to, {"AnnounceUrl": ann.url})
        self._emit("announced", conf, ann.participant, url=ann.url)

    # -- what each change tells --

    def _notify(self, conf: Conference, event: str, part: Participant | None = None,
                extra: dict[str, str] | None = None) -> None:
        """Queue a status callback for an event the conference's first participant selected."""
        if not conf.status_callback or GROUP[event] not in conf.events:
            return
        conf.sequence += 1
        params = {
            "AccountSid": self._account_sid, "ConferenceSid": conf.sid, "FriendlyName": conf.friendly_name,
            "StatusCallbackEvent": event, "Timestamp": format_datetime(self._clock()),
            "SequenceNumber": str(conf.sequence), **(part.fields() if part else {}), **(extra or {}),
        }
        # A participant's event goes in its call's result; the conference's in the result of every call that took part.
        records = [part.call.result.requests] if part else [r.requests for r in conf.results]
        conf.delivery.send(conf.status_callback, params, [*records, conf.requests])

    def _note_who_hears(self, conf: Conference) -> None:
        # "met": the hearer's call first hears someone in this stay (`hotline call` prints each agent reached from it).
        for x, y in note_who_hears(conf):
            self._events.emit("met", x.call_sid, conference=conf.friendly_name, conference_sid=conf.sid,
                              endpoint=party(x.call), met=party(y.call), met_label=y.label)

    def _emit(self, kind: str, conf: Conference, part: Participant | None, **data: str) -> None:
        self._events.emit(
            f"conference.{kind}", part.call_sid if part else "", conference=conf.friendly_name,
            conference_sid=conf.sid, label=part.label if part else None,
            endpoint=party(part.call) if part else None, **data,
        )
