"""Found by the webhook fuzzer, kept as plain cases: values longer than their columns, or holding NUL, in a signed
request are answered without an error."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.fuzz_stores import Trouble, check_answer, queue_problems
from tests.support.fuzz_voice import AGENT, SIDS, send, signature, twilio_form

LONG_SID = "CA" + "9" * 63  # one over the call_records.call_sid column (String(64))
NUL_SID = "CA" + "1" * 16 + "\x00" + "1" * 15


@pytest.mark.parametrize(
    "path, fields",
    [
        ("/voice/incoming", {"CallSid": LONG_SID}),
        ("/voice/queue", {"CallSid": LONG_SID}),
        ("/voice/status", {"CallSid": LONG_SID, "CallStatus": "completed"}),
        ("/voice/incoming", {"CallSid": NUL_SID}),
        ("/voice/queue-result", {"QueueResult": "hangup" + "x" * 40}),
        ("/voice/queue-result", {"QueueResult": "hangup\x00"}),
        ("/voice/dial-result?agent=" + AGENT, {"DialCallStatus": "no-answer" + "x" * 30}),
    ],
    ids=[
        "incoming-long-sid",
        "queue-long-sid",
        "status-long-sid",
        "incoming-nul-sid",
        "queue-result-long",
        "queue-result-nul",
        "dial-result-long",
    ],
)
def test_values_longer_than_their_columns_or_with_nul_are_answered_without_an_error(
        client: Any, services: Any, db: Any, members: Any, twiml_check: Callable[[str], None], trouble: Trouble,
        path: str, fields: dict[str, str]) -> None:
    """Twilio sends none of these, but a signed request must never crash a handler (PostgreSQL enforces the lengths
    and refuses NUL in text; SQLite does neither, so on SQLite these pass either way)."""
    sid = fields.get("CallSid", SIDS[0])
    for before in ("/voice/incoming", "/voice/queue"):  # the caller is known and waiting
        form = twilio_form(SIDS[0])
        resp = client.post(before, data=form, headers={"X-Twilio-Signature": signature(before, "", list(form.items()))})
        assert resp.status_code == 200
    trouble.take()
    parts = urlsplit(path)
    pairs = list({**twilio_form(sid), **fields}.items())
    sent = send(
        client,
        "POST",
        parts.path,
        parts.query,
        pairs,
        {"X-Twilio-Signature": signature(parts.path, parts.query, pairs)},
    )
    check_answer(sent, twiml_check)
    logged = trouble.take()
    assert not logged, "the webhook failed:\n" + sent.describe() + "\n" + "\n".join(logged)
    assert not queue_problems(services)
