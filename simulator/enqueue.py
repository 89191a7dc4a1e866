"""<Enqueue>: hold the caller in a named queue, running waitUrl until something takes them out."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from simulator.control import HungUp, Redirected
from simulator.flow import LEAVE, Context, Goto, Outcome
from simulator.queues import Member, QueueFull
from simulator.results import Heard
from simulator.twiml import WAIT_VERBS, method_attr, text, url_attr

if TYPE_CHECKING:
    from simulator.call import SimulatedCall


def enqueue(call: SimulatedCall, el: ET.Element, doc_url: str, ctx: Context) -> Outcome:
    """Join the queue, hold, and report how the caller left through the `action` URL."""
    name = text(el)
    action = url_attr(el, "action", doc_url)
    method_attr(el)
    wait_url = url_attr(el, "waitUrl", doc_url)
    method_attr(el, "waitUrlMethod")
    queues = call.net.queues
    try:
        member = queues.join(name, call.sid, call.control)
    except QueueFull as full:
        return _report(call, action, {"QueueResult": "queue-full", "QueueSid": full.queue.sid, "QueueTime": "0"})
    except ValueError:  # a name Twilio refuses (empty or over 64 characters)
        return _report(call, action, {"QueueResult": "error", "QueueTime": "0"})
    call.net.events.emit(
        "queue.joined", call.sid, queue=name, queue_sid=member.queue.sid, position=queues.position(member)
    )
    call.control.hang_up_after("queue", call.cursor.script.hangup_after_queue_seconds)
    try:
        _hold(call, member, wait_url)
    except (Redirected, HungUp) as exc:
        # Twilio reports the way out at once; the call then goes where the interrupt says, not to this answer.
        queues.remove(member)
        figures = _figures(member, "redirected" if isinstance(exc, Redirected) else "hangup")
        _report(call, None, figures)
        if action:
            call.fetch(action, "enqueue-action", figures, status=exc.status if isinstance(exc, HungUp) else None)
        raise
    finally:
        queues.remove(member)  # after a failure too, so a broken call never blocks the line
        call.control.hang_up_after("queue", None)
    return _report(call, action, _figures(member, "leave"))


def _figures(member: Member, result: str) -> dict[str, str]:
    return {"QueueResult": result, "QueueSid": member.queue.sid, "QueueTime": str(member.wait_time())}


def _report(call: SimulatedCall, action: str | None, figures: dict[str, str]) -> Outcome:
    """Record how the caller left; follow the action with it, or without one go on with the next verb."""
    call.result.queue_results.append(figures)
    call.net.events.emit("queue.left", call.sid, queue_sid=figures.get("QueueSid", ""), result=figures["QueueResult"])
    return Goto(action, "enqueue-action", figures) if action else None


def _hold(call: SimulatedCall, member: Member, wait_url: str | None) -> None:
    """Run waitUrl over and over until <Leave>; interrupts (REST, hang-up) escape as exceptions."""
    queues = call.net.queues
    ctx = Context("wait", call.result.transcript, WAIT_VERBS, member)
    limit = call.cursor.script.hangup_after_hold_loops
    loops = 0
    while True:
        if limit is not None and loops >= limit:
            raise HungUp("completed", by="caller")
        if wait_url is None:  # Twilio's default hold music
            call.hear(ctx, Heard("play", "[default hold music]", seconds=call.net.options.play_seconds))
            call.control.wait(call.net.options.play_seconds)
        nxt = Goto(wait_url, "wait") if wait_url else None
        while nxt is not None:
            root = call.fetch(nxt.url, nxt.kind, {**queues.wait_params(member), **nxt.extra})
            outcome = call.run_document(root, nxt.url, ctx)
            if outcome is LEAVE:
                if not queues.remove(member):
                    call.control.check()  # a REST dequeue won the race: its interrupt is pending
                return
            nxt = outcome if isinstance(outcome, Goto) else None
        loops += 1
