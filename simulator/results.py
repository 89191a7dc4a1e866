"""What a simulated call leaves behind for assertions: transcript, requests, queue, dial and conference outcomes."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heard:
    """One thing played to a party: verb "say", "play" or "pause", what it said, and where it came from."""

    verb: str
    text: str = ""
    voice: str = ""
    language: str = ""
    url: str = ""  # the document that held the verb
    seconds: float = 0.0
    party: str = ""  # who heard it: main, wait, whisper, conference-wait, hold or announce (the Context's kind)


@dataclass(frozen=True)
class WebhookRequest:
    """One request the simulator made for a call, with the answer it got."""

    # voice, gather, redirect, wait, enqueue-action, dial-action, whisper, rest-redirect, status,
    # conference-wait, hold, announce (the conference's documents), conference-status (its status callbacks)
    kind: str
    url: str
    params: dict[str, str]
    status: int
    body: str


@dataclass(frozen=True)
class DialOutcome:
    """How one <Dial> ended, as its action request reported it, plus what the called party heard."""

    status: str  # DialCallStatus
    dial_call_sid: str
    duration: int  # DialCallDuration
    endpoint: str  # "client:alice" or "+8613800000001"
    whisper: list[Heard] = field(default_factory=list)


@dataclass
class ConferenceVisit:
    """One stay of a call in a conference: when (simulated seconds into the call), and whom it heard there."""

    conference: str  # FriendlyName
    conference_sid: str
    label: str | None
    joined_at: float
    left_at: float | None = None
    reason_left: str | None = None  # ReasonParticipantLeft
    # Each party this call could hear in the conference, in the order first heard: a Client ("client:ann") or a
    # number (the From of an inbound call, the To of an outbound one); met_labels holds their labels alike.
    met: list[str] = field(default_factory=list)
    met_labels: list[str] = field(default_factory=list)


@dataclass
class CallResult:
    """Everything about one finished (or failed) call."""

    sid: str
    from_: str
    to: str
    direction: str
    status: str = "queued"
    duration: int = 0  # CallDuration: simulated seconds from answer to hang-up
    transcript: list[Heard] = field(default_factory=list)
    requests: list[WebhookRequest] = field(default_factory=list)
    queue_results: list[dict[str, str]] = field(default_factory=list)  # params of each Enqueue action request
    dial_results: list[DialOutcome] = field(default_factory=list)
    conferences: list[ConferenceVisit] = field(default_factory=list)
    error: BaseException | None = None

    def said(self) -> list[str]:
        """The text of every <Say> the caller heard, in order."""
        return [h.text for h in self.transcript if h.verb == "say"]

    def talked_with(self) -> list[str]:
        """Every party this call heard in its conferences, in order ("the caller talked with ann, then bob")."""
        met: list[str] = []
        for visit in self.conferences:
            met += [party for party in visit.met if not met or met[-1] != party]
        return met

    def requests_of(self, kind: str) -> list[WebhookRequest]:
        """The requests of one kind (e.g. "wait"), in order."""
        return [r for r in self.requests if r.kind == kind]
