"""<Enqueue> in the simulator: waitUrl figures, REST dequeue, <Leave>, hang-ups, full queues."""
from __future__ import annotations

import threading

import pytest
from twilio.base.exceptions import TwilioRestException

from simulator import Script, TwimlRejected
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.twiml_app import CALLER, TwimlApp, dequeue, doc
from webhooks.outbound.gateway import TwilioGateway

ENQUEUE = doc('<Enqueue waitUrl="/voice/wait" action="/voice/queue-done">support</Enqueue>')
HOLD_FOREVER = doc("<Say>Please hold</Say>", '<Play loop="0">https://cdn.test/hold.mp3</Play>')


def queued_app(wait: str = HOLD_FOREVER, **routes: str) -> TwimlApp:
    """A hotline that queues every caller in "support"."""
    return TwimlApp({
        "/voice/incoming": ENQUEUE,
        "/voice/wait": wait,
        "/voice/queue-done": doc("<Say>left the queue</Say>"),
        "/voice/agent": doc("<Say>connecting you</Say>"),
        **routes,
    })


@pytest.fixture
def sim_for():
    started = []

    def make(app: TwimlApp, **kw):
        sim = app.sim(**kw)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def gateway(sim) -> TwilioGateway:
    return TwilioGateway(sim.account_sid, AUTH_TOKEN, sim.api_url)


def test_wait_url_gets_twilio_queue_figures_and_rest_dequeue_redirects(sim_for):
    hotline = queued_app()
    sim = sim_for(hotline)
    handle = sim.start_call(CALLER)
    joined = sim.events.wait("queue.joined", call_sid=handle.sid)
    sim.events.wait("heard", call_sid=handle.sid, party="wait", verb="play")  # holding, music playing
    dequeue(gateway(sim), joined.data["queue_sid"], handle.sid, PUBLIC_URL + "/voice/agent")
    result = handle.join()

    wait = hotline.to("/voice/wait")[0].params
    assert wait["QueueSid"] == joined.data["queue_sid"] and wait["QueueSid"].startswith("QU")
    assert (wait["QueuePosition"], wait["CurrentQueueSize"], wait["MaxQueueSize"]) == ("1", "1", "1000")
    assert wait["QueueTime"] == "0" and wait["AvgQueueTime"] == "0"
    done = hotline.to("/voice/queue-done")
    assert (
        len(done) == 1
        and done[0].params["QueueResult"] == "redirected"
        and done[0].params["QueueSid"] == wait["QueueSid"]
    )
    assert result.said() == ["Please hold", "connecting you"]  # the action's answer is not followed; the REST Url is
    assert [r.kind for r in result.requests] == ["voice", "wait", "enqueue-action", "rest-redirect", "status"]
    assert result.queue_results[0]["QueueResult"] == "redirected" and result.status == "completed"
    assert sim.net.queues.named("support").members == []


def test_queue_time_and_positions_follow_fifo_order(sim_for):
    hotline = queued_app(wait=doc('<Pause length="10"/>'))
    sim = sim_for(hotline, scale=0.001)
    first = sim.start_call("+8613800000001")
    joined = sim.events.wait("queue.joined", call_sid=first.sid)
    second = sim.start_call("+8613800000002")
    sim.events.wait("heard", call_sid=second.sid, party="wait")  # its first waitUrl request is made
    members = gateway(sim).client.queues(joined.data["queue_sid"]).members
    front = members("Front").fetch()
    assert front.call_sid == first.sid and front.position == 1
    taken = [members("Front").update(url=PUBLIC_URL + "/voice/agent").call_sid for _ in range(2)]
    first.join(), second.join()

    assert taken == [first.sid, second.sid]
    second_waits = [h.params for h in hotline.to("/voice/wait") if h.params["CallSid"] == second.sid]
    assert second_waits[0]["QueuePosition"] == "2" and second_waits[0]["CurrentQueueSize"] == "2"
    queue_times = [int(p["QueueTime"]) for p in second_waits]
    assert queue_times == sorted(queue_times) and all(t % 10 == 0 for t in queue_times)  # each loop is one 10 s pause


def test_leave_posts_the_action_and_follows_it(sim_for):
    hotline = queued_app(
        wait=doc(
            '<Gather numDigits="1" action="/voice/wait-key" timeout="5"><Say>Press 1 for a callback</Say></Gather>'
        ),
        **{"/voice/wait-key": doc("<Leave/>"), "/voice/queue-done": doc("<Say>we will call you back</Say>")},
    )
    sim = sim_for(hotline)
    result = sim.place_call(CALLER, script=Script(hold_answers=(None, None, "1")))
    waits, key = hotline.to("/voice/wait"), hotline.to("/voice/wait-key")
    assert len(waits) == 3 and key[0].params["Digits"] == "1"
    assert key[0].params["QueueSid"] == waits[0].params["QueueSid"]  # still in the queue while choosing
    done = hotline.to("/voice/queue-done")[0].params
    assert done["QueueResult"] == "leave" and int(done["QueueTime"]) >= 10
    assert result.said()[-1] == "we will call you back" and result.status == "completed"


def test_menu_answers_are_not_spent_on_hold(sim_for):
    # A caller whose menu answers ran out ("hangup") still holds: hold <Gather>s hear silence.
    hotline = queued_app(
        wait=doc('<Gather numDigits="1" action="/voice/wait-key" timeout="1"><Pause length="10"/></Gather>')
    )
    result = sim_for(hotline).place_call(
        CALLER, script=Script(when_answers_run_out="hangup", hangup_after_hold_loops=3)
    )
    assert len(hotline.to("/voice/wait")) == 3 and hotline.to("/voice/wait-key") == []
    assert result.queue_results[0]["QueueResult"] == "hangup"


