"""What a simulated caller does: the answers it gives to successive <Gather>s and when it hangs up."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

KEYS = "0123456789*#"
HANGUP = "<hangup>"
"""An answer that makes the caller hang up when that <Gather> starts listening."""


@dataclass(frozen=True)
class Speech:
    """Spoken input for a speech <Gather>."""

    text: str
    confidence: float = 0.9


# A string of keypresses ("1", "123456#"), ("speech", text[, confidence]), Speech, None (silence) or HANGUP.
Answer = str | tuple[Any, ...] | Speech | None


@dataclass(frozen=True)
class Script:
    """A caller's behaviour. Immutable: one script may serve many calls (a phone called twice)."""

    answers: Sequence[Answer] = ()
    when_answers_run_out: Literal["silence", "hangup"] = "silence"
    hangup_after_seconds: float | None = None  # simulated seconds into the call
    hangup_after_queue_seconds: float | None = None  # simulated seconds spent in one queue
    hangup_after_hold_loops: int | None = None  # waitUrl documents heard in one queue
    hangup_after_talk_seconds: float | None = None  # simulated seconds into a bridged <Dial>
    # Keys pressed at <Gather>s heard while holding in a queue (waitUrl documents and the documents their
    # actions chain to). People on hold mostly listen: when these run out, the caller is silent there,
    # whatever `when_answers_run_out` says (hanging up on hold is `hangup_after_queue_seconds`' business).
    hold_answers: Sequence[Answer] = ()


def normalise(answer: Answer) -> str | Speech | None:
    """An answer as keypresses (str, possibly HANGUP), Speech, or None for silence."""
    if isinstance(answer, tuple):
        if not answer or answer[0] != "speech" or len(answer) not in (2, 3):
            raise ValueError(f"a tuple answer is ('speech', text[, confidence]), not {answer!r}")
        return Speech(*answer[1:])
    if isinstance(answer, str) and answer != HANGUP and not set(answer) <= set(KEYS):
        raise ValueError(f"keypresses are made of {KEYS}, not {answer!r}")
    if answer is None or isinstance(answer, (str, Speech)):
        return answer
    raise ValueError(f"not a caller answer: {answer!r}")


class ScriptCursor:
    """One call's progress through its script."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._answers = [normalise(a) for a in script.answers]  # fail on a bad script before dialling
        self._hold = [normalise(a) for a in script.hold_answers]
        self._next = 0
        self._next_hold = 0

    def next_answer(self, listen_s: float = 0.0) -> str | Speech | None:
        """The answer for the next <Gather> (a script answers at once; a live caller may take up to `listen_s`)."""
        if self._next < len(self._answers):
            self._next += 1
            return self._answers[self._next - 1]
        return HANGUP if self.script.when_answers_run_out == "hangup" else None

    def next_hold_answer(self, listen_s: float = 0.0) -> str | Speech | None:
        """The answer for the next <Gather> heard while holding in a queue (silence once they run out)."""
        if self._next_hold < len(self._hold):
            self._next_hold += 1
            return self._hold[self._next_hold - 1]
        return None
