"""Twilio's REST API for calls, queues, queue members, conferences (rest_conferences.py) and messages, served by
the simulator."""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from simulator.control import Redirected
from simulator.errors import SimulationError
from simulator.faults import Fault
from simulator.network import API_VERSION
from simulator.resources import (
    PAGE_SIZE,
    RestRequest,
    base,
    call_json,
    error,
    member_json,
    message_json,
    page,
    queue_json,
)
from simulator.rest_conferences import conference_api
from simulator.softphone import CONTROL_PREFIX, control_api

if TYPE_CHECKING:
    from simulator.core import Simulator

ACCOUNT = f"/{API_VERSION}/Accounts/<account>"


def _fail(status: int, code: int, message: str) -> tuple[Response, int]:
    return jsonify(error(status, code, message)), status


def _not_found() -> tuple[Response, int]:
    return _fail(404, 20404, f"The requested resource {request.path} was not found")


def _fault_answer(fault: Fault) -> Response:
    """The error a fault answers with (a Twilio error body; Retry-After when it has one)."""
    status = fault.status or 500
    body = jsonify(error(status, fault.code, fault.message))
    body.status_code = status
    if fault.retry_after is not None:
        body.headers["Retry-After"] = fault.retry_after
    return body


def _params() -> dict[str, str]:
    return {k: v for k, v in request.values.items()}


