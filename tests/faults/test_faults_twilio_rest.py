"""Issue 9, item 3 (3): Twilio's REST API failing (500, 503, 429 with Retry-After, timeouts, answers lost after the
work was done), played by the simulator (simulator/faults.py), against the gateway alone: it retries what is safe
within its budget and never repeats what may have been done.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from simulator import Fault, Script
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.processes import free_port
from tests.support.twilio_faults import fast_gateway, moves_to, rest
from webhooks.outbound.gateway import GatewayError, RetryPolicy


@pytest.fixture
def sim(app: Any) -> Iterator[Any]:
    from simulator import Simulator

    with Simulator.for_app(app, PUBLIC_URL, AUTH_TOKEN, scale=0.005) as s:
        yield s


def held_caller(sim: Any) -> tuple[Any, str]:
    """A guest holding in a Twilio queue; returns the call and the queue's name."""
    handle = sim.start_call("+8613600000055", Script(answers=("0", "*#"), when_answers_run_out="hangup"))
    joined = sim.events.wait("queue.joined", timeout=15, call_sid=handle.sid)
    return handle, joined.data["queue"]


def test_the_backoff_doubles_up_to_its_cap_with_half_of_it_random() -> None:
    p = RetryPolicy(base_s=0.25, max_backoff_s=2.0)
    assert [p.backoff(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.125, 0.25, 0.5, 1.0, 1.0]
    assert [p.backoff(n, 1.0) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]


def test_a_move_answered_500_twice_is_retried_after_checking_the_caller_is_still_queued(
    sim: Any, services: Any
) -> None:
    handle, queue = held_caller(sim)
    fault = sim.faults.add(Fault("POST", "/Calls/CA", status=500, times=2))
    pauses: list[float] = []
    fast_gateway(sim, pauses).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    handle.join(15)
    assert fault.hits == 2 and rest(sim, "POST", f"/Calls/{handle.sid}") == 3
    assert pauses == pytest.approx([0.075, 0.15])  # 0.1·2^(n−1), three quarters of it with rand = 0.5
    assert rest(sim, "GET", f"/Members/{handle.sid}") == 2  # a 500 may have been done: looked before each repeat
    assert moves_to(handle, "/voice/fallback") == 1


def test_a_429_waits_as_long_as_retry_after_says_and_one_beyond_the_cap_fails_at_once(sim: Any) -> None:
    handle, queue = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", status=429, code=20429, retry_after="0.7"))
    pauses: list[float] = []
    gw = fast_gateway(sim, pauses)
    gw.redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    assert pauses == [0.7] and rest(sim, "GET", "/Members/") == 0  # a 429 did nothing: no need to look
    handle.join(15)
    other, queue = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", status=429, code=20429, retry_after="30"))
    pauses.clear()
    with pytest.raises(GatewayError) as failed:
        gw.redirect_call(other.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    assert (failed.value.status, failed.value.attempts, failed.value.unsure, pauses) == (429, 1, False, [])
    other.hangup()
    other.join(15)


def test_moves_that_timed_out_are_repeated_while_the_caller_is_still_queued(sim: Any) -> None:
    handle, queue = held_caller(sim)
    fault = sim.faults.add(Fault("POST", "/Calls/CA", delay_s=1.0, times=2))  # Twilio too slow, and nothing done
    pauses: list[float] = []
    fast_gateway(sim, pauses).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    handle.join(15)
    assert fault.hits == 2 and rest(sim, "POST", f"/Calls/{handle.sid}") == 3 and len(pauses) == 2
    assert moves_to(handle, "/voice/fallback") == 1


def test_a_move_done_whose_answer_was_lost_is_not_repeated(sim: Any) -> None:
    handle, queue = held_caller(sim)
    sim.faults.add(
        Fault("POST", "/Calls/CA", status=None, applied=True, delay_s=1.0)
    )  # done; the answer comes too late
    pauses: list[float] = []
    fast_gateway(sim, pauses).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    handle.join(15)
    assert rest(sim, "POST", f"/Calls/{handle.sid}") == 1 and pauses == []  # gone from the queue: it was done
    assert moves_to(handle, "/voice/fallback") == 1 and [q["QueueResult"] for q in handle.result.queue_results] == [
        "redirected"
    ]


def test_an_unsure_move_with_no_queue_to_look_in_is_never_repeated(sim: Any) -> None:
    handle, _ = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", delay_s=1.0))
    with pytest.raises(GatewayError) as failed:
        fast_gateway(sim, []).redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback")
    assert (failed.value.unsure, failed.value.attempts, failed.value.status) == (True, 1, 0)
    assert rest(sim, "POST", f"/Calls/{handle.sid}") == 1
    handle.hangup()
    handle.join(15)
    assert moves_to(handle, "/voice/fallback") == 0  # the slow request did nothing, and was not sent again


def test_a_move_failing_for_good_gives_up_within_its_budget(sim: Any) -> None:
    handle, queue = held_caller(sim)
    sim.faults.add(Fault("POST", "/Calls/CA", delay_s=1.0, times=None))  # every attempt times out
    budget = 1.5
    gw = fast_gateway(sim, policies={"move": RetryPolicy(attempts=10, base_s=0.1, budget_s=budget)})  # real pauses
    t0 = time.monotonic()
    with pytest.raises(GatewayError) as failed:
        gw.redirect_call(handle.sid, PUBLIC_URL + "/voice/fallback", queue_name=queue)
    elapsed = time.monotonic() - t0
    # Bounded: the budget, plus at most one last look at the queue (a local request); far below ten timeouts.
    assert elapsed < budget + 1.0, elapsed
    assert 2 <= failed.value.attempts < 10
    assert failed.value.unsure is False  # the caller was seen still queued: the move provably did not happen
    handle.hangup()
    handle.join(15)


def test_calls_create_is_repeated_only_when_twilio_provably_placed_nothing(sim: Any) -> None:
    member = "+8613800000011"
    sim.add_phone(member, "busy")
    pauses: list[float] = []
    gw = fast_gateway(sim, pauses)
    url, status = PUBLIC_URL + "/voice/callback/answer?ticket=1&n=1", PUBLIC_URL + "/voice/callback/status?ticket=1&n=1"
    sim.faults.add(Fault("POST", "/Calls.json", status=500))
    with pytest.raises(GatewayError) as failed:
        gw.create_call(member, url, status)
    assert (failed.value.unsure, failed.value.attempts) == (True, 1)  # a 500 may have rung the member: not again
    assert rest(sim, "POST", "/Calls.json") == 1 and not sim.events.all("call.started")
    sim.faults.add(Fault("POST", "/Calls.json", status=503))
    sid = gw.create_call(member, url, status)
    assert rest(sim, "POST", "/Calls.json") == 3 and [e.call_sid for e in sim.events.all("call.started")] == [sid]
    dead = fast_gateway(sim, pauses, api_url=f"http://127.0.0.1:{free_port()}")
    pauses.clear()
    with pytest.raises(GatewayError) as refused:
        dead.create_call(member, url, status)
    assert (refused.value.unsure, refused.value.attempts, len(pauses)) == (False, 3, 2)  # never sent: safe to repeat
    sim.handle(sid).join(15)


def test_a_text_is_repeated_only_when_twilio_provably_sent_nothing(sim: Any) -> None:
    gw = fast_gateway(sim, [])
    sim.faults.add(Fault("POST", "/Messages.json", status=503))
    gw.send_sms("+8613800000012", "one")
    assert rest(sim, "POST", "/Messages.json") == 2 and [m.body for m in sim.messages] == ["one"]
    sim.faults.add(Fault("POST", "/Messages.json", status=None, applied=True, delay_s=1.0))  # sent; the answer is late
    with pytest.raises(GatewayError) as failed:
        gw.send_sms("+8613800000012", "two")
    assert (failed.value.unsure, failed.value.attempts) == (True, 1)
    assert rest(sim, "POST", "/Messages.json") == 3 and [m.body for m in sim.messages] == ["one", "two"]  # never twice


def test_a_list_read_answered_500_is_retried_and_then_reports_twilios_status(sim: Any) -> None:
    # twilio-python raises a bare TwilioException for a failed list page, not a TwilioRestException: the gateway
    # must still see Twilio's status in it (once it read such a failure as "not understood" and never retried).
    handle, _ = held_caller(sim)
    fault = sim.faults.add(Fault("GET", "/Calls.json", status=500, times=1))
    pauses: list[float] = []
    assert fast_gateway(sim, pauses).live_call_sid(handle.call.to) == handle.sid
    assert fault.hits == 1 and rest(sim, "GET", "/Calls.json") == 2 and len(pauses) == 1
    sim.faults.add(Fault("GET", "/Queues.json", status=503, code=20503, times=None))
    with pytest.raises(GatewayError) as failed:
        fast_gateway(sim, []).ensure_queue("hotline-1", 1000)
    assert (failed.value.status, failed.value.code, failed.value.unsure) == (503, 20503, False)
    assert failed.value.attempts > 1
    handle.hangup()
