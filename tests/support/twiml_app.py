"""A tiny hotline stand-in for the simulator's own tests: fixed TwiML per path, every request's signature checked."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from simulator import Simulator
from tests.support.common import AUTH_TOKEN, PUBLIC_URL

CALLER = "+8613800000001"

Route = str | Callable[[dict[str, str]], str]


def doc(*verbs: str) -> str:
    """A TwiML document holding `verbs`."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


@dataclass(frozen=True)
class Hit:
    """One request the stand-in hotline received."""

    path: str
    query: dict[str, str]
    params: dict[str, str]
    signed: bool


class TwimlApp:
    """A tiny hotline stand-in: fixed TwiML per path (or path?query), every request recorded with its signature
    checked."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes: dict[str, Route] = {"/voice/status": doc(), **routes}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self.app = Flask("twiml-stand-in")
        self.app.add_url_rule("/<path:path>", "any", self._answer, methods=["POST"])

    def _answer(self, path: str) -> Response:
        params = request.form.to_dict()
        query = request.query_string.decode()
        url = PUBLIC_URL + request.path + ("?" + query if query else "")  # what the hotline checks: its public URL
        signed = RequestValidator(AUTH_TOKEN).validate(url, params, request.headers.get("X-Twilio-Signature", ""))
        with self._lock:
            self.hits.append(Hit(request.path, request.args.to_dict(), params, signed))
        if not signed:
            return Response("bad signature", 403)
        route = self.routes.get(request.path + ("?" + query if query else "")) or self.routes.get(request.path)
        if route is None:
            return Response("no such route", 404)
        return Response(route(params) if callable(route) else route, mimetype="application/xml")

    def to(self, path: str) -> list[Hit]:
        """The requests for one path, in order."""
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def sim(self, **kw: Any) -> Simulator:
        """A simulator posting into this app in-process."""
        kw.setdefault("scale", 0.0)
        return Simulator.for_app(self.app, PUBLIC_URL, AUTH_TOKEN, **kw)


def dequeue(gw: Any, queue_sid: str, call_sid: str, url: str) -> None:
    """Twilio's Queue Member resource, as an application would use it (the hotline moves callers with Calls update):
    take `call_sid` (or "Front") out of the queue and run the TwiML at `url` for it."""
    gw.client.queues(queue_sid).members(call_sid).update(url=url, method="POST")


# -- conferences (tests/unit/test_simulator_conference*.py) --

HOTLINE = "+864001234567"
CONFERENCE_EVENTS = "start end join leave mute hold modify announcement"


def conference(name: str, *, dial: str = "", **attrs: str) -> str:
    """A <Dial><Conference> verb: `attrs` are the noun's attributes as TwiML spells them, `dial` the <Dial>'s (raw)."""
    noun = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<Dial{dial}><Conference{noun}>{name}</Conference></Dial>"


def rest_client(sim: Simulator) -> Any:
    """twilio-python's Client on the simulator's REST API, as the hotline's gateway holds it (calls from HOTLINE)."""
    from webhooks.outbound.gateway import TwilioGateway  # the product's gateway, only for tests that talk REST

    return TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url, from_number=HOTLINE).client
