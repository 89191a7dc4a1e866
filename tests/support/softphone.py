"""What the softphone flow tests share: the console's call controls over the JSON API, and waiting for a caller
and an agent to meet in the caller's conference."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from callqueue.live import conference
from core.services import Services
from simulator import CallHandle
from tests.support.flow import Flow, in_process_flow
from tests.support.hotline_api import Api, records

SCALE = 0.05  # a person's click fits in a ringing device's window (20 s at 50 ms a second)


@contextmanager
def softphone_flow(services: Services, folder: Path) -> Iterator[Flow]:
    """A whole-call bench with two rq workers on the shipped defaults (20 s ring timeout, 15 s wrap-up)."""
    with in_process_flow(services, folder, workers=2, scale=SCALE, wrap_up_s=15, ring_timeout_s=20) as f:
        assert (f.config["queue"]["wrap_up_s"], f.config["queue"]["ring_timeout_s"]) == (15, 20)  # as shipped
        yield f


def control(api: Api, login: str, sid: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST /api/calls/<sid>/<action> as `login`; the agent view it answers with."""
    code, answer = api.call("POST", f"/api/calls/{sid}/{action}", login, body or {})
    assert code == 200, (action, code, answer)
    return answer


def talking(flow: Flow, caller: CallHandle, endpoint: str, after: int = 0) -> int:
    """Wait until `endpoint` (e.g. "client:ann") and the caller are in the caller's conference; the event seq."""
    name = conference.conference_name(caller.sid)
    sim = flow.sim
    sim.events.wait("conference.join", timeout=15, after=after, call_sid=caller.sid, conference=name)
    return sim.events.wait("conference.join", timeout=15, after=after, endpoint=endpoint, conference=name).seq


def told(flow: Flow, sid: str, event: str = "participant-join", after: int = 0) -> int:
    """Wait until the hotline has answered the conference's `event` status callback about the call `sid` (a
    participant's CallSid): what it records on it (a consultation under way, a hold) is in its stores; the seq."""
    return flow.sim.events.wait("callback.answered", timeout=15, after=after, call_sid=sid, event=event).seq


def call_state(api: Api, login: str) -> str | None:
    """The state of `login`'s call as their console shows it (None: no call)."""
    call = api.me(login)["call"]
    return call["state"] if call else None


def settled(flow: Flow, services: Any, sid: str) -> Any:
    """The call's record once its status callback has closed it."""
    flow.sim.events.wait("call.ended", timeout=15, call_sid=sid)
    rec = records(services)[sid]
    assert rec.ended is not None, "the call's status callback closes the record"
    return rec
