"""Same request, same answer: the IVR's last transition, kept per call for a request Twilio sends again.

An IVR step changes the call session once (its `?s=` sequence number makes a repeat stale), but the
answer to the first request says what the transition brought ("verified", "text sent", "ticket
number …") and a stale repeat used to hear only the current question again. So each transition
stores its Reply (one Redis value per call, written in the same pipeline as the session) under the
request's identity (path, query, keys and speech), and a stale request with that identity is
answered from it: the same TwiML, rendered again, with no state changed.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flask import request

from core import keys
from ivr.replies import Ask, Reply, Say, ToQueue

TTL_S = 300  # Twilio repeats a request within seconds (its webhook timeout is 15 s); later ones are not repeats


def request_id() -> str:
    """What makes this request the same as another: its path and query, the keys pressed and the words said."""
    query = request.query_string.decode("latin-1")
    return "\n".join((request.path, query, request.form.get("Digits", ""), request.form.get("SpeechResult", "")))


def stash(pipe: Any, call_sid: str, rid: str, reply: Reply, hold: bool, final: bool = True) -> None:
    """Queue on `pipe` the write that keeps `reply` (rendered with `hold`) as the answer to request `rid`.

    `final` False: the reply still lacks what a booking will add; such a stash answers nothing.
    """
    value = json.dumps(
        {"id": rid, "hold": hold, "final": final, "reply": asdict(reply)}, ensure_ascii=False, default=str
    )
    pipe.set(keys.reply(call_sid), value, ex=TTL_S)


def recall(r: Any, call_sid: str, rid: str) -> tuple[Reply, bool] | None:
    """The reply (and its hold flag) given to request `rid` of this call, if it was the last transition."""
    raw = r.get(keys.reply(call_sid))
    if not raw:
        return None
    try:
        data = json.loads(raw)
        if data.get("id") != rid or not data.get("final"):
            return None
        return _reply(data["reply"]), bool(data["hold"])
    except (ValueError, KeyError, TypeError):
        return None  # damaged: answer as a stale request always was


def _say(d: dict[str, Any]) -> Say:
    return Say(d["prompt"], d["lang"], tuple((k, v) for k, v in d["params"]))


def _reply(d: dict[str, Any]) -> Reply:
    a = d.get("ask")
    ask = None if a is None else Ask(
        step=a["step"], prompts=tuple(_say(p) for p in a["prompts"]), lang=a["lang"], digits=a["digits"],
        speech=a["speech"], hints=tuple(a["hints"]), end_on_silence=a["end_on_silence"],
    )
    q = d.get("queue")
    return Reply(
        says=tuple(_say(s) for s in d["says"]), ask=ask, queue=None if q is None else ToQueue(**q),
        hangup=d["hangup"], sms=d["sms"], ticket=d["ticket"], callback=d["callback"], resume_hold=d["resume_hold"],
    )
