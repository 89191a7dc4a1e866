"""Twilio's Conference and Participant resources, served by the simulator's REST app (simulator/rest.py), whose
authentication, request records and faults cover them too. Under /2010-04-01/Accounts/{AccountSid}:

    GET    /Conferences.json                                   FriendlyName, Status filters; newest first
    GET    /Conferences/{CF}.json
    POST   /Conferences/{CF}.json                              Status=completed ends it; AnnounceUrl: to everyone
    GET    /Conferences/{CF}/Participants.json                 Muted, Hold, Coaching filters
    POST   /Conferences/{CF or FriendlyName}/Participants.json dial To; it joins once it answers
    GET|POST|DELETE /Conferences/{CF}/Participants/{CallSid or label}.json

Facts from https://www.twilio.com/docs/voice/api/conference-resource and
https://www.twilio.com/docs/voice/api/conference-participant-resource: a create names the conference by
ConferenceSid or FriendlyName ("if an active conference does not exist with your FriendlyName, we create a new
conference with that name"; "if a conference specified by ConferenceSid is not active, the request fails");
ConferenceStatusCallbackEvent "defaults to start end" and only the first participant's is used; StatusCallbackEvent
(the call's progress) defaults to completed; Timeout defaults to 60; HoldMethod defaults to GET, AnnounceMethod
and WaitMethod to POST; Coaching "defaults to false unless call_sid_to_coach is defined", and "if true,
call_sid_to_coach must be defined"; a delete answers 204 with no body; labels: 16024 (invalid), 16026 (in use).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from simulator.call import SimulatedCall
from simulator.confmodel import EVENTS, LARGEST, Conference, JoinSpec
from simulator.errors import NotSimulated
from simulator.network import API_VERSION
from simulator.resources import PAGE_SIZE, base, conference_json, error, page, participant_json
from simulator.script import Script

if TYPE_CHECKING:
    from simulator.core import Simulator

CONFERENCE_SID = re.compile(r"CF[0-9a-fA-F]{32}")
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")


def _fail(status: int, code: int, message: str) -> tuple[Response, int]:
    return jsonify(error(status, code, message)), status


def _not_found() -> tuple[Response, int]:
    return _fail(404, 20404, f"The requested resource {request.path} was not found")


def _params() -> dict[str, str]:
    return {k: v for k, v in request.values.items()}


def _true(value: str | None) -> bool:
    """Twilio's booleans: "true" is true; "anything value other than true or false is interpreted as false"."""
    return (value or "").lower() == "true"


def _events(name: str) -> list[str]:
    """A list parameter, sent as repeated fields (twilio-python) or space-separated."""
    return [e for v in request.values.getlist(name) for e in v.split()]


def _post_only(params: dict[str, str], name: str, default: str = "POST") -> None:
    """The simulator requests URLs with POST only; a GET Twilio would make is said loudly."""
    if params.get(name, default).upper() != "POST":
        raise NotSimulated(f"{name}={params.get(name, default)}: the simulator only requests URLs with POST "
                           f"(pass {name}=POST)")


def _twiml(spec: JoinSpec) -> str:
    """The TwiML a Participants create makes its call run: <Dial><Conference> with the request's settings."""
    attrs = {
        "muted": str(spec.muted).lower(), "beep": spec.beep, "startConferenceOnEnter": str(spec.start_on_enter).lower(),
        "endConferenceOnExit": str(spec.end_on_exit).lower(), "maxParticipants": str(spec.max_participants),
    }
    optional = {"participantLabel": spec.label, "waitUrl": spec.wait_url, "coach": spec.coach,
                "statusCallback": spec.status_callback, "statusCallbackEvent": " ".join(sorted(spec.events)) or None}
    attrs.update({k: v for k, v in optional.items() if v is not None})
    response = ET.Element("Response")
    ET.SubElement(ET.SubElement(response, "Dial"), "Conference", attrs).text = spec.name
    return ET.tostring(response, encoding="unicode")


