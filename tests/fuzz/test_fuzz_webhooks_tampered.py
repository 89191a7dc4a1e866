"""Property-based fuzzing of every /voice/* webhook (hypothesis), with unsigned or tampered requests: always 403
(413 when over the size limit), and the stores are exactly as they were.

Reproducible: derandomized hypothesis, no example database; the figures are printed at the end.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.support.common import AUTH_TOKEN, sign
from tests.support.fuzz_stores import Figures, Trouble, changed_keys, node_names_of, seed, snapshot
from tests.support.fuzz_voice import (
    FUZZ,
    LIMIT,
    QUERY_NAMES,
    SIDS,
    body_of,
    build_pairs,
    form_changes,
    public_url,
    query_value,
    route_strategy,
    rule_of,
    send,
    signature,
    twilio_form,
)

# How much to fuzz: sized so that this file runs in well under a minute on the 2-core CI machine.
TAMPERED_EXAMPLES = 300

TAMPERINGS = (
    "none",
    "empty",
    "garbage",
    "wrong_token",
    "http_url",
    "other_host",
    "no_query",
    "other_query",
    "other_path",
    "value_changed",
    "param_added",
    "param_removed",
    "sha256",
    "case_changed",
    "truncated",
)


def tampered_signature(
    how: str, path: str, query: str, pairs: list[tuple[str, str]], extra: str
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Headers (and possibly changed pairs) for a request Twilio did not sign as sent."""
    good = signature(path, query, pairs)
    if how == "none":
        return {}, pairs
    if how == "empty":
        return {"X-Twilio-Signature": ""}, pairs
    if how == "garbage":
        return {"X-Twilio-Signature": base64.b64encode(extra.encode()[:20].ljust(20, b"x")).decode()}, pairs
    if how == "wrong_token":
        return {"X-Twilio-Signature": sign(public_url(path, query), MultiDict(pairs), token=AUTH_TOKEN + "x")}, pairs
    if how == "http_url":
        return {
            "X-Twilio-Signature": sign(public_url(path, query).replace("https://", "http://"), MultiDict(pairs))
        }, pairs
    if how == "other_host":
        return {
            "X-Twilio-Signature": sign(public_url(path, query).replace("hotline.test", "evil.test"), MultiDict(pairs))
        }, pairs
    if how == "no_query":
        return {"X-Twilio-Signature": signature(path, "", pairs) if query else signature(path, "s=0", pairs)}, pairs
    if how == "other_query":
        return {"X-Twilio-Signature": signature(path, query + "&x=1" if query else "x=1", pairs)}, pairs
    if how == "other_path":
        return {
            "X-Twilio-Signature": signature(
                "/voice/status" if path != "/voice/status" else "/voice/incoming", query, pairs
            )
        }, pairs
    if how == "value_changed":
        k, v = pairs[0]
        return {"X-Twilio-Signature": good}, [(k, v + (extra or "1")), *pairs[1:]]
    if how == "param_added":
        return {"X-Twilio-Signature": good}, [*pairs, ("Digits", extra or "1")]
    if how == "param_removed":
        return {"X-Twilio-Signature": good}, pairs[1:]
    if how == "sha256":
        s = public_url(path, query) + "".join(k + v for k in sorted(set(k for k, _ in pairs))
                                              for v in sorted(set(v for kk, v in pairs if kk == k)))
        mac = hmac.new(AUTH_TOKEN.encode(), s.encode(), hashlib.sha256).digest()
        return {"X-Twilio-Signature": base64.b64encode(mac).decode()}, pairs
    if how == "case_changed":
        return {"X-Twilio-Signature": good}, [(pairs[0][0].lower(), pairs[0][1]), *pairs[1:]]
    if how == "truncated":
        return {"X-Twilio-Signature": good[:-2]}, pairs
    raise AssertionError(how)


def test_unsigned_or_tampered_requests_are_refused_and_change_nothing(app: Any, client: Any, services: Any, db: Any,
                                                                      members: Any, trouble: Trouble,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    seeded = seed(services, db)
    # Some state for a forged request to disturb: a caller waiting in the queue.
    sid = SIDS[0]
    form = twilio_form(sid)
    first = client.post(
        "/voice/incoming",
        data=form,
        headers={"X-Twilio-Signature": signature("/voice/incoming", "", list(form.items()))},
    )
    assert first.status_code == 200
    queue = client.post(
        "/voice/queue", data=form, headers={"X-Twilio-Signature": signature("/voice/queue", "", list(form.items()))}
    )
    assert queue.status_code == 200 and "<Enqueue" in queue.get_data(as_text=True)
    before = snapshot(services)
    figures = Figures()
    route = route_strategy(app, node_names_of(services))
    query = st.lists(
        st.sampled_from(QUERY_NAMES).flatmap(lambda n: st.tuples(st.just(n), query_value(n, seeded.ticket_ids))),
        max_size=2,
    )

    @settings(FUZZ, max_examples=TAMPERED_EXAMPLES)
    @given(route, query, st.sampled_from(SIDS), form_changes(), st.sampled_from(TAMPERINGS), st.text(max_size=12))
    def run(path: str, q: list[tuple[str, str]], call_sid: str, changes: dict[str, Any], how: str, extra: str) -> None:
        qs = urlencode(q)
        pairs = build_pairs(call_sid, changes)
        if not pairs:
            pairs = [("CallSid", call_sid)]
        headers, pairs = tampered_signature(how, path, qs, pairs, extra)
        # a tampering that happens to change nothing Twilio signs (a duplicate removed, say) is no tampering
        assume(headers.get("X-Twilio-Signature") != signature(path, qs, pairs))
        sent = send(client, "POST", path, qs, pairs, headers)
        figures.requests += 1
        figures.statuses[sent.status] += 1
        figures.routes[rule_of(app, path)] += 1
        size = len(body_of(pairs).encode())
        expected = 413 if size > LIMIT else 403
        assert sent.status == expected, (
            f"a request not signed by Twilio ({how}) was not refused with {expected}:\n{sent.describe()}"
        )
        assert "Traceback" not in sent.body
        assert not trouble.take(), f"a refused request logged an error:\n{sent.describe()}"
        after = snapshot(services)
        assert after == before, (f"a refused request ({how}) changed the stores: {changed_keys(before, after)}\n"
                                 f"{sent.describe()}")

    run()
    with capsys.disabled():
        print(figures.line("unsigned/tampered /voice/* requests"))
    assert figures.statuses[403] >= figures.requests // 2, figures.statuses
