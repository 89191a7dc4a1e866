"""The /voice paths the hotline hands to Twilio outside its own TwiML answers (in REST requests and conference
attributes), named once for the routes that serve them and the outbound code that gives them out."""
from __future__ import annotations

from urllib.parse import urlencode

AGENT_ANSWER = "/voice/agent/answer"  # an agent's leg answered: whisper, then the call's conference
AGENT_STATUS = "/voice/agent/status"  # that leg's status callback
CONNECT = "/voice/connect"  # the caller, moved out of the queue into the conference
CONFERENCE_STATUS = "/voice/conference/status"  # the conference's status callback
HOLD = "/voice/conference/hold"  # what a caller on hold (or waiting for the agent to join) hears
REQUEUE = "/voice/queue"  # back to the queue, at the caller's original score


def absolute(base: str, path: str, **query: str | int) -> str:
    """`base` + `path` with the query: the absolute URL Twilio requests."""
    return base + path + ("?" + urlencode(query) if query else "")
