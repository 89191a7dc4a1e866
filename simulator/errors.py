"""The simulator's failures: each one names the call and, where there is one, the document."""
from __future__ import annotations


class SimulationError(AssertionError):
    """A call went somewhere Twilio would refuse or the simulator cannot follow; the test should fail."""


class TwimlRejected(SimulationError):
    """A webhook answered something Twilio would not run: a non-200 status, non-XML, or invalid TwiML."""


class NotSimulated(SimulationError):
    """Valid TwiML that this simulator does not reproduce (said loudly rather than guessed)."""


class RequestCapExceeded(SimulationError):
    """A call made more webhook requests than allowed: almost always a redirect loop."""
