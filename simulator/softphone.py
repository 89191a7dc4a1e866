"""The simulator's control API (not a Twilio API): calls placed from a terminal, and agents set up from one.

Served by the REST app under /_sim, with the REST API's credentials (Basic: account sid, auth token):

    GET  /_sim                                    the simulator: account, number, hotline URL, time scale
    POST /_sim/calls                              {"from", "to"?, "hotline_url"?, "answers"?} → 201 {"sid", …}
    GET  /_sim/calls/<sid>/events?after=N&wait=S  the call's events after seq N (a long poll, S ≤ 25 s); "last": next N
    POST /_sim/calls/<sid>/input                  {"digits": "1357#"}, {"speech": "…"} or {"silence": true}: a <Gather>
    POST /_sim/calls/<sid>/hangup                 the caller hangs up (as CallHandle.hangup: status callback follows)
    PUT  /_sim/agents/<identity>                  {"answer_after", "talk_seconds", "behaviour"?, "replace"?}: a Client,
                                                  (re)placed; behaviour "manual": its calls ring until accepted or
                                                  declined; "replace": false keeps one already registered (the
                                                  hotline's console sets up its agents' devices so)
    POST /_sim/agents/<identity>/accept|decline   the person answers or rejects the call ringing (404: none rings)
    POST /_sim/agents/<identity>/hangup           the person hangs up the answered call (404: none)
    GET  /_sim/agents/<identity>/events?after=N&wait=S   that Client's dial.*, device.* and conference.* events
                                                  (those of its calls); "last" as above

A remote caller's answers queue up in the order sent (typed ahead, or a whole script in "answers");
each <Gather> takes the next one, waiting for it up to the Gather's own timeout as Twilio would. When
none comes the caller is silent there, which on hold means listening: the Script's "silence". A call
whose client stops polling for a minute is hung up, as a dropped line would be.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from simulator.call import SimulatedCall
from simulator.endpoints import client_key
from simulator.events import Event
from simulator.script import KEYS, Script, ScriptCursor, Speech

if TYPE_CHECKING:
    from simulator.core import CallHandle, Simulator

CONTROL_PREFIX = "/_sim"
LONGEST_POLL_S = 25.0
DROPPED_AFTER_S = 60.0  # real seconds without a poll after which a remote caller counts as gone (> LONGEST_POLL_S)
WATCH_EVERY_S = 5.0
IDENTITY = re.compile(r"[A-Za-z0-9_.@-]{1,121}")  # what Twilio accepts in a Client identity (and no path tricks)
LONGEST_SPEECH = 500


class RemoteCaller(ScriptCursor):
    """A caller whose answers arrive over the control API while the call runs."""

    def __init__(self, call: SimulatedCall) -> None:
        super().__init__(Script())  # no patience limits: the person at the terminal hangs up themselves
        self._call = call
        self.last_seen = time.monotonic()  # the client's last poll: a terminal killed outright stops polling
        self._lock = threading.Lock()
        self._inbox: deque[str | Speech | None] = deque()  # None: stay silent at that <Gather>

    def send(self, answer: str | Speech | None) -> int:
        """Queue an answer for the next <Gather>; returns how many are waiting."""
        with self._lock:
            self._inbox.append(answer)
            waiting = len(self._inbox)
        self._call.control.poke()
        return waiting

    def next_answer(self, listen_s: float = 0.0) -> str | Speech | None:
        """The next answer sent, waiting up to the <Gather>'s timeout for it (None: silence)."""
        return self._take("main", listen_s)

    def next_hold_answer(self, listen_s: float = 0.0) -> str | Speech | None:
        """The same on hold: one line of answers, as one person at one keypad gives them."""
        return self._take("wait", listen_s)

    def _waiting(self) -> bool:
        with self._lock:
            return bool(self._inbox)

    def _take(self, party: str, listen_s: float) -> str | Speech | None:
        events, sid = self._call.net.events, self._call.sid
        events.emit("gather", sid, party=party, timeout=listen_s)
        self._call.control.wait(listen_s, until=self._waiting)  # a hang-up still cuts it short
        with self._lock:
            answer = self._inbox.popleft() if self._inbox else None
        if answer is None:
            events.emit("input", sid, party=party, silence=True)
        elif isinstance(answer, Speech):
            events.emit("input", sid, party=party, speech=answer.text)
        else:
            events.emit("input", sid, party=party, digits=answer)
        return answer


