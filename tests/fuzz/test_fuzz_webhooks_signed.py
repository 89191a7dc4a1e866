"""Property-based fuzzing of every /voice/* webhook (hypothesis), with signed requests (they reach the handlers).

Weird, huge, unicode, control-character and NUL values, missing fields, wrong types, duplicated keys; whole call
sequences that follow the TwiML like Twilio. Property: 200 with schema-valid TwiML, or a 4xx — never a 5xx, never a
traceback, and never an exception swallowed into the spoken apology (the stores are up: an apology here is a bug).
After every request the live queue in Redis agrees with itself, with the agents' presence and with SQL.

Reproducible: derandomized hypothesis, no example database; the figures are printed at the end.
"""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from callqueue.live import calls, presence
from callqueue.live.presence import PresenceError
from tests.support.common import PUBLIC_URL
from tests.support.fuzz_stores import (
    Figures,
    Trouble,
    check_answer,
    node_names_of,
    queue_problems,
    restore,
    seed,
    short,
)
from tests.support.fuzz_voice import (
    AGENT,
    FUZZ,
    FUZZ_TEXT,
    QUERY_NAMES,
    SIDS,
    Sent,
    build_pairs,
    form_changes,
    query_value,
    route_strategy,
    rule_of,
    send,
    signature,
    twilio_form,
    voice_rules,
)
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN, STANDARD_PHONE, STANDARD_PIN, UNKNOWN_PHONE
from webhooks import urls
from webhooks.outbound.legs import leg_urls

# How much to fuzz: sized so that this file runs in well under a minute on the 2-core CI machine.
SIGNED_EXAMPLES = 400
MAX_STEPS = 10


# --- following the TwiML like Twilio -------------------------------------------------------------

def urls_in(doc: str) -> list[str]:
    """Every URL a TwiML document tells Twilio to request next (relative to the public URL)."""
    try:
        root = ET.fromstring(doc)
    except ET.ParseError:
        return []
    found = []
    for el in root.iter():
        for attr in ("action", "waitUrl", "url"):
            if el.get(attr):
                found.append(el.get(attr, ""))
        if el.tag == "Redirect" and el.text:
            found.append(el.text.strip())
    out = []
    for u in found:
        u = u.removeprefix(PUBLIC_URL)
        if u.startswith("/voice/"):
            out.append(u)
    return out


Step = tuple[Any, ...]
# How journeys begin (then random moves follow): straight to the queue, as a guest, to the hold loop's callback
# offer, to an agent. "PIN" is the calling member's own PIN.
JOURNEY_SCRIPTS = (
    (),
    ("PIN", "0"),
    ("*", "0", "*"),
    ("0", "*"),
    ("PIN", "0", None, "1", "1"),
    ("PIN", "0", None, "1", "2"),
    ("PIN", "0", "available", "dispatch", None, "1"),
    ("PIN", "0", "available", "dispatch", None, "9"),
    ("*", "0", "*", "available", "dispatch", None),
    ("PIN", "8"),
    ("PIN", "1", "1"),
)
# What a caller does next in a journey: keys for the <Gather>, silence (None), or the worker acting meanwhile.
JOURNEY_MOVES = (None, "1", "2", "0", "*", "#", PREMIUM_PIN, STANDARD_PIN, "10001", "20002", "13800000001", "dispatch",
                 "available", "dispatch", "hangup")


def steps_strategy(app: Any, node_names: tuple[str, ...], ticket_ids: tuple[int, ...]) -> st.SearchStrategy[list[Step]]:
    route = route_strategy(app, node_names)
    sid = st.one_of(st.sampled_from(SIDS), st.sampled_from(SIDS), FUZZ_TEXT)
    query = st.lists(st.sampled_from(QUERY_NAMES).flatmap(lambda n: st.tuples(st.just(n), query_value(n, ticket_ids))),
                     max_size=3)
    method = st.sampled_from(("POST",) * 12 + ("GET", "PUT"))
    request = st.tuples(st.just("request"), method, route, query, sid, form_changes())
    follow = st.tuples(
        st.just("follow"),
        st.sampled_from(SIDS),
        st.integers(0, 5),
        form_changes(),
        st.one_of(
            st.none(),
            st.from_regex(r"[0-9*#]{1,8}", fullmatch=True),
            st.sampled_from((PREMIUM_PIN, "0", "1", "2", "*")),
        ),
    )
    worker = st.tuples(st.sampled_from(("dispatch", "available")))
    move = st.one_of(
        st.sampled_from(JOURNEY_MOVES),
        st.from_regex(r"[0-9*#]{1,6}", fullmatch=True),
        FUZZ_TEXT.filter(lambda v: len(v) < 100),
    )
    journey = st.tuples(
        st.just("journey"),
        st.sampled_from(SIDS),
        st.sampled_from((PREMIUM_PHONE, STANDARD_PHONE, UNKNOWN_PHONE)),
        st.tuples(st.sampled_from(JOURNEY_SCRIPTS), st.lists(move, max_size=10)).map(lambda t: [*t[0], *t[1]]),
    )
    step = st.one_of(journey, journey, request, follow, worker)
    return st.lists(step, min_size=1, max_size=MAX_STEPS)