def create_rest_app(sim: Simulator) -> Flask:
    """The REST app: Basic auth with the account sid and auth token, JSON in Twilio's shapes, every request recorded."""
    app = Flask("simulator.rest")
    net = sim.net

    @app.before_request
    def record_and_authenticate() -> Any:
        """Record every request; refuse bad credentials (401) and other accounts (404)."""
        auth = request.authorization
        ok = bool(auth and auth.username == net.account_sid
                    and hmac.compare_digest((auth.password or "").encode(), sim.auth_token.encode()))
        if not request.path.startswith(CONTROL_PREFIX):  # the record is what the hotline asked Twilio, not our controls
            sim.record_rest(
                RestRequest(request.method, request.path, _params(), request.values.to_dict(flat=False), ok)
            )
        if not ok:
            body, status = _fail(401, 20003, "Authenticate")
            body.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return body, status
        if (request.view_args or {}).get("account", net.account_sid) != net.account_sid:
            return _not_found()
        fault = None if request.path.startswith(CONTROL_PREFIX) else sim.faults.take(request.method, request.path)
        if fault is None:
            return None
        net.events.emit(
            "rest.fault", method=request.method, path=request.path, status=fault.status, applied=fault.applied
        )
        if fault.applied:
            g.fault = fault  # the request takes effect first; its answer fails or is late (after_request)
            return None
        fault.wait()
        return None if fault.status is None else _fault_answer(fault)  # status None: late, then done

    @app.after_request
    def applied_fault(response: Response) -> Response:
        """A fault that let its request take effect: hold the answer back, then fail it (or send it late)."""
        fault = g.pop("fault", None)
        if fault is None:
            return response
        fault.wait()
        return response if fault.status is None else _fault_answer(fault)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """Routing errors as Twilio error bodies."""
        if exc.code == 404:
            return _not_found()
        return _fail(exc.code or 400, 20001, exc.description or exc.name)

    @app.errorhandler(SimulationError)
    def simulation_error(exc: SimulationError) -> Any:
        """Something the simulator cannot do: a 400, kept for join_all."""
        sim.failures.append(exc)  # also raised by Simulator.join_all, so a swallowed gateway error still fails the test
        return _fail(400, 20001, f"simulator: {exc}")

    @app.errorhandler(Exception)
    def simulator_bug(exc: Exception) -> Any:
        """A bug in the simulator: a 500, kept for join_all."""
        sim.failures.append(exc)
        return _fail(500, 20500, f"simulator internal error: {exc!r}")

    @app.get(f"{ACCOUNT}/Calls.json")
    def list_calls(account: str) -> Any:
        """Calls.json GET, filtered by Status, To, From."""
        wanted = {
            k: request.args[p] for k, p in (("status", "Status"), ("to", "To"), ("from_", "From")) if p in request.args
        }
        calls = [
            c for c in reversed(net.calls.all()) if all(getattr(c, k) == v for k, v in wanted.items())
        ]  # newest first, as Twilio
        return page("calls", [call_json(account, c) for c in calls], f"{base(account)}/Calls.json", _page_size())

    @app.post(f"{ACCOUNT}/Calls.json")
    def create_call(account: str) -> Any:
        """Calls.json POST: ring a registered phone on its own thread."""
        p = _params()
        if not p.get("To"):
            return _fail(400, 21201, "No 'To' number is specified")
        if not p.get("From"):
            return _fail(400, 21213, "No 'From' number is specified")
        if not (p.get("Url") or p.get("Twiml")):
            return _fail(400, 21205, "Url parameter is required.")
        if p.get("Method", "POST").upper() != "POST":
            raise SimulationError("Calls.create with Method other than POST is not simulated")
        events = [e for v in request.values.getlist("StatusCallbackEvent") for e in v.split()] or ["completed"]
        call = sim.start_outbound(
            to=p["To"],
            from_=p["From"],
            url=p.get("Url", ""),
            twiml=p.get("Twiml"),
            status_callback=p.get("StatusCallback"),
            callback_events=events,
            ring_timeout=float(p.get("Timeout") or 60),
        )
        return call_json(account, call), 201

    @app.route(f"{ACCOUNT}/Calls/<sid>.json", methods=["GET", "POST"])
    def one_call(account: str, sid: str) -> Any:
        """Calls/{Sid}.json: fetch, redirect (Url) or end (Status)."""
        call = net.calls.get(sid)
        if call is None:
            return _not_found()
        if request.method == "POST":
            p = _params()
            if p.get("Status") in ("completed", "canceled"):
                done = call.hang_up(p["Status"])
            elif p.get("Url"):
                done = call.redirect(p["Url"], p.get("Method", "POST"))
            else:
                return _fail(400, 20001, "Url or Status is required (Twiml updates are not simulated)")
            if not done:
                return _fail(400, 21220, "Call is not in-progress. Cannot redirect.")
        return call_json(account, call)

    @app.get(f"{ACCOUNT}/Queues.json")
    def list_queues(account: str) -> Any:
        """Queues.json GET."""
        return page(
            "queues", [queue_json(account, q) for q in net.queues.all()], f"{base(account)}/Queues.json", _page_size()
        )

    @app.post(f"{ACCOUNT}/Queues.json")
    def create_queue(account: str) -> Any:
        """Queues.json POST: FriendlyName, MaxSize (at most 5000)."""
        p = _params()
        try:
            queue = net.queues.create(p.get("FriendlyName", ""), int(p.get("MaxSize") or 1000))
        except ValueError as exc:
            return _fail(400, 20001, str(exc))
        return queue_json(account, queue), 201

    @app.route(f"{ACCOUNT}/Queues/<qsid>.json", methods=["GET", "POST"])
    def one_queue(account: str, qsid: str) -> Any:
        """Queues/{Sid}.json: fetch or update."""
        queue = net.queues.get(qsid)
        if queue is None:
            return _not_found()
        if request.method == "POST":
            p = _params()
            size = int(p.get("MaxSize") or queue.max_size)
            if not 1 <= size <= 5000:
                return _fail(400, 20001, f"MaxSize must be between 1 and 5000, not {size}")
            queue.max_size = size
            queue.friendly_name = p.get("FriendlyName") or queue.friendly_name
        return queue_json(account, queue)

    @app.get(f"{ACCOUNT}/Queues/<qsid>/Members.json")
    def list_members(account: str, qsid: str) -> Any:
        """Queues/{Sid}/Members.json GET, front first."""
        queue = net.queues.get(qsid)
        if queue is None:
            return _not_found()
        with net.queues.lock:
            items = [member_json(account, m, i + 1) for i, m in enumerate(queue.members)]
        return page("queue_members", items, f"{base(account)}/Queues/{qsid}/Members.json", _page_size())

    @app.route(f"{ACCOUNT}/Queues/<qsid>/Members/<csid>.json", methods=["GET", "POST"])
    def one_member(account: str, qsid: str, csid: str) -> Any:
        """Members/{CallSid|Front}.json: fetch, or dequeue to Url."""
        with net.queues.lock:  # find and dequeue atomically, so a <Leave> cannot slip in between
            member = net.queues.find(qsid, csid)
            if member is None:
                return _not_found()
            body = member_json(account, member, net.queues.position(member))
            if request.method == "POST":
                p = _params()
                if not p.get("Url"):
                    return _fail(400, 21205, "Url parameter is required.")
                net.queues.remove(member)
                member.control.interrupt(Redirected(p["Url"], p.get("Method", "POST")))
        return body

    @app.route(f"{ACCOUNT}/Messages.json", methods=["GET", "POST"])
    def messages(account: str) -> Any:
        """Messages.json: list, or send (recorded, never delivered)."""
        if request.method == "GET":
            items = [message_json(account, m) for m in sim.messages]
            return page("messages", items, f"{base(account)}/Messages.json", _page_size())
        p = _params()
        if not p.get("To"):
            return _fail(400, 21604, "A 'To' phone number is required.")
        if not p.get("Body") and not p.get("MediaUrl"):
            return _fail(400, 21602, "Message body is required.")
        return message_json(account, sim.send_message(p["To"], p.get("From", ""), p.get("Body", ""))), 201

    app.register_blueprint(conference_api(sim))  # Conferences and their Participants (simulator/rest_conferences.py)
    app.register_blueprint(control_api(sim))  # /_sim/…: remote calls and agents (not Twilio's), same credentials
    return app


def _page_size() -> int:
    return int(request.args.get("PageSize") or PAGE_SIZE)