def conference_api(sim: Simulator) -> Blueprint:
    """The Conference routes."""
    bp = Blueprint("conferences", __name__, url_prefix=f"/{API_VERSION}/Accounts/<account>")
    net = sim.net
    registry = net.conferences

    def page_size() -> int:
        return int(request.args.get("PageSize") or PAGE_SIZE)

    @bp.get("/Conferences.json")
    def list_conferences(account: str) -> Any:
        """Conferences.json GET, filtered by FriendlyName and Status."""
        wanted = {k: request.args[p] for k, p in (("friendly_name", "FriendlyName"), ("status", "Status"))
                  if p in request.args}
        confs = [c for c in reversed(registry.all()) if all(getattr(c, k) == v for k, v in wanted.items())]
        return page("conferences", [conference_json(account, c) for c in confs], f"{base(account)}/Conferences.json",
                    page_size())

    @bp.route("/Conferences/<sid>.json", methods=["GET", "POST"])
    def one_conference(account: str, sid: str) -> Any:
        """Conferences/{Sid}.json: fetch; end (Status=completed) or announce to everyone (AnnounceUrl)."""
        conf = registry.get(sid)
        if conf is None:
            return _not_found()
        if request.method == "POST":
            p = _params()
            if p.get("Status") not in (None, "completed"):
                return _fail(400, 20001, f"Status must be completed, not {p['Status']!r}")
            if p.get("AnnounceUrl"):
                _post_only(p, "AnnounceMethod")
                if conf.status == "completed":
                    return _fail(400, 20001, f"conference {sid} is completed")
                registry.announce(conf, p["AnnounceUrl"])
            if p.get("Status") == "completed":
                registry.end(conf)
        return conference_json(account, conf)

    @bp.get("/Conferences/<sid>/Participants.json")
    def list_participants(account: str, sid: str) -> Any:
        """Participants.json GET: the conference's participants now, filtered by Muted, Hold, Coaching."""
        conf = registry.get(sid)
        if conf is None:
            return _not_found()
        wanted = {k: _true(request.args[p]) for k, p in (("muted", "Muted"), ("hold", "Hold"), ("coaching", "Coaching"))
                  if p in request.args}
        with registry.lock:
            parts = [p for p in conf.participants if all(getattr(p, k) == v for k, v in wanted.items())]
            items = [participant_json(account, p) for p in parts]
        return page("participants", items, f"{base(account)}/Conferences/{sid}/Participants.json", page_size())

    @bp.post("/Conferences/<ref>/Participants.json")
    def create_participant(account: str, ref: str) -> Any:
        """Participants.json POST: dial To; once it answers, it joins the conference."""
        p = _params()
        if not p.get("To"):
            return _fail(400, 21201, "No 'To' number is specified")
        if not p.get("From"):
            return _fail(400, 21213, "No 'From' number is specified")
        conf: Conference | None = None
        if CONFERENCE_SID.fullmatch(ref):
            conf = registry.get(ref)
            if conf is None or conf.status == "completed":
                return _not_found()
        name = conf.friendly_name if conf else ref
        label = p.get("Label") or None
        if label and (len(label) > 128 or CALL_SID.fullmatch(label) or "/" in label):
            return _fail(400, 16024, "Invalid participant label, must not exceed 128 characters, must not be a "
                                     "CallSid, must not contain '/'")
        active = conf or registry.active_named(name)
        if label and active is not None and active.find(label) is not None:
            return _fail(400, 16026, "Participant label is in use by another participant")
        coach = p.get("CallSidToCoach") if p.get("Coaching") != "false" else None
        if _true(p.get("Coaching")) and not coach:
            return _fail(400, 20001, "CallSidToCoach is required when Coaching is true")
        events = _events("ConferenceStatusCallbackEvent") or ["start", "end"]
        if set(events) - EVENTS:
            return _fail(400, 20001, f"ConferenceStatusCallbackEvent: unknown {sorted(set(events) - EVENTS)}")
        for method in ("WaitMethod", "StatusCallbackMethod", "ConferenceStatusCallbackMethod"):
            _post_only(p, method)
        if _true(p.get("Record")) or p.get("ConferenceRecord") in ("true", "record-from-start"):
            raise NotSimulated("recording a conference participant is not simulated")
        try:
            size, timeout = int(p.get("MaxParticipants") or LARGEST), float(p.get("Timeout") or 60)
        except ValueError:
            return _fail(400, 20001, "MaxParticipants and Timeout are integers")
        spec = JoinSpec(
            name, label, _true(p.get("Muted")), p.get("Beep", "true"), p.get("StartConferenceOnEnter") != "false",
            _true(p.get("EndConferenceOnExit")), p.get("WaitUrl"), size, coach, p.get("ConferenceStatusCallback"),
            frozenset(events),
        )
        endpoint = net.endpoints.get(p["To"])  # an unknown one fails loudly (a 400, kept for join_all)
        call = SimulatedCall(
            net, p["From"], p["To"], "", Script(), direction="outbound-api", status_callback=p.get("StatusCallback"),
            callback_events=_events("StatusCallbackEvent") or ["completed"], callee=endpoint, ring_timeout=timeout,
            twiml=_twiml(spec),
        )
        part = registry.add_pending(call, spec, conf)
        created = participant_json(account, part, queue_time="0")  # as it is when Twilio answers: queued
        sim.run_call(call)
        return created, 201

    @bp.route("/Conferences/<sid>/Participants/<who>.json", methods=["GET", "POST", "DELETE"])
    def one_participant(account: str, sid: str, who: str) -> Any:
        """Participants/{CallSid or label}.json: fetch, update (mute, hold, coach, announce...), remove."""
        with registry.lock:
            conf = registry.get(sid)
            part = conf.find(who) if conf is not None else None
        if conf is None or part is None:
            return _not_found()
        if request.method == "DELETE":
            if part.joined:
                registry.leave(part, "participant_updated_via_api", kicked=True)
            else:  # still being dialled: the call is stopped, and leaves as participant_add_failed when it ends
                net.calls.get(part.call_sid).hang_up("completed")
            return "", 204
        if request.method == "POST":
            p = _params()
            changes: dict[str, Any] = {}
            for param, attr in (("Muted", "muted"), ("Hold", "hold"), ("EndConferenceOnExit", "end_on_exit"),
                                ("BeepOnExit", "beep_on_exit")):
                if param in p:
                    changes[attr] = _true(p[param])
            if "HoldUrl" in p:
                _post_only(p, "HoldMethod", "GET")  # Twilio requests a HoldUrl with GET unless told otherwise
                changes["hold_url"] = p["HoldUrl"] or None
            if "WaitUrl" in p:
                _post_only(p, "WaitMethod")
                changes["wait_url"] = p["WaitUrl"]
            if "Coaching" in p or "CallSidToCoach" in p:
                coaching = _true(p["Coaching"]) if "Coaching" in p else True
                to_coach = p.get("CallSidToCoach") or part.call_sid_to_coach
                if coaching and not to_coach:
                    return _fail(400, 20001, "CallSidToCoach is required when Coaching is true")
                if coaching and (conf.find(to_coach or "") is None or to_coach == part.call_sid):
                    return _fail(400, 20001, f"CallSidToCoach {to_coach} is not another participant of {sid}")
                changes.update(coaching=coaching, call_sid_to_coach=to_coach if coaching else None)
            if p.get("AnnounceUrl"):
                _post_only(p, "AnnounceMethod")
            registry.update(part, changes)
            if p.get("AnnounceUrl"):
                registry.announce(conf, p["AnnounceUrl"], part)
        with registry.lock:
            return participant_json(account, part)

    return bp
