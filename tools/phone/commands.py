"""`hotline call` and `hotline agent`: a telephone and an agent in the terminal, through `hotline run`'s simulator.

Both find it in `<data dir>/simulator.json` (HOTLINE_DATA_DIR, as the server) and authenticate with the
account's credentials, read as the server reads them; they need the offline simulator (exit 2 otherwise).
"""
from __future__ import annotations

import os
import queue
import re
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import IO, Any, NoReturn

import click

from tools.phone.agent import TerminalAgent
from tools.phone.client import HotlineApi, HttpError, Located, PhoneError, SimulatorClient, locate
from tools.phone.plan import Shift
from tools.phone.transcript import CallTranscript

KEYS = "0123456789*#"
E164 = re.compile(r"\+[1-9]\d{6,14}")
HANG_UP_WAIT_S = 15.0  # after Ctrl-C, how long the caller waits to hear the call end before giving up
Echo = Callable[[str], None]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def hang_up_on_signals() -> None:
    """SIGTERM and SIGHUP (terminal closed) end the call or the shift as Ctrl-C does, not in the middle of it."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


def _fail(exc: PhoneError) -> NoReturn:
    click.echo(f"hotline: {exc}", err=True)
    sys.exit(exc.code)


def _e164(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not E164.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not an E.164 number such as +8613800138002")
    return value


def parse_script(text: str) -> list[dict[str, Any]]:
    """--script "1,123456#,,0": one answer per <Gather>, keys or "" (stay silent there); BadParameter otherwise."""
    answers = []
    for n, item in enumerate(text.split(","), 1):
        item = item.strip()
        if item and not set(item) <= set(KEYS):
            raise click.BadParameter(f"item {n} {item!r}: keys are 0-9, * and #; an empty item stays silent")
        answers.append({"digits": item} if item else {"silence": True})
    return answers


def _script(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[dict[str, Any]] | None:
    return None if value is None else parse_script(value)


def line_answer(line: str) -> dict[str, Any] | None:
    """A typed line as an answer: keys, or else speech; None for an empty line."""
    text = line.strip()
    if not text:
        return None
    return {"digits": text} if set(text) <= set(KEYS) else {"speech": text}


def _read_keys(sim: SimulatorClient, sid: str, stream: IO[str]) -> None:
    """Send each typed line to the call; at the end of input the caller just stays on the line."""
    for line in stream:
        answer = line_answer(line)
        if answer is not None:
            try:
                sim.send(sid, answer)
            except PhoneError:
                return  # the call has ended (409) or the simulator is gone: the main loop says which


def follow_call(sim: SimulatorClient, sid: str, echo: Echo, interactive: bool) -> int:
    """Print the call's events until it ends; Ctrl-C hangs up (the hotline gets the caller's hang-up). Exit code."""
    after, hung_up_at = 0, None
    transcript = CallTranscript(interactive)
    while True:
        try:
            if hung_up_at is not None and time.monotonic() - hung_up_at > HANG_UP_WAIT_S:
                echo("[hung up; the simulator did not report the end of the call]")
                return 1
            events, after = sim.call_events(sid, after, wait=20.0 if hung_up_at is None else 2.0)
            for event in events:
                if event["kind"] == "call.ended" and transcript.summary():
                    echo(transcript.summary() or "")
                text = transcript.line(event)
                if text:
                    echo(text)
                if event["kind"] == "call.ended":
                    return 1 if event.get("error") else 0
        except KeyboardInterrupt:
            if hung_up_at is not None:
                return 130  # a second Ctrl-C: stop waiting
            echo("[you hang up]")
            hung_up_at = time.monotonic()
            sim.hang_up(sid)


def _hotline_answers(url: str) -> None:
    try:
        urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=5).close()
    except OSError as exc:
        raise PhoneError(f"the hotline at {url} does not answer ({getattr(exc, 'reason', exc)})") from None


def _checked(located: Located) -> dict[str, Any]:
    """The simulator's description; a clear line when it refuses our credentials."""
    try:
        return located.sim.about()
    except HttpError as exc:
        if exc.status == 401:
            raise PhoneError(f"the simulator refused this data dir's credentials ({located.path.parent}): "
                             "use the HOTLINE_DATA_DIR (and TWILIO_AUTH_TOKEN) `hotline run` uses", 2) from None
        raise


def _demo_caller() -> str:
    from hotline.demo import DEMO_MEMBERS

    return next(phone for _uid, _name, tier, phone, _pin in DEMO_MEMBERS if tier == "premium")


@click.command("call")
@click.option("--from", "from_", default=_demo_caller, callback=_e164, show_default="the demo premium member",
              help="the caller's number (E.164)")
