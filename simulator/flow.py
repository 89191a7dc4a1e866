"""How a verb tells the call engine where to go next, and the context a document runs in."""
from __future__ import annotations

from dataclasses import dataclass, field

from simulator.queues import Member
from simulator.results import Heard


@dataclass(frozen=True)
class Goto:
    """Request `url` (with `extra` parameters) and run the TwiML it returns."""

    url: str
    kind: str
    extra: dict[str, str] = field(default_factory=dict)


class Marker:
    """A named outcome that is not a jump."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


LEAVE = Marker("leave")  # <Leave> ran in a waitUrl document
DECLINED = Marker("declined")  # <Hangup> ran in a whisper: the called party refused the call

Outcome = Goto | Marker | None  # None: go on with the next verb / the document ended


@dataclass
class Context:
    """Where a document runs: the main call, an Enqueue waitUrl, or a <Dial> whisper on the agent's leg."""

    kind: str  # "main", "wait", "whisper"
    heard: list[Heard]
    allowed: frozenset[str] | None = None  # verbs allowed here (None: all the simulator knows)
    member: Member | None = None  # the queue membership, in a waitUrl document
