"""What a simulated call leaves behind for assertions: transcript, requests, queue and dial outcomes."""
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


@dataclass(frozen=True)
class WebhookRequest:
    """One request the simulator made for a call, with the answer it got."""

    kind: str  # voice, gather, redirect, wait, enqueue-action, dial-action, whisper, rest-redirect, status
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
    error: BaseException | None = None

    def said(self) -> list[str]:
        """The text of every <Say> the caller heard, in order."""
        return [h.text for h in self.transcript if h.verb == "say"]

    def requests_of(self, kind: str) -> list[WebhookRequest]:
        """The requests of one kind (e.g. "wait"), in order."""
        return [r for r in self.requests if r.kind == kind]
