"""The whole-call test bench: a hotline app on a copy of the test services (its own clock and configuration), the
simulator posting into it, and rq workers in their own processes dispatching through the simulator's REST API."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask

from core.config import Config
from core.services import Services
from hotline.app import create_app
from hotline.configuration import full_config
from simulator import CallHandle, Script, Simulator
from tests.support.clocks import FakeClock
from tests.support.common import ALWAYS_OPEN, AUTH_TOKEN, PUBLIC_URL
from tests.support.hotline_api import Api
from tests.support.processes import Processes, hotline_env
from webhooks.outbound.gateway import TwilioGateway

FINAL = ("answered", "abandoned", "short_abandoned")


def write_config(folder: Path, extra: str = "", **queue: Any) -> tuple[Path, Config]:
    """A HOTLINE_CONFIG file with a [queue] section: no wrap-up (agents free at once), a long hold
    between announcements (few waitUrl requests at the simulator's fast time), and `queue` overrides."""
    values = {"wrap_up_s": 0, "announce_every_s": 120, "ring_timeout_s": 15, **queue}
    lines = [extra or ALWAYS_OPEN.read_text(encoding="utf-8"), "[queue]"] + [
        f"{k} = {json.dumps(v)}" for k, v in values.items()
    ]
    path = folder / "flow.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, full_config(path)


def offers(sim: Simulator) -> list[tuple[str, str]]:
    """(caller CallSid, agent login) of every agent's leg the hotline placed (REST Calls create), in order: who was
    offered which caller first (a caller offered twice appears twice; transfers included)."""
    out = []
    for req in sim.rest_requests("POST", "/Calls.json"):
        query = parse_qs(urlsplit(req.params.get("Url", "")).query)
        if "caller" in query:
            out.append((query["caller"][0], query["agent"][0]))
    return out


def ringing_order(sim: Simulator) -> list[str]:
    """The CallSids the hotline rang agents for, in order (a caller rung twice appears twice)."""
    return [caller for caller, _agent in offers(sim)]


def leg_ended(sim: Simulator, endpoint: str, after: int = 0, timeout: float = 30) -> int:
    """Wait until an agent's leg that rang `endpoint` after event seq `after` has ended and the hotline has been told
    (its final status callback answered); the seq of that call.ended event."""
    leg = sim.events.wait("device.ended", timeout=timeout, after=after, endpoint=endpoint).call_sid
    return sim.events.wait("call.ended", timeout=timeout, after=after, call_sid=leg).seq


def leg_of(sim: Simulator, endpoint: str, after: int = 0) -> str:
    """The CallSid of the first agent's leg that rang `endpoint` (e.g. "client:ann") after event seq `after`."""
    return sim.events.wait("device.ringing", timeout=15, after=after, endpoint=endpoint).call_sid


def join_queue(sim: Simulator, from_: str, sc: Script, timeout: float = 15) -> CallHandle:
    """Start a call and return once it holds in the Twilio queue (its queue.joined event)."""
    handle = sim.start_call(from_, sc)
    try:
        sim.events.wait("queue.joined", timeout=timeout, call_sid=handle.sid)
    except AssertionError:
        if handle.done():
            handle.join(0)  # re-raises the call's own failure, which explains more
        raise
    return handle


def agent_legs(sim: Simulator) -> list[tuple[str, str, str]]:
    """(caller CallSid, endpoint, leg CallSid) of every agent's leg that rang, in the order they began to ring (the
    caller read from the leg's answer Url, as the hotline placed it); a member's callback phone is not one."""
    out = []
    for e in sim.events.all("device.ringing"):
        query = parse_qs(urlsplit(sim.handle(e.call_sid).call.url).query)
        if "caller" in query:
            out.append((query["caller"][0], e.data["endpoint"], e.call_sid))
    return out


def busy_intervals(sim: Simulator) -> dict[str, list[tuple[int, int, str, str]]]:
    """Per agent endpoint: (start seq, end seq, leg CallSid, kind) of every period an agent's leg rang for a caller
    and every period it was connected to one, from the simulator's events.

    Ringing runs from device.ringing to the first of device.answered, device.ended and the caller's leaving their
    Twilio queue (a leg still ringing for a caller who hung up rings for nobody: the hotline ends it). Connected runs
    from device.answered (the whisper included) to the leg's first conference.leave (or its device.ended), for a leg
    that went on into its caller's conference; one answered only to hear that the caller had gone talked with
    nobody. A leg's own end comes later than its leaving: the simulator answers a call's conference callbacks before
    it ends the call, and the hotline may ring the agent again meanwhile, as Twilio would."""
    events = sim.events.all()
    caller = {leg: c for c, _endpoint, leg in agent_legs(sim)}
    joined = {e.call_sid for e in events if e.kind == "conference.join" and e.call_sid in caller
              and e.data["conference"].endswith(caller[e.call_sid])}
    open_: dict[tuple[str, str], tuple[int, str]] = {}
    ringing_for: dict[str, list[str]] = {}  # caller -> legs ringing for them
    out: dict[str, list[tuple[int, int, str, str]]] = {}

    def close(kind: str, leg: str, seq: int) -> None:
        started = open_.pop((kind, leg), None)
        if started is not None:
            out.setdefault(started[1], []).append((started[0], seq, leg, kind))

    for e in events:
        leg = e.call_sid
        if e.kind == "device.ringing" and leg in caller:
            open_[("ringing", leg)] = (e.seq, e.data["endpoint"])
            ringing_for.setdefault(caller[leg], []).append(leg)
        elif e.kind == "queue.left":
            for rung in ringing_for.pop(leg, []):
                close("ringing", rung, e.seq)
        elif e.kind == "device.answered" and leg in caller:
            close("ringing", leg, e.seq)
            if leg in joined:
                open_[("connected", leg)] = (e.seq, e.data["endpoint"])
        elif e.kind == "conference.leave":
            close("connected", leg, e.seq)
        elif e.kind == "device.ended":
            close("ringing", leg, e.seq)
            close("connected", leg, e.seq)
    for (kind, leg), (seq, endpoint) in open_.items():  # still open at the end: a call that never ended
        out.setdefault(endpoint, []).append((seq, 10**12, leg, kind))
    return out


def overlaps(intervals: dict[str, list[tuple[int, int, str, str]]],
             kind: str | None = None) -> list[tuple[str, tuple, tuple]]:
    """Pairs of periods (of `kind`, or of any kind) on one endpoint that overlap."""
    found = []
    for endpoint, spans in intervals.items():
        spans = sorted(s for s in spans if kind is None or s[3] == kind)
        for a, b in pairwise(spans):
            if b[0] < a[1]:
                found.append((endpoint, a, b))
    return found


@dataclass
class Flow:
    """A hotline app on a copy of the test services (own clock and configuration), the simulator
    posting into it, and rq workers in their own processes dispatching through the simulator's REST API."""

    sim: Simulator
    app: Flask
    svc: Services
    clock: FakeClock
    config: Config
    api: Api
    procs: Processes


@contextmanager
def in_process_flow(services: Services, folder: Path, *, workers: int = 1, scale: float = 0.005, extra: str = "",
                    clock: Any = None, **queue: Any) -> Iterator[Flow]:
    """Everything a queue-flow test needs; on exit the workers are stopped, then the simulator.

    `extra`: TOML in place of the always-open hours (e.g. hours and [callbacks]); `clock`: the app's clock.
    """
    config_path, config = write_config(folder, extra, **queue)
    clock = clock or FakeClock(config["hotline"]["timezone"])
    svc = replace(services, config=config, clock=clock, extras={})
    app = create_app(services=svc)
    procs = Processes(folder)
    sim = Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=scale)
    try:
        api_url = sim.start()
        svc.gateway = TwilioGateway(sim.account_sid, AUTH_TOKEN, api_url, from_number=sim.number)
        # the app reaches the simulator's control API too (the agents' simulated devices), as `hotline run` does
        svc.settings = svc.settings.with_overrides({"twilio_api_url": api_url, "twilio_account_sid": sim.account_sid})
        procs.workers(workers, hotline_env(services, config_path, api_url), services.redis_url)
        yield Flow(sim, app, svc, clock, config, Api(app=app), procs)
    finally:
        procs.stop()
        sim.stop()
