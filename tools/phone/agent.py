"""`hotline agent`'s agent at the terminal: available with a heartbeat, answers on the simulated device, holds,
transfers, hangs up, wraps up, and prints every change of their state and of the call's.

Each call follows one plan (a generator of steps, below): the device rings and is accepted after --ring (or when the
person types y); once the agent hears someone, the caller is held for --hold and resumed, transferred (--transfer-to,
a warm transfer completed once the target has answered), and after --talk the agent hangs up. A call transferred to
this agent, or one it held or transferred before, is only answered and talked. Times are simulated seconds (times the
simulator's scale), as the device's; the heartbeat's are real.
"""
from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

from tools.phone.client import HotlineApi, HttpError, Located, PhoneError
from tools.phone.plan import CallPlan, Echo, Shift, Until, View, refusal
from tools.phone.transcript import describe_caller, who

HEARTBEAT_EVERY_S = 10.0  # real seconds; the hotline sets an agent offline after presence.heartbeat_timeout_s (60)
POLL_S = 1.0  # the agent view is read at least this often (and at once on each device event)
BUSY_POLL_S = 0.2  # while a step waits on the call's state (a warm transfer's target answering) or a typed answer


class TerminalAgent:
    """One agent at the terminal, driven by the simulator's device events and the hotline's agent view."""

    def __init__(self, api: HotlineApi, located: Located, identity: str, shift: Shift, scale: float, echo: Echo,
                 typed: queue.Queue[str] | None = None) -> None:
        self.api, self.sim, self.identity, self.shift = api, located.sim, identity, shift
        self.scale, self.echo, self.typed = scale, echo, typed
        self.view: View = {}
        self.status = ""
        self.shown: set[str] = set()  # calls whose context was printed
        self.call_state: tuple[str, str] | None = None  # (caller's CallSid, state) last printed
        self.transfer: tuple[Any, ...] | None = None
        self.ringing: str | None = None  # the device's leg ringing here
        self.accept_at: float | None = None
        self.leg: str | None = None  # the device's answered leg
        self.caller: str | None = None  # the caller's CallSid of the leg ringing or answered
        self.role = "agent"  # or "target": the call is being transferred to us
        self.plan: Iterator[Until] | None = None
        self.step: Until | None = None
        self.wrap_due: float | None = None
        self.beat_due = 0.0
        self.heard: list[str] = []  # the labels of the parties heard on the answered leg
        self.calls = CallPlan(api, shift, scale, echo, self.on_state, lambda: self.view,
                              lambda: any(label != "caller" for label in self.heard),
                              lambda: self.sim.device(self.identity, "hangup"))

    # -- starting --

    def start(self) -> int:
        """Register the device ("manual": this terminal answers it), heartbeat, go available; the event seq."""
        seq = int(self.sim.register_agent(self.identity, 0, None, behaviour="manual")["seq"])
        self.beat_due = time.monotonic() + HEARTBEAT_EVERY_S
        try:
            self.api.heartbeat("registered")
        except HttpError as exc:
            self.echo(f"[heartbeat refused: {refusal(exc)}]")
        me = self.api.set_status("available")
        device = me.get("device") or {}
        if device.get("mode") == "phone":
            self.api.set_status("offline")
            raise PhoneError(f"{me['login']} is rung on a phone ({device.get('endpoint')}), which this terminal "
                             "cannot answer; give the agent a Client identity (--client)", 2)
        if device.get("identity") and device["identity"] != self.identity:
            self.echo(f"[the hotline rings client:{device['identity']}, not client:{self.identity}: answering that]")
            self.identity = device["identity"]
            seq = int(self.sim.register_agent(self.identity, 0, None, behaviour="manual")["seq"])
        s = self.shift
        answers = "you answer (y/n)" if s.manual else f"answered after {s.ring_s:g} s"
        extra = f"; hold {s.hold_s:g} s" if s.hold_s is not None else ""
        extra += f"; transfer ({s.mode}) to {s.transfer_to}" if s.transfer_to is not None else ""
        self.echo(f"{me['name']} ({me['login']}) is {me['status']}; client:{self.identity} rings here, {answers}, "
                  f"talks {s.talk_s:g} s{extra}; wrap-up {s.wrap_s:g} s as {s.disposition!r}. Ctrl-C: offline")
        self.view, self.status = me, me["status"]
        return seq

    # -- what happens --

    def on_event(self, event: dict[str, Any]) -> None:
        """React to the device's and its conference's events (those of this identity's calls)."""
        kind, leg = event["kind"], event["call_sid"]
        if kind == "device.ringing":
            self.ringing, self.accept_at = leg, None
            self.echo(f"[phone rings: call {leg}]")
            self.on_state(self.api.me())
            call = self.view.get("call") or {}
            self.caller, self.role = call.get("call_sid"), call.get("role") or "agent"
            if self.shift.manual:
                self.echo("accept? [y/n]")
            else:
                self.accept_at = time.monotonic() + self.shift.ring_s * self.scale
        elif kind == "device.answered":
            self.leg, self.ringing, self.accept_at, self.plan, self.heard = leg, None, None, None, []
            self.echo("[you answer]")
        elif kind == "device.declined":
            self.echo("[you decline]")
        elif kind == "device.ended":
            self._ended(leg, event.get("status", ""))
        elif kind == "met" and leg == self.leg:
            self.heard.append(event.get("met_label") or "")
            self.echo("[talking with the caller]" if event.get("met_label") == "caller"
                      else f"[talking with {who(event['met'])}]")
            if self.plan is None:  # the first party heard: the call's plan starts
                sid = self.caller or (self.view.get("call") or {}).get("call_sid", "")
                self.plan, self.step = self.calls.steps(sid, self.role), None
        elif kind in ("conference.mute", "conference.unmute") and leg == self.leg:
            self.echo(f"[{kind.removeprefix('conference.')}d]")

    def _ended(self, leg: str, status: str) -> None:
        if leg == self.leg:
            self.echo(f"[call over: {status}]")
            self.wrap_due = time.monotonic() + self.shift.wrap_s * self.scale
            self.leg, self.plan, self.step = None, None, None
        elif leg == self.ringing:
            self.echo(f"[stopped ringing: {status}]")
            self.ringing, self.accept_at = None, None

    def on_state(self, me: View) -> None:
        """Print the agent's state changes, the call's, its transfer's, and a routed caller's context once."""
        self.view = me
        if me["status"] != self.status:
            self.status = me["status"]
            reason = f" ({me['reason']})" if me.get("reason") else ""
            self.echo(f"[status: {self.status}{reason}]")
        call = me.get("call")
        if not call:
            self.call_state = self.transfer = None
            return
        if call["call_sid"] not in self.shown:
            self.shown.add(call["call_sid"])
            self.echo(describe_caller(call))
        if (call["call_sid"], call.get("state")) != self.call_state and call.get("state"):
            self.call_state = (call["call_sid"], call["state"])
            self.echo(f"[call: {call['state']}]")
        t = call.get("transfer")
        transfer = (t["to"], t["mode"], t["state"]) if t else None
        if transfer != self.transfer and transfer is not None:
            self.echo(f"[transfer to {transfer[0]} ({transfer[1]}): {transfer[2]}]")
        self.transfer = transfer

    def _advance(self) -> None:
        """Run the plan as far as its steps allow now."""
        while self.plan is not None:
            if self.step is not None and not self.step.done(self.view):
                return
            try:
                self.step = next(self.plan)
            except StopIteration:
                self.plan, self.step = None, None

    # -- the loop's chores --

    def _answer(self) -> None:
        """Accept the ringing call once its ring time is over, or as the person typed."""
        if self.ringing is None:
            return
        decision = None
        if self.accept_at is not None and time.monotonic() >= self.accept_at:
            decision = "accept"
        elif self.typed is not None:
            try:
                typed = self.typed.get_nowait().strip().lower()
            except queue.Empty:
                return
            decision = {"y": "accept", "yes": "accept", "n": "decline", "no": "decline"}.get(typed)
            if decision is None:
                self.echo("accept? [y/n]")
        if decision is not None:
            self.accept_at = None
            if self.sim.device(self.identity, decision) is None:
                self.echo("[nothing rings any more]")

    def _beat(self) -> None:
        if time.monotonic() < self.beat_due:
            return
        self.beat_due = time.monotonic() + HEARTBEAT_EVERY_S
        try:
            self.on_state(self.api.heartbeat("registered"))
        except HttpError as exc:
            self.echo(f"[heartbeat refused: {refusal(exc)}]")

    def wrap_up(self, force: bool = False) -> None:
        """Save the wrap-up once due and the hotline shows it (it may not have seen the call end yet)."""
        if self.wrap_due is None or (time.monotonic() < self.wrap_due and not force):
            return
        if not force:
            self.on_state(self.api.me())
            if self.status == "on_call":
                return
            if self.status != "wrap_up":
                self.echo("[no wrap-up to save: the hotline ended it]")
                self.wrap_due = None
                return
        try:
            me = self.api.wrap_up(self.shift.disposition)
        except HttpError as exc:
            self.echo(f"[wrap-up refused: {refusal(exc)}]")
        else:
            self.echo(f"[wrap-up saved: {self.shift.disposition}]")
            self.on_state(me)
        self.wrap_due = None

    def _wait_s(self) -> float:
        """How long the next event poll may wait: until the next thing due, at most POLL_S."""
        now = time.monotonic()
        due = [t for t in (self.accept_at, self.wrap_due, self.beat_due, self.step and self.step.deadline) if t]
        wait = min([POLL_S, *(max(0.0, t - now) for t in due)])
        busy = (self.step is not None and self.step.test is not None) or (self.ringing and self.typed is not None)
        return min(wait, BUSY_POLL_S) if busy else wait

    def go_offline(self) -> bool:
        """Offline first (a saved wrap-up would make the agent available to the next caller), then any wrap-up due."""
        try:
            self.on_state(self.api.set_status("offline"))
        except HttpError as exc:
            if exc.status == 409:  # the hotline has not yet seen the call end
                return False
            raise
        self.wrap_up(force=True)
        return True

    def run(self, after: int) -> int:
        """Until Ctrl-C: then decline or hang up any call, go offline, save a due wrap-up; the exit code."""
        stopping = False
        while True:
            try:
                if stopping and self.leg is None and self.status != "on_call" and self.go_offline():
                    return 0
                events, after = self.sim.agent_events(self.identity, after, wait=round(self._wait_s(), 3))
                for event in events:
                    self.on_event(event)
                self.on_state(self.api.me())
                self._beat()
                if not stopping:
                    self._answer()
                    self._advance()
                    self.wrap_up()
            except KeyboardInterrupt:
                if stopping:
                    return 130
                stopping = True
                self.echo("[going offline]")
                self.plan = self.step = None
                for lever, busy in (("decline", self.ringing), ("hangup", self.leg)):
                    if busy is not None:
                        self.sim.device(self.identity, lever)  # the caller keeps their place / the call's end frees us