def parse_answer(body: Any) -> str | Speech | None:
    """{"digits": "123#"}, {"speech": "text"} or {"silence": true} (None) as an answer; ValueError: what is amiss."""
    if not isinstance(body, dict) or len(set(body) & {"digits", "speech", "silence"}) != 1:
        raise ValueError('an answer is {"digits": "…"}, {"speech": "…"} or {"silence": true}')
    if "silence" in body:
        if body["silence"] is not True:
            raise ValueError("silence: true")
        return None
    if "digits" in body:
        digits = body["digits"]
        if not isinstance(digits, str) or not digits or not set(digits) <= set(KEYS):
            raise ValueError(f"digits: one or more of {KEYS}, not {digits!r}")
        return digits
    speech = body["speech"]
    if not isinstance(speech, str) or not speech.strip() or len(speech) > LONGEST_SPEECH:
        raise ValueError(f"speech: 1 to {LONGEST_SPEECH} characters of text")
    return Speech(speech.strip())


def start_remote_call(sim: Simulator, from_: str, to: str | None = None, hotline_url: str | None = None,
                      answers: Sequence[str | Speech | None] = ()) -> CallHandle:
    """An inbound call to the hotline (its own base URL, or `hotline_url`) answered by a RemoteCaller."""
    voice, status = sim.voice_url, sim.status_url
    if hotline_url:
        base = hotline_url.rstrip("/")
        voice, status = (url.replace(sim.hotline_url, base, 1) for url in (sim.voice_url, sim.status_url))
    call = SimulatedCall(sim.net, from_, to or sim.number, voice, Script(), status_callback=status)
    caller = RemoteCaller(call)
    for answer in answers:
        caller.send(answer)
    call.cursor = caller
    handle = sim.run_call(call)
    threading.Thread(target=_drop_when_gone, args=(handle, caller), name=f"watch:{call.sid}", daemon=True).start()
    return handle


def _drop_when_gone(handle: CallHandle, caller: RemoteCaller) -> None:
    """Hang the call up once its client stops polling (killed, or its network gone), as a dropped line would."""
    while not handle.wait(WATCH_EVERY_S):
        if time.monotonic() - caller.last_seen > DROPPED_AFTER_S:
            handle.hangup()
            return


def event_json(event: Event) -> dict[str, Any]:
    """An event as the control API sends it."""
    return {"seq": event.seq, "kind": event.kind, "call_sid": event.call_sid, **event.data}


def _fail(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"status": status, "message": message}), status


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _poll_args() -> tuple[int, float]:
    """`after` (a seq) and `wait` (seconds, at most LONGEST_POLL_S); ValueError when malformed."""
    after, wait = int(request.args.get("after", "0")), float(request.args.get("wait", "20"))
    if after < 0 or not 0 <= wait <= LONGEST_POLL_S:
        raise ValueError(f"after >= 0 and 0 <= wait <= {LONGEST_POLL_S:g}")
    return after, wait