def test_caller_hangs_up_after_hold_loops(sim_for):
    hotline = queued_app(wait=doc('<Say>Still waiting</Say><Pause length="20"/>'))
    result = sim_for(hotline).place_call(CALLER, script=Script(hangup_after_hold_loops=2))
    assert len(hotline.to("/voice/wait")) == 2
    done = hotline.to("/voice/queue-done")[0].params
    assert done["QueueResult"] == "hangup" and done["CallStatus"] == "completed" and int(done["QueueTime"]) >= 40
    status = hotline.to("/voice/status")
    assert len(status) == 1 and status[0].params["CallStatus"] == "completed"
    assert result.said() == ["Still waiting", "Still waiting"]  # the action's answer is never played


def test_caller_hangs_up_after_simulated_seconds_in_queue(sim_for):
    hotline = queued_app(wait=doc('<Pause length="10"/>'))
    result = sim_for(hotline).place_call(CALLER, script=Script(hangup_after_queue_seconds=45))
    assert len(hotline.to("/voice/wait")) == 5  # at 0, 10, 20, 30, 40 s; gone at 45
    assert result.queue_results == [
        {"QueueResult": "hangup", "QueueSid": result.queue_results[0]["QueueSid"], "QueueTime": "45"}
    ]


def test_hangup_at_any_moment_while_queued(sim_for):
    hotline = queued_app()
    sim = sim_for(hotline)
    handle = sim.start_call(CALLER)
    sim.events.wait("queue.joined", call_sid=handle.sid)
    handle.hangup()
    result = handle.join()
    assert result.queue_results[0]["QueueResult"] == "hangup"
    assert [h.path for h in hotline.hits][-2:] == ["/voice/queue-done", "/voice/status"]


def test_rest_redirect_and_hangup_of_queued_calls(sim_for):
    hotline = queued_app()
    sim = sim_for(hotline)
    gw = gateway(sim)
    moved, ended = sim.start_call("+8613800000001"), sim.start_call("+8613800000002")
    for handle in (moved, ended):
        sim.events.wait("queue.joined", call_sid=handle.sid)
    gw.redirect_call(moved.sid, PUBLIC_URL + "/voice/agent")
    gw.hang_up(ended.sid)
    moved_result, ended_result = moved.join(), ended.join()
    assert moved_result.queue_results[0]["QueueResult"] == "redirected" and moved_result.said()[-1] == "connecting you"
    assert ended_result.queue_results[0]["QueueResult"] == "hangup" and ended_result.status == "completed"
    assert gw.client.queues(moved_result.queue_results[0]["QueueSid"]).fetch().current_size == 0


def test_queue_full(sim_for):
    hotline = queued_app(**{"/voice/queue-done": doc("<Say>too busy</Say>")})
    sim = sim_for(hotline)
    sim.create_queue("support", max_size=1)
    holder = sim.start_call("+8613800000001")
    sim.events.wait("queue.joined", call_sid=holder.sid)
    result = sim.place_call("+8613800000002")
    assert result.queue_results[0]["QueueResult"] == "queue-full" and result.said() == ["too busy"]
    assert hotline.to("/voice/queue-done")[0].params["QueueResult"] == "queue-full"
    holder.hangup()
    holder.join()


def test_enqueue_without_action_goes_on_with_the_next_verb(sim_for):
    hotline = TwimlApp({
        "/voice/incoming": doc('<Enqueue waitUrl="/voice/wait">q</Enqueue>', "<Say>after</Say>"),
        "/voice/wait": doc("<Leave/>"),
    })
    result = sim_for(hotline).place_call(CALLER)
    assert result.said() == ["after"] and result.queue_results[0]["QueueResult"] == "leave"


def test_verbs_not_allowed_in_a_wait_document_fail_loudly(sim_for):
    hotline = queued_app(wait=doc("<Dial>+8613800000009</Dial>"))
    sim = sim_for(hotline)
    with pytest.raises(TwimlRejected, match="not allowed in a wait document"):
        sim.place_call(CALLER)
    assert sim.net.queues.named("support").members == []  # a failed call does not block the line


def test_queue_names_over_64_characters_are_an_error(sim_for):
    hotline = TwimlApp({"/voice/incoming": doc(f'<Enqueue action="/voice/queue-done">{"q" * 65}</Enqueue>'),
                        "/voice/queue-done": doc("<Say>sorry</Say>")})
    result = sim_for(hotline).place_call(CALLER)
    assert hotline.to("/voice/queue-done")[0].params["QueueResult"] == "error" and result.said() == ["sorry"]


def test_many_callers_at_once_are_all_served(sim_for):
    hotline = queued_app(wait=doc('<Pause length="5"/>'))
    sim = sim_for(hotline, scale=0.001)
    handles = []
    starters = [
        threading.Thread(target=lambda n=n: handles.append(sim.start_call(f"+86138000000{n:02d}"))) for n in range(8)
    ]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    for handle in handles:
        sim.events.wait("queue.joined", call_sid=handle.sid)
    queue_sid = sim.net.queues.named("support").sid
    gw = gateway(sim)
    for _ in handles:
        dequeue(gw, queue_sid, "Front", PUBLIC_URL + "/voice/agent")
    results = [h.join() for h in handles]
    assert all(r.queue_results[0]["QueueResult"] == "redirected" and r.said()[-1] == "connecting you" for r in results)
    with pytest.raises(TwilioRestException) as info:
        dequeue(gw, queue_sid, "Front", PUBLIC_URL + "/voice/agent")
    assert info.value.status == 404