# --- the property --------------------------------------------------------------------------------

def test_signed_fuzz_never_fails_and_keeps_the_queue_consistent(
    app: Any,
    client: Any,
    services: Any,
    db: Any,
    members: Any,
    twiml_check: Callable[[str], None],
    trouble: Trouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = seed(services, db)
    figures = Figures()
    last: dict[str, str] = {}  # CallSid -> the last TwiML document it was given
    pending: dict[str, str] = {}  # CallSid -> the URL Twilio requests next for it (a REST redirect)
    ringing: dict[str, tuple[str, str, str]] = {}  # caller's CallSid -> (agent's leg, its answer URL, agent)

    def post(method: str, path: str, query: str, pairs: list[tuple[str, str]], remember: bool = True) -> Sent:
        headers = {"X-Twilio-Signature": signature(path, query, pairs)}
        sent = send(client, method, path, query, pairs, headers)
        figures.requests += 1
        figures.statuses[sent.status] += 1
        figures.routes[rule_of(app, path)] += 1
        check_answer(sent, twiml_check)
        logged = trouble.take()
        assert not logged, "the webhook failed (an exception answered with the apology, stores up):\n" + \
            sent.describe() + "\n" + "\n".join(logged)
        if sent.status == 200:
            figures.verbs.update(el.tag for el in ET.fromstring(sent.body).iter() if el.tag != "Response")
            if remember:
                last[MultiDict(pairs).get("CallSid", "")] = sent.body
        problems = queue_problems(services)
        assert not problems, "the stores disagree after\n" + sent.describe() + "\n  " + "\n  ".join(problems)
        return sent

    def to(url: str, sid: str, extra: list[tuple[str, str]], changes: dict[str, Any] | None = None,
           remember: bool = True, caller: str = PREMIUM_PHONE) -> Sent:
        parts = urlsplit(url.removeprefix(PUBLIC_URL))
        pairs = (
            build_pairs(sid, changes)
            if changes
            else list({**twilio_form(sid), "From": caller, "Caller": caller}.items())
        )
        return post("POST", parts.path, parts.query, [*pairs, *extra], remember)

    def worker(kind: str) -> None:
        if kind == "dispatch":  # the worker pairs the best caller with the longest-idle agent and rings the agent
            with services.unit_of_work() as session:
                offer = calls.dispatch(session, services.redis, services.clock())
            if offer is not None:  # the agent's leg (Calls create): Twilio requests its Url once they answer
                leg = "CA" + hashlib.sha256(f"{offer.call_sid}/{offer.attempt}".encode()).hexdigest()[:32]
                calls.agent_dialled(services.redis, offer.call_sid, offer.agent, leg)
                ringing[offer.call_sid] = (leg, leg_urls(PUBLIC_URL, offer.call_sid, offer.agent,
                                                         offer=offer.attempt)[0], offer.agent)
        else:
            try:
                presence.set_state(services.redis, AGENT, "available", services.clock(), endpoint="client:" + AGENT)
            except PresenceError:
                pass  # on a call: the call's own events move the agent

    def journey(sid: str, caller: str, moves: list[str | None]) -> None:
        """A call as Twilio runs it: answer each <Gather> with the next keys, follow <Redirect>, hold, ring the
        agent."""
        form = {**twilio_form(sid), "From": caller, "Caller": caller}
        post("POST", "/voice/incoming", "", list(form.items()))
        def go(url: str, call_sid: str, extra: list[tuple[str, str]], remember: bool = True) -> Sent:
            return to(url, call_sid, extra, remember=remember, caller=caller)

        pin = {PREMIUM_PHONE: PREMIUM_PIN, STANDARD_PHONE: STANDARD_PIN}.get(caller, "10001")
        for move in moves:
            move = pin if move == "PIN" else move
            if move in ("dispatch", "available"):
                worker(move)
                continue
            if sid in ringing:  # the agent answers their leg; the bridge job then moves the caller in (REST)
                leg, answer, agent = ringing.pop(sid)
                to(answer, leg, [("To", "client:" + agent)], remember=False)
                pending[sid] = urls.absolute(PUBLIC_URL, urls.CONNECT, agent=agent)
                continue
            if sid in pending:
                go(pending.pop(sid), sid, [])
                continue
            doc = ET.fromstring(last.get(sid) or "<Response/>")
            gather, redirect = doc.find(".//Gather"), doc.find("Redirect")
            enqueue, dial = doc.find("Enqueue"), doc.find("Dial")
            if move == "hangup" or doc.find("Hangup") is not None:
                if enqueue is not None:  # hung up while holding: the Enqueue action, then the status callback
                    go("/voice/queue-result", sid, [("QueueResult", "hangup"), ("QueueTime", "7")])
                go("/voice/status", sid, [("CallStatus", "completed"), ("CallDuration", "42")], remember=False)
                return
            if gather is not None and move is not None:
                go(gather.get("action", ""), sid, [("Digits", move)])
            elif dial is not None and dial.find("Conference") is not None:
                # in the call's conference with the agent: the join, then the caller hangs up (leave, status)
                room = dial.find("Conference")
                assert room is not None
                event = [("FriendlyName", room.text or ""), ("ConferenceSid", "CF" + "1" * 32),
                         ("ParticipantLabel", room.get("participantLabel", ""))]
                go(room.get("statusCallback", ""), sid, [*event, ("StatusCallbackEvent", "participant-join")],
                   remember=False)
                if move == "hangup" or move is None:
                    go(room.get("statusCallback", ""), sid, [*event, ("StatusCallbackEvent", "participant-leave"),
                                                              ("ReasonParticipantLeft", "participant_hung_up")],
                       remember=False)
                    go("/voice/status", sid, [("CallStatus", "completed"), ("CallDuration", "42")], remember=False)
                    return
            elif dial is not None:
                noun = dial[0]
                answered = (move or "1") < "5"  # the agent picks up, or lets it ring out
                if answered and noun.get("url"):  # the whisper runs on the agent's leg once they answer
                    go(noun.get("url", ""), "CA" + "c" * 32, [("ParentCallSid", sid)], remember=False)
                go(dial.get("action", ""), sid, [("DialCallStatus", "completed" if answered else "no-answer"),
                                                 ("DialCallDuration", "30" if answered else "0")])
            elif enqueue is not None:
                go(
                    enqueue.get("waitUrl", ""),
                    sid,
                    [("QueueSid", "QU" + "1" * 32), ("QueueTime", "5"), ("QueuePosition", "1")],
                )
            elif redirect is not None:
                go(redirect.text or "", sid, [])
            elif gather is not None:  # silence: Twilio goes on after the <Gather>; nothing after it ends the call
                go("/voice/status", sid, [("CallStatus", "completed")], remember=False)
                return

    @settings(FUZZ, max_examples=SIGNED_EXAMPLES)
    @given(steps_strategy(app, node_names_of(services), seeded.ticket_ids))
    def run(steps: list[Step]) -> None:
        note("steps: " + short(steps))
        restore(services, seeded)
        last.clear()
        pending.clear()
        trouble.take()
        for step in steps:
            kind = step[0]
            if kind == "request":
                _, method, path, query, sid, changes = step
                post(method, path, urlencode(query), build_pairs(sid, changes))
            elif kind == "journey":
                _, sid, caller, moves = step
                journey(sid, caller, moves)
            elif kind == "follow":  # a hostile version of the request the last document asked for
                _, sid, index, changes, digits = step
                urls = urls_in(last.get(sid, "")) + ([pending.pop(sid)] if sid in pending else [])
                if urls:
                    to(urls[index % len(urls)], sid, [("Digits", digits)] if digits is not None else [], changes)
            else:
                worker(kind)
            assert not queue_problems(services), f"the stores disagree after {step!r}"

    run()
    with capsys.disabled():
        print(figures.line("signed /voice/* requests"))
    # The fuzzer must reach the handlers (not be turned away at the door), cover every route and reach the agent.
    assert figures.statuses[200] >= figures.requests // 3, figures.statuses
    assert figures.statuses[403] == 0, "a correctly signed request was refused: the signature check and Twilio disagree"
    missing = {r.rule for r in voice_rules(app)} - set(figures.routes)
    assert not missing, f"routes never fuzzed: {sorted(missing)}"
    assert {"Enqueue", "Dial", "Gather", "Leave"} <= set(figures.verbs), figures.verbs