@click.option("--to", default=None, callback=_e164, help="the number dialled (default: the hotline's)")
@click.option("--server", default=None, help="the hotline's base URL (default: the one `hotline run` serves)")
@click.option("--script", "answers", default=None, callback=_script,
              help='unattended: answers for successive <Gather>s, e.g. "1357#,0" (an empty item stays silent)')
def call_cmd(from_: str, to: str | None, server: str | None, answers: list[dict[str, Any]] | None) -> None:
    """Call the hotline from the terminal: hear its prompts, type keys (or words), Ctrl-C hangs up."""
    try:
        located = locate()
        about = _checked(located)
        _hotline_answers(server or located.hotline_url)
        placed = located.sim.place_call(from_, to, server, answers or [])
    except PhoneError as exc:
        _fail(exc)
    hang_up_on_signals()
    interactive = answers is None
    click.echo(
        f"calling {placed['to']} from {from_} through the simulator (hotline {server or about['hotline_url']}, "
        f"time scale {about['scale']:g}); Ctrl-C hangs up" + ("; type keys or words, then Enter" if interactive else "")
    )
    if interactive:
        threading.Thread(target=_read_keys, args=(located.sim, placed["sid"], sys.stdin), daemon=True).start()
    try:
        code = follow_call(located.sim, placed["sid"], click.echo, interactive)
    except PhoneError as exc:
        _fail(exc)
    sys.exit(code)


def _dispositions() -> list[str] | None:
    """The configured dispositions, when this terminal can read the configuration (the server has the last word)."""
    from core.schema import ConfigError
    from hotline.configuration import full_config

    try:
        return list(full_config(os.environ.get("HOTLINE_CONFIG") or None)["console"]["dispositions"])
    except ConfigError:
        return None


def _read_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _transfer_to(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", value):
        raise click.BadParameter(f"{value!r}: an agent's login, or queue")
    return value


@click.command("agent")
@click.option("--login", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
@click.option("--server", default=None, help="the hotline's base URL (default: the one `hotline run` serves)")
@click.option("--identity", default=None,
              help="the Twilio Client identity the hotline rings (default: the login, as in the demo)")
@click.option("--ring", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="simulated seconds the phone rings before you answer (real ones at scale 1)")
@click.option("--manual", is_flag=True, help='answer yourself: type y or n at "accept? [y/n]"')
@click.option("--talk", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="simulated seconds of talk (after the hold and the transfer, if any) before hanging up")
@click.option("--hold", type=click.FloatRange(min=0, min_open=True), default=None,
              help="once talking, put the caller on hold for this many simulated seconds, then resume")
@click.option("--transfer-to", default=None, callback=_transfer_to, metavar="LOGIN|queue",
              help="then transfer the call to this agent, or back to the queue (cold unless --warm)")
@click.option("--warm", is_flag=True, help="a warm transfer: talk to the agent first, complete once they answer")
@click.option("--wrap", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="simulated seconds of wrap-up before saving it")
@click.option("--disposition", default="resolved", show_default=True, help="a key of [console.dispositions]")
def agent_cmd(login: str, password: str, server: str | None, identity: str | None, ring: float, manual: bool,
              talk: float, hold: float | None, transfer_to: str | None, warm: bool, wrap: float,
              disposition: str) -> None:
    """Be an agent in the terminal: available, answer routed calls, hold, transfer, wrap up; Ctrl-C goes offline."""
    known = _dispositions()
    if known is not None and disposition not in known:
        raise click.BadParameter(f"{disposition!r} is not one of {', '.join(known)}", param_hint="--disposition")
    if warm and transfer_to in (None, "queue"):
        raise click.BadParameter("a warm transfer needs --transfer-to LOGIN", param_hint="--warm")
    if transfer_to == login:
        raise click.BadParameter("an agent cannot transfer a call to themselves", param_hint="--transfer-to")
    shift = Shift(ring, talk, wrap, disposition, hold, transfer_to, warm, manual)
    try:
        located = locate()
        about = _checked(located)
        api = HotlineApi(server or located.hotline_url, login, password, "the hotline")
        try:
            api.me()
        except HttpError as exc:
            why = exc.body.get("error") if isinstance(exc.body, dict) else None
            raise PhoneError(f"{login} cannot log in to {api.base_url}: {why or exc}", 2) from None
        typed: queue.Queue[str] | None = None
        if manual:
            typed = queue.Queue()
            threading.Thread(target=_read_lines, args=(sys.stdin, typed), daemon=True).start()
        agent = TerminalAgent(api, located, identity or login, shift, float(about["scale"]), click.echo, typed)
        hang_up_on_signals()
        try:
            after = agent.start()
        except KeyboardInterrupt:
            api.set_status("offline")  # stopped while starting: never leave the agent available
            sys.exit(0)
        sys.exit(agent.run(after))
    except PhoneError as exc:
        _fail(exc)
