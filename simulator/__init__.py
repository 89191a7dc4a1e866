"""An offline stand-in for Twilio: places signed calls, follows TwiML, answers REST requests.

    with Simulator.for_app(app, "https://hotline.test", auth_token) as sim:   # REST API on sim.api_url
        sim.add_agent("alice", answer_after=3, talk_seconds=120)
        result = sim.place_call("+8613800000001", ["1", "123456#", None])    # or Script(...)
        assert result.status == "completed" and "..." in result.said()

Conferences (<Dial><Conference>, the Conference and Participant resources): simulator/conference.py and
conferences.py; whom a call talked with: result.conferences, result.talked_with(). Agents' devices rung by
Calls.create, with a person's hands on them (behaviour "manual"): sim.device("ann"), simulator/devices.py.
"""
from simulator.confmodel import Conference, Participant
from simulator.core import CallHandle, Simulator
from simulator.devices import Device
from simulator.endpoints import Endpoint
from simulator.errors import NotSimulated, RequestCapExceeded, SimulationError, TwimlRejected
from simulator.events import Event, EventLog
from simulator.faults import Fault, Faults
from simulator.results import CallResult, ConferenceVisit, DialOutcome, Heard, WebhookRequest
from simulator.script import HANGUP, Script, Speech
from simulator.server import BackgroundServer
from simulator.transport import FlaskTransport, HttpTransport, Reply, Transport

__all__ = [
    "HANGUP",
    "BackgroundServer",
    "CallHandle",
    "CallResult",
    "Conference",
    "ConferenceVisit",
    "Device",
    "DialOutcome",
    "Endpoint",
    "Event",
    "EventLog",
    "Fault",
    "Faults",
    "FlaskTransport",
    "Heard",
    "HttpTransport",
    "NotSimulated",
    "Participant",
    "Reply",
    "RequestCapExceeded",
    "Script",
    "SimulationError",
    "Simulator",
    "Speech",
    "Transport",
    "TwimlRejected",
    "WebhookRequest",
]
