"""What `hotline agent` does with a call once it hears someone: hold and resume, transfer (a warm one completed once
the target has answered), talk, hang up; each step through the hotline's call controls (POST /api/calls/<sid>/…).

A plan is a generator of steps (Until): the terminal's loop advances it whenever the step's time has come or its
test holds for the latest agent view. A refused control is printed with its reason and the plan goes on.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tools.phone.client import HotlineApi, HttpError

Echo = Callable[[str], None]
View = dict[str, Any]  # GET /api/agents/me


@dataclass(frozen=True)
class Shift:
    """What the agent does with each call: simulated seconds, and the controls to use."""

    ring_s: float
    talk_s: float
    wrap_s: float
    disposition: str
    hold_s: float | None = None
    transfer_to: str | None = None  # a login, or "queue"
    warm: bool = False
    manual: bool = False  # ask "accept? [y/n]" instead of answering after ring_s

    @property
    def mode(self) -> str:
        """The transfer's mode: warm only to an agent, and only when asked."""
        return "warm" if self.warm and self.transfer_to not in (None, "queue") else "cold"


@dataclass(frozen=True)
class Until:
    """A plan step: wait until `test` holds for the latest agent view, or until the monotonic `deadline`."""

    test: Callable[[View], bool] | None = None
    deadline: float = float("inf")

    def done(self, view: View) -> bool:
        """The step is over: its time has come, or its test holds."""
        return time.monotonic() >= self.deadline or (self.test is not None and self.test(view))


def refusal(exc: HttpError) -> str:
    """A refusal as the terminal prints it: status, the stable reason when there is one, the message."""
    body = exc.body if isinstance(exc.body, dict) else {}
    reason = f" {body['reason']}" if body.get("reason") else ""
    return f"{exc.status}{reason}: {body.get('error') or body.get('message') or exc.body}"


def transfer_state(view: View, sid: str) -> str | None:
    """The state of the call's transfer in the agent view: ringing, consulting, or None (none, or not our call)."""
    call = view.get("call") or {}
    transfer = call.get("transfer") if call.get("call_sid") == sid else None
    return transfer["state"] if transfer else None


class CallPlan:
    """The steps of one call, as the agent at the terminal takes them."""

    def __init__(self, api: HotlineApi, shift: Shift, scale: float, echo: Echo, on_state: Callable[[View], None],
                 view: Callable[[], View], heard_agent: Callable[[], bool], put_down: Callable[[], object]) -> None:
        self.api, self.shift, self.scale, self.echo = api, shift, scale, echo
        self.on_state, self.view, self.heard_agent, self.put_down = on_state, view, heard_agent, put_down
        self.controlled: set[str] = set()  # calls held or transferred already: if one comes back, it is only talked

    def after(self, simulated_s: float) -> Until:
        """A step that lasts `simulated_s` simulated seconds."""
        return Until(deadline=time.monotonic() + simulated_s * self.scale)

    def steps(self, sid: str, role: str) -> Iterator[Until]:
        """Hold, resume, transfer (on calls routed to us, once per call; `role` "target": transferred to us), talk,
        hang up."""
        s, first = self.shift, role == "agent" and sid not in self.controlled
        self.controlled.add(sid)
        if first and s.hold_s is not None and self.control(
                sid, "hold", {"hold": True}, f"[hold: the caller holds for {s.hold_s:g} s]"):
            yield self.after(s.hold_s)
            self.control(sid, "hold", {"hold": False}, "[resume]")
        if first and s.transfer_to is not None:
            yield from self.transfer(sid, s.transfer_to)
        yield self.after(s.talk_s)
        if not self.control(sid, "hangup", None, "[hang up]"):
            self.put_down()  # the person puts the phone down anyway

    def transfer(self, sid: str, target: str) -> Iterator[Until]:
        """Transfer the call; a warm one is completed once the target has answered and we hear them (or the caller is
        resumed if they did not answer)."""
        to = "queue" if target == "queue" else f"agent:{target}"
        if not self.control(sid, "transfer", {"to": to, "mode": self.shift.mode},
                            f"[transfer ({self.shift.mode}) to {target}]"):
            return  # refused: the caller stays with us
        if self.shift.mode == "cold":
            return  # the hotline ends our leg now, and the plan with it
        # Consulting: the target has answered; completed once we hear them (they join after their whisper) and the
        # hotline has them in the conference too (its view may show that a moment after we hear them).
        yield Until(lambda view: (state := transfer_state(view, sid)) is None or (
            state == "consulting" and self.heard_agent()))
        if transfer_state(self.view(), sid) == "consulting":
            self.control(sid, "transfer/complete", None, f"[transfer complete: {target} has the caller]")
            return
        self.echo(f"[{target} did not take the call: the caller is still with you, on hold]")
        self.control(sid, "hold", {"hold": False}, "[resume]")

    def control(self, sid: str, action: str, body: dict[str, Any] | None, line: str) -> bool:
        """One call control: print what the agent does, then the new state, or the refusal (never fatal)."""
        self.echo(line)
        try:
            self.on_state(self.api.control(sid, action, body))
        except HttpError as exc:
            self.echo(f"[{action} refused: {refusal(exc)}]")
            return False
        return True
