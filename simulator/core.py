"""The Simulator: an offline Twilio that places calls into the hotline and answers its REST requests."""
from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

from simulator.call import SimulatedCall
from simulator.confmodel import Conference
from simulator.control import HungUp
from simulator.devices import Device
from simulator.endpoints import Behaviour, Endpoint, client_key
from simulator.events import EventLog
from simulator.faults import Faults
from simulator.network import Network, Options, new_sid
from simulator.queues import DEFAULT_MAX_SIZE, Queue
from simulator.resources import Message, RestRequest
from simulator.rest import create_rest_app
from simulator.results import CallResult
from simulator.script import Answer, Script
from simulator.server import BackgroundServer
from simulator.transport import FlaskTransport, HttpTransport, Transport

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32


class CallHandle:
    """A call running on its own thread."""

    def __init__(self, call: SimulatedCall) -> None:
        self.call = call
        self.sid = call.sid
        self._thread = threading.Thread(target=call.run, name=f"call:{call.sid}", daemon=True)

    def start(self) -> CallHandle:
        """Start the call's thread."""
        self._thread.start()
        return self

    @property
    def result(self) -> CallResult:
        """The result so far (complete once joined)."""
        return self.call.result

    def done(self) -> bool:
        """True once the call has ended."""
        return not self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` real seconds for the end of the call, without raising; True if it ended."""
        self._thread.join(timeout)
        return self.done()

    def join(self, timeout: float = 10.0) -> CallResult:
        """Wait for the end of the call; re-raise its failure; AssertionError if still running after `timeout` s."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"call {self.sid} still running after {timeout:g} s (status {self.call.status}); "
                                 f"heard so far: {self.result.said()}")
        if self.result.error is not None:
            raise self.result.error
        return self.result

    def hangup(self) -> None:
        """The person on this call hangs up now (answered: completed; still ringing: canceled)."""
        self.call.control.interrupt(
            HungUp("completed" if self.call.status == "in-progress" else "canceled", by="caller")
        )


class Simulator:
    """Places signed calls into the hotline, follows its TwiML, and serves Twilio's REST API.

    `hotline_url` is the hotline's public base URL (what it signs against); relative TwiML
    URLs resolve against each document's URL. Call `start()` before the hotline uses REST.
    """

    def __init__(
        self,
        transport: Transport,
        hotline_url: str,
        auth_token: str,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        number: str = "+864001234567",
        voice_path: str = "/voice/incoming",
        status_path: str = "/voice/status",
        scale: float = 0.001,
        max_requests: int = 500,
        max_call_seconds: float = 4 * 3600.0,
        play_seconds: float = 30.0,
    ) -> None:
        self.hotline_url, self.auth_token, self.number = hotline_url.rstrip("/"), auth_token, number
        self.voice_url = urllib.parse.urljoin(self.hotline_url + "/", voice_path.lstrip("/"))
        self.status_url = urllib.parse.urljoin(self.hotline_url + "/", status_path.lstrip("/"))
        options = Options(scale, max_requests, max_call_seconds, play_seconds)
        self.net = Network(transport, account_sid, options)
        self.messages: list[Message] = []
        # Errors the REST API answered with a 400 instead of raising, and conference callbacks that failed.
        self.failures: list[BaseException] = self.net.failures
        self.faults = Faults()  # REST failures played on purpose (simulator/faults.py)
        self._rest_requests: list[RestRequest] = []
        self._handles: list[CallHandle] = []
        self._lock = threading.Lock()
        self._server = BackgroundServer(create_rest_app(self))

    @classmethod
    def for_app(cls, app: Any, hotline_url: str, auth_token: str, **kw: Any) -> Simulator:
        """A simulator posting into a Flask app in-process."""
        return cls(FlaskTransport(app, auth_token), hotline_url, auth_token, **kw)

    @classmethod
    def over_http(cls, hotline_url: str, auth_token: str, connect_to: str | None = None, **kw: Any) -> Simulator:
        """A simulator posting over HTTP (to `connect_to` if the public URL does not reach the server)."""
        return cls(HttpTransport(auth_token, connect_to), hotline_url, auth_token, **kw)

    # -- the REST server --

    def start(self) -> str:
        """Start the REST API; returns its base URL (put it in TWILIO_API_URL)."""
        return self._server.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the REST API and cut every live call without further webhook requests."""
        self.net.closed.set()
        for handle in self._live():
            handle.call.control.interrupt(HungUp("completed", by="shutdown"))
        for handle in self._live():
            handle.wait(timeout)
        self._server.stop()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """The REST API's base URL (only once started)."""
        return self._server.url

    @property
    def account_sid(self) -> str:
        """The simulated account."""
        return self.net.account_sid

    @property
    def events(self) -> EventLog:
        """Everything that happened, to wait on."""
        return self.net.events

    # -- the world --

    def add_agent(self, identity: str, behaviour: Behaviour = "answer", answer_after: float = 2.0,
                  talk_seconds: float | None = 60.0) -> Endpoint:
        """A Twilio Client identity reachable by <Dial><Client> and by Calls.create to client:<identity>."""
        return self.net.endpoints.add(Endpoint(client_key(identity), behaviour, answer_after, talk_seconds))

    def add_phone(self, number: str, behaviour: Behaviour = "answer", answer_after: float = 3.0,
                  script: Script | Sequence[Answer] | None = None, talk_seconds: float | None = 60.0) -> Endpoint:
        """A phone reachable by <Dial><Number> and by Calls.create (whose TwiML it then follows with `script`)."""
        return self.net.endpoints.add(Endpoint(number, behaviour, answer_after, talk_seconds, _script(script)))

    def device(self, identity: str) -> Device:
        """The person at an agent's Client (or a phone's number): what rings, accept/decline/hangup (devices.py)."""
        return Device(self.net.devices, identity)

    def conference(self, name_or_sid: str) -> Conference | None:
        """A conference by sid, or the latest by FriendlyName: its status, participants and callbacks sent."""
        return self.net.conferences.lookup(name_or_sid)

    def create_queue(self, name: str, max_size: int = DEFAULT_MAX_SIZE) -> Queue:
        """A queue made ahead of <Enqueue> (as the Queue resource would)."""
        return self.net.queues.create(name, max_size)

    # -- calls --

    def start_call(
        self, from_: str, script: Script | Sequence[Answer] | None = None, *, to: str | None = None
    ) -> CallHandle:
        """An inbound call to the hotline's number, running on its own thread."""
        call = SimulatedCall(
            self.net, from_, to or self.number, self.voice_url, _script(script), status_callback=self.status_url
        )
        return self._track(CallHandle(call)).start()

    def place_call(
        self, from_: str, script: Script | Sequence[Answer] | None = None, *, to: str | None = None
    ) -> CallResult:
        """An inbound call run to its end on this thread; raises the call's failure."""
        call = SimulatedCall(
            self.net, from_, to or self.number, self.voice_url, _script(script), status_callback=self.status_url
        )
        result = call.run()
        if result.error is not None:
            raise result.error
        return result

    def start_outbound(
        self,
        to: str,
        from_: str,
        url: str,
        *,
        twiml: str | None = None,
        status_callback: str | None = None,
        callback_events: Sequence[str] = ("completed",),
        ring_timeout: float = 60.0,
    ) -> SimulatedCall:
        """A Calls.create call to a registered phone, ringing on its own thread."""
        callee = self.net.endpoints.get(to)
        call = SimulatedCall(
            self.net,
            from_,
            to,
            url,
            Script(),
            direction="outbound-api",
            status_callback=status_callback,
            callback_events=callback_events,
            callee=callee,
            ring_timeout=ring_timeout,
            twiml=twiml,
        )
        self._track(CallHandle(call)).start()
        return call

    def run_call(self, call: SimulatedCall) -> CallHandle:
        """Start a call built elsewhere (the softphone's remote-controlled ones) on its own thread, tracked too."""
        return self._track(CallHandle(call)).start()

    def handle(self, sid: str) -> CallHandle:
        """The handle of a call started here (by start_call or Calls.create)."""
        with self._lock:
            for handle in self._handles:
                if handle.sid == sid:
                    return handle
        raise KeyError(f"no call {sid} was started by this simulator")

    def join_all(self, timeout: float = 10.0) -> list[CallResult]:
        """Wait for every call started so far; re-raise the first failure (REST-side ones included)."""
        with self._lock:
            handles = list(self._handles)
        results = [h.join(timeout) for h in handles]
        if self.failures:
            raise self.failures[0]
        return results

    # -- REST records --

    def record_rest(self, req: RestRequest) -> None:
        """Keep a REST request for assertions."""
        with self._lock:
            self._rest_requests.append(req)
        self.net.events.emit("rest", method=req.method, path=req.path)

    def rest_requests(self, method: str | None = None, path_contains: str = "") -> list[RestRequest]:
        """The REST requests so far, optionally filtered."""
        with self._lock:
            return [
                r for r in self._rest_requests if (method is None or r.method == method) and path_contains in r.path
            ]

    def send_message(self, to: str, from_: str, body: str) -> Message:
        """Record a text message (Messages.json)."""
        msg = Message(new_sid("SM"), to, from_, body)
        with self._lock:
            self.messages.append(msg)
        self.net.events.emit("sms.sent", to=to, body=body, sid=msg.sid)
        return msg

    def _track(self, handle: CallHandle) -> CallHandle:
        with self._lock:
            self._handles.append(handle)
        return handle

    def _live(self) -> list[CallHandle]:
        with self._lock:
            return [h for h in self._handles if not h.done()]


def _script(script: Script | Sequence[Answer] | None) -> Script:
    """A Script from a Script, a list of answers, or nothing."""
    if script is None:
        return Script()
    return script if isinstance(script, Script) else Script(answers=tuple(script))
