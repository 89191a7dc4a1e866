"""How the terminals read: the caller's transcript (`hotline call`) from its call's simulator events, and the routed
caller's context as `hotline agent` prints it.

A connected call is a conference (hl-<caller's CallSid>): the caller hears each agent from the moment the simulator
reports them met ("met" events: the first time a call hears another party in a stay), is held and resumed
(conference.hold / unhold of the caller's own participant), and a new agent after another one is a transfer.
"""
from __future__ import annotations

from typing import Any

ENDED_BY_OTHERS = ("moderator_ended_conference", "conference_ended_via_api")  # the caller did not leave by themselves


def who(endpoint: str) -> str:
    """An agent as the transcript names them: the Client identity, or the number."""
    return endpoint.removeprefix("client:")


class CallTranscript:
    """Turns one caller's events into transcript lines; remembers the agent they are talking with."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.agent: str | None = None  # the agent the caller talks with now (their Client identity or number)
        self.agents: list[str] = []  # every agent reached, in order

    def line(self, event: dict[str, Any]) -> str | None:
        """One transcript line for a call event (None: nothing the caller would notice)."""
        kind, party = event["kind"], event.get("party")
        if kind == "heard" and party != "whisper":  # the whisper is played to the agent, not the caller
            if event["verb"] == "say":
                return f"hotline: {event['text']}"
            if event["verb"] == "play":
                return f"[tones {event['text'][9:-1]}]" if event["text"].startswith("[digits") else "[hold music]"
        elif kind == "call.answered":
            return "[the hotline answers]"
        elif kind == "gather" and self.interactive and party == "main":
            return "[your turn: keys 0-9 * # or words, then Enter]"
        elif kind == "input":
            return _input(event)
        elif kind.startswith(("queue.", "met", "conference.")):
            return self._line_in_call(kind, event)
        elif kind.startswith("dial."):  # a <Dial> of the caller's own (not how agents are reached any more)
            return _dial(kind, event)
        elif kind == "call.ended":
            return f"[call ended: {event['status']}]" + (
                f" simulator error: {event['error']}" if event.get("error") else ""
            )
        return None

    def _line_in_call(self, kind: str, event: dict[str, Any]) -> str | None:
        if kind == "queue.joined":
            if self.agent is not None:  # the agent sent the caller back to the line (a transfer to the queue)
                self.agent = None
                return "[transferred back to the queue]"
            return "[holding in the queue]"
        if kind == "queue.left":
            return f"[out of the queue: {event['result']}]"
        if kind == "met" and event.get("met_label") != "caller":
            agent, before = who(event["met"]), self.agent
            if agent == before:
                return None
            self.agent = agent
            self.agents.append(agent)
            verb = "connected to" if before is None else f"transferred by {before} to"
            return f"[{verb} {agent} ({event['met']})]"
        if kind == "conference.hold":
            return "[on hold]"
        if kind == "conference.unhold":
            return "[off hold]"
        if kind == "conference.leave" and event.get("reason") in ENDED_BY_OTHERS:
            return f"[{self.agent or 'the agent'} has left the call]"
        return None

    def summary(self) -> str | None:
        """The agents reached, once the call is over (None when it reached none)."""
        return f"[agents reached: {', '.join(self.agents)}]" if self.agents else None


def _input(event: dict[str, Any]) -> str | None:
    if "digits" in event:
        return f"you: {event['digits']}"
    if "speech" in event:
        return f'you (speaking): "{event["speech"]}"'
    return "you: (silence)" if event.get("party") == "main" else None  # on hold, silence is just listening


def _dial(kind: str, event: dict[str, Any]) -> str | None:
    if kind == "dial.ringing":
        return f"[ringing {who(event['endpoint'])}]"
    if kind == "dial.connected":
        return f"[connected to {who(event['endpoint'])} ({event['endpoint']})]"
    if kind == "dial.ended":
        return f"[{who(event['endpoint'])}: {event['status']} after {event['duration']} s]"
    return None


def describe_caller(call: dict[str, Any]) -> str:
    """The routed caller's context on one line: who, number (masked), tier, category, verified, wait, and who
    transferred the call to this agent."""
    member = call.get("member")
    name = f"{member['name']} (uid {member['uid']})" if member else "not a known member"
    tier = f"{call['tier']} {(call.get('tier_label') or {}).get('zh', '')}".strip()
    category = f"{call.get('category') or '-'} {(call.get('category_label') or {}).get('zh', '')}".strip()
    waited = f", waited {call['waited_s']:g} s" if call.get("waited_s") is not None else ""
    callback = f", callback #{call['callback']}" if call.get("callback") else ""
    by = f", transferred by {call['transferred_by']}" if call.get("transferred_by") else ""
    return (f"call from {call.get('number') or 'an unknown number'}: {name}, tier {tier}, category {category}, "
            f"{'verified' if call.get('verified') else 'not verified'}{waited}{callback}{by}")