def control_api(sim: Simulator) -> Blueprint:
    """The /_sim routes; authentication is the REST app's own (its before_request covers every route)."""
    bp = Blueprint("softphone", __name__, url_prefix=CONTROL_PREFIX)

    def remote(sid: str) -> CallHandle | None:
        try:
            handle = sim.handle(sid)
        except KeyError:
            return None
        return handle if isinstance(handle.call.cursor, RemoteCaller) else None

    @bp.get("")
    def about() -> Any:
        """What the terminal shows before dialling."""
        return {"account_sid": sim.account_sid, "number": sim.number, "hotline_url": sim.hotline_url,
                "scale": sim.net.options.scale}

    @bp.post("/calls")
    def place() -> Any:
        """Start an inbound call whose answers come from the client."""
        body = _body()
        from_, to, url = body.get("from"), body.get("to"), body.get("hotline_url")
        if not isinstance(from_, str) or not 1 <= len(from_) <= 64:
            return _fail(400, "from: the caller's number is required")
        if to is not None and (not isinstance(to, str) or not 1 <= len(to) <= 64):
            return _fail(400, "to: a number")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            return _fail(400, "hotline_url: an http(s) base URL")
        try:
            answers = [parse_answer(a) for a in body.get("answers") or []]
        except ValueError as exc:
            return _fail(400, f"answers: {exc}")
        handle = start_remote_call(sim, from_, to, url, answers)
        call = handle.call
        return {"sid": call.sid, "from": call.from_, "to": call.to, "url": call.url}, 201

    @bp.get("/calls/<sid>/events")
    def call_events(sid: str) -> Any:
        """The call's events after `after`, waiting up to `wait` seconds for the first (none once it has ended)."""
        handle = remote(sid)
        if handle is None:
            return _fail(404, f"no remote call {sid}")
        try:
            after, wait = _poll_args()
        except ValueError as exc:
            return _fail(400, str(exc))
        caller = handle.call.cursor
        caller.last_seen = time.monotonic()
        events, last = sim.events.since(after, 0.0 if handle.done() else wait, call_sid=sid)
        caller.last_seen = time.monotonic()
        return {"events": [event_json(e) for e in events], "last": last, "status": handle.call.status}

    @bp.post("/calls/<sid>/input")
    def give_input(sid: str) -> Any:
        """Queue keys or speech for the call's next <Gather>."""
        handle = remote(sid)
        if handle is None:
            return _fail(404, f"no remote call {sid}")
        if handle.done():
            return _fail(409, f"call {sid} has ended")
        try:
            answer = parse_answer(_body())
        except ValueError as exc:
            return _fail(400, str(exc))
        return {"waiting": handle.call.cursor.send(answer)}, 202

    @bp.post("/calls/<sid>/hangup")
    def hang_up(sid: str) -> Any:
        """The caller hangs up (nothing happens to a call that has already ended)."""
        handle = remote(sid)
        if handle is None:
            return _fail(404, f"no remote call {sid}")
        if not handle.done():
            handle.hangup()
        return {"sid": sid, "status": handle.call.status}

    @bp.put("/agents/<identity>")
    def agent(identity: str) -> Any:
        """Register (or replace) the Client identity an agent's calls ring."""
        if not IDENTITY.fullmatch(identity):
            return _fail(400, "identity: 1-121 letters, digits, _ . @ -")
        body = _body()
        answer_after, talk = body.get("answer_after", 2.0), body.get("talk_seconds", 60.0)
        behaviour = body.get("behaviour", "answer")
        if not isinstance(answer_after, (int, float)) or answer_after < 0:
            return _fail(400, "answer_after: seconds >= 0")
        if talk is not None and (not isinstance(talk, (int, float)) or talk <= 0):
            return _fail(400, "talk_seconds: seconds > 0, or null for until someone hangs up")
        existing = None if body.get("replace", True) else sim.net.endpoints.find(client_key(identity))
        try:
            endpoint = existing or sim.add_agent(identity, behaviour, float(answer_after),
                                                 None if talk is None else float(talk))
        except ValueError as exc:
            return _fail(400, f"behaviour: {exc}")
        seq = sim.events.last_seq()  # where the agent's own event stream starts
        return {"endpoint": endpoint.key, "behaviour": endpoint.behaviour, "answer_after": endpoint.answer_after,
                "talk_seconds": endpoint.talk_seconds, "seq": seq}

    @bp.post("/agents/<identity>/<lever>")
    def agent_lever(identity: str, lever: str) -> Any:
        """The person at the Client accepts or declines the ringing call, or hangs up the answered one."""
        if lever not in ("accept", "decline", "hangup") or not IDENTITY.fullmatch(identity):
            return _fail(404, f"no lever {lever!r} for {identity!r}")
        device = sim.device(identity)
        sid = {"accept": device.accept, "decline": device.decline, "hangup": device.hangup}[lever]()
        if sid is None:
            return _fail(404, f"{identity}: no call {'answered' if lever == 'hangup' else 'ringing'} to {lever}")
        return {"identity": identity, "call_sid": sid, "lever": lever}

    @bp.get("/agents/<identity>/events")
    def agent_events(identity: str) -> Any:
        """dial.*, device.* and conference.* events of this Client's calls after `after` (a long poll)."""
        try:
            after, wait = _poll_args()
        except ValueError as exc:
            return _fail(400, str(exc))
        events, last = sim.events.since(after, wait, endpoint=client_key(identity))
        return {"events": [event_json(e) for e in events], "last": last}

    return bp
