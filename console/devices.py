"""The agent's device as the console sets it up: offline (`make run`), the simulator's device for their identity."""
from __future__ import annotations

import logging

from callqueue.agents.accounts import agent_endpoint
from core.context import db, services
from core.logs import log_event
from webhooks.outbound import simulated_device

log = logging.getLogger("hotline.devices")


def set_up_device(login: str) -> bool:
    """Offline, the agent's client identity gets its simulated device (once per process). Best effort: without a
    simulator (an offline app nobody calls) the agent still works, and a ring that finds no device is a missed
    offer. True when the device is there."""
    svc = services()
    endpoint = agent_endpoint(db(), login) or ""
    if not simulated_device.available(svc) or not endpoint.startswith("client:"):
        return False
    try:
        return simulated_device.register(svc, endpoint.removeprefix("client:"))
    except simulated_device.DeviceError as exc:
        log_event(log, "simulated device not set up", logging.WARNING, login=login, error=str(exc))
        return False
