"""`hotline agent`'s agent at the terminal: goes available, answers through the simulated phone, wraps up."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tools.phone.client import HotlineApi, HttpError, Located, describe_caller

Echo = Callable[[str], None]


class TerminalAgent:
    """One agent at the terminal: available, answers through the simulated phone, wraps up, goes again."""

    def __init__(
        self, api: HotlineApi, located: Located, identity: str, wrap_s: float, disposition: str, echo: Echo
    ) -> None:
        self.api, self.sim, self.account_sid = api, located.sim, located.account_sid
        self.identity, self.wrap_s, self.disposition, self.echo = identity, wrap_s, disposition, echo
        self.status = ""
        self.shown: set[str] = set()  # calls whose context was printed
        self.leg: str | None = None  # the agent's connected <Dial> leg, to hang up on Ctrl-C
        self.wrap_due: float | None = None

    def start(self, ring_s: float, talk_s: float) -> int:
        """Register the phone, go available; returns the event seq to follow from."""
        phone = self.sim.register_agent(self.identity, ring_s, talk_s)
        me = self.api.set_status("available")
        self.status = me["status"]
        self.echo(f"{me['name']} ({me['login']}) is {self.status}; {phone['endpoint']} answers after {ring_s:g} s "
                  f"and talks {talk_s:g} s; wrap-up {self.wrap_s:g} s as {self.disposition!r}. Ctrl-C: offline")
        return int(phone["seq"])

    def on_event(self, event: dict[str, Any]) -> None:
        """React to the simulated phone: ringing (show who calls), connected, call over (wrap-up due)."""
        kind = event["kind"]
        if kind == "dial.ringing":
            self.echo(f"[phone rings: call {event['call_sid']}]")
            self.on_state(self.api.me())
        elif kind == "dial.connected":
            self.leg = event["dial_call_sid"]
            self.echo("[talking]")
        elif kind == "dial.ended":
            self.echo(f"[call over: {event['status']}, {event['duration']} s]")
            if self.leg is not None:  # a call that was answered gets its wrap-up
                self.wrap_due = time.monotonic() + self.wrap_s
            self.leg = None

    def on_state(self, me: dict[str, Any]) -> None:
        """Print state changes and the context of a routed call not shown yet (whatever rang it)."""
        if me["status"] != self.status:
            self.status = me["status"]
            self.echo(f"[status: {self.status}]")
        call = me.get("call")
        if call and call["call_sid"] not in self.shown:
            self.shown.add(call["call_sid"])
            self.echo(describe_caller(call))

    def wrap_up(self) -> None:
        """Save the wrap-up once due; 409 (the hotline has not yet seen the call end) tries again next time."""
        if self.wrap_due is None or time.monotonic() < self.wrap_due:
            return
        try:
            me = self.api.wrap_up(self.disposition)
        except HttpError as exc:
            if exc.status == 409:
                return
            self.echo(f"[wrap-up refused: {exc}]")
        else:
            self.echo(f"[wrap-up saved: {self.disposition}]")
            self.on_state(me)
        self.wrap_due = None

    def go_offline(self) -> bool:
        """Offline first (a saved wrap-up would make the agent available to the next caller), then any wrap-up due."""
        try:
            self.on_state(self.api.set_status("offline"))
        except HttpError as exc:
            if exc.status == 409:  # the hotline has not yet seen the call end
                return False
            raise
        if self.wrap_due is not None:
            self.wrap_due = 0.0
            self.wrap_up()
        return True

    def run(self, after: int) -> int:
        """Until Ctrl-C: then hang up any call, save a due wrap-up, go offline; exit code."""
        stopping = False
        while True:
            try:
                if stopping and self.leg is None and self.status != "on_call" and self.go_offline():
                    return 0
                # The long poll paces the loop: /api/agents/me is polled about once a second, and at once on a ring.
                events, after = self.sim.agent_events(self.identity, after, wait=1.0)
                for event in events:
                    self.on_event(event)
                self.on_state(self.api.me())
                self.wrap_up()
            except KeyboardInterrupt:
                if stopping:
                    return 130
                stopping = True
                self.echo("[going offline]")
            if stopping and self.leg is not None:
                self.sim.end_leg(self.account_sid, self.leg)  # the agent hangs up; the call's end frees them
