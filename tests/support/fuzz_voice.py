"""What the fuzzing of the /voice/* webhooks sends (tests/fuzz/test_fuzz_webhooks_*.py): hostile values for every form
field and query parameter a webhook reads, any concrete path of every /voice/* rule, and signed requests.

Routes come from the app's url_map, so a new webhook is fuzzed without touching the tests; `<step>` takes the flow's
real step names (and the menu's node names), and the query parameters are the ones the webhook code reads
(`request.args.get("…")` in webhooks/*.py). Reproducible: derandomized hypothesis, no example database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from ivr import replies
from tests.support.common import PUBLIC_URL, ROOT, sign
from tests.support.members import PREMIUM_PHONE, PREMIUM_PIN, STANDARD_PHONE, STANDARD_PIN, UNKNOWN_PHONE

LIMIT = 256 * 1024  # the app's MAX_CONTENT_LENGTH
AGENT = "fuzzann"

# No shrinking: the examples are call sequences against real stores (slow to shrink); every failure message
# already names the exact request, and the whole example is noted.
FUZZ = settings(
    deadline=None, derandomize=True, database=None, phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- what the webhooks read ----------------------------------------------------------------------

SIDS = ("CA" + "f" * 32, "CA" + "e" * 32, "CA" + "d" * 32)
# The call flow's steps (the <step> of /voice/ivr/<step> and /voice/hold/<step>).
STEPS = (
    replies.MENU,
    replies.PIN,
    replies.UID,
    replies.OFFER,
    replies.QUEUE,
    replies.END,
    replies.CLOSED,
    *replies.CALLBACK_STEPS,
)


def query_names() -> tuple[str, ...]:
    """Every query parameter a webhook reads (`request.args.get("name")` anywhere in webhooks/)."""
    found: set[str] = set()
    for path in sorted((ROOT / "webhooks").rglob("*.py")):
        found |= set(re.findall(r"request\.args\.get\(\s*[\"'](\w+)[\"']", path.read_text(encoding="utf-8")))
    return tuple(sorted(found))


QUERY_NAMES = query_names()

WEIRD = (
    "", " ", "abc", "-1", "0", "00", "1e309", "-1e309", "NaN", "nan", "inf", "-inf", "Infinity", "0x1A", "1_000", "3.5",
    "٣", "１２３４", "9" * 40, "+", "#", "*", "**", "\x00", "a\x00b", "\r\n", "\t", "\x1b[31m", "\u202e", "\ufeff",
    "🙂", "中文", "<Say>hi</Say>", "]]>", "&amp;", "&", "%", "%00", "{0}", "{number}", "{{7*7}}", "${7*7}",
    "' OR '1'='1", "null", "None", "true", "[]", "{}", "../../etc/passwd", "\\", "\"",
)
CALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")
QUEUE_RESULTS = ("bridged", "bridging-in-process", "queue-full", "redirected", "redirected-from-bridged", "leave",
                 "hangup", "error", "system-error")
DIAL_STATUSES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
PHONES = (PREMIUM_PHONE, STANDARD_PHONE, UNKNOWN_PHONE, "8613800000001", "+1 (415) 555-0100", "anonymous", "+266696687",
          "client:" + AGENT, "sip:alice@example.com", "+")
NUMERIC = ("CallDuration", "QueueTime", "AvgQueueTime", "QueuePosition", "CurrentQueueSize", "MaxQueueSize",
           "DialCallDuration", "Confidence", "SequenceNumber", "Duration")


def huge() -> st.SearchStrategy[str]:
    """Long values: some far over the request size limit (Twilio never sends those: 413)."""
    return st.builds(lambda ch, n: ch * n, st.sampled_from(["9", "a", "中", "\x00", "🙂", "%", "&"]),
                     st.sampled_from([65, 300, 5000, 70000, 70000, 300000]))


FUZZ_TEXT = st.one_of(
    st.sampled_from(WEIRD),
    st.text(max_size=30),  # any unicode but surrogates (which no HTTP client can send)
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), max_size=8),
    huge(),
)
NUMBERS = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(("1e309", "-1", "-0", "NaN", "1.5e-400", "9" * 400, "0x10", "1,000", " 7 ")),
)


def value_for(name: str) -> st.SearchStrategy[str]:
    """A plausible-but-hostile value for form field `name`."""
    typed: dict[str, st.SearchStrategy[str]] = {
        "CallSid": st.sampled_from(SIDS),
        "ParentCallSid": st.sampled_from(SIDS),
        "DialCallSid": st.sampled_from(SIDS),
        "Digits": st.one_of(
            st.from_regex(r"[0-9*#]{0,10}", fullmatch=True),
            st.sampled_from((PREMIUM_PIN, STANDARD_PIN, "0", "1", "10001")),
        ),
        "SpeechResult": st.sampled_from(("人工", "agent", "一", "one", "English", "账号", "按1", "")),
        "CallStatus": st.sampled_from(CALL_STATUSES),
        "QueueResult": st.sampled_from(QUEUE_RESULTS),
        "DialCallStatus": st.sampled_from(DIAL_STATUSES),
        "From": st.sampled_from(PHONES),
        "To": st.sampled_from(PHONES),
        "Caller": st.sampled_from(PHONES),
        "Called": st.sampled_from(PHONES),
        "QueueSid": st.sampled_from(("QU" + "1" * 32, "QU" + "2" * 32)),
        "Direction": st.sampled_from(("inbound", "outbound-api", "outbound-dial")),
    }
    if name in NUMERIC:
        return st.one_of(NUMBERS, FUZZ_TEXT)
    return st.one_of(typed[name], FUZZ_TEXT) if name in typed else FUZZ_TEXT


FIELDS = ("CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "ApiVersion", "Direction", "Digits",
          "SpeechResult", "QueueResult", "QueueSid", "DialCallStatus", "DialCallSid", "ParentCallSid", *NUMERIC)
FIELD_VALUE = st.sampled_from(FIELDS).flatmap(lambda k: st.tuples(st.just(k), value_for(k)))
JUNK_KEY = st.one_of(st.sampled_from(("", " ", "callsid", "CALLSID", "Digits[]", "a[b]", "\x00", "中", "=", "&")),
                     st.text(max_size=10))


@st.composite
def form_changes(draw: st.DrawFn) -> dict[str, Any]:
    """How one request's form differs from what Twilio sends: fields dropped, replaced, duplicated, added."""
    return {
        "drop": draw(
            st.lists(st.sampled_from(FIELDS[:9]), max_size=2, unique=True)
            if draw(st.integers(0, 4)) == 0
            else st.just([])
        ),
        "set": draw(st.lists(FIELD_VALUE, max_size=3)),
        "dupes": draw(st.lists(FIELD_VALUE, max_size=2) if draw(st.integers(0, 3)) == 0 else st.just([])),
        "junk": draw(
            st.lists(st.tuples(JUNK_KEY, FUZZ_TEXT), max_size=2) if draw(st.integers(0, 4)) == 0 else st.just([])
        ),
    }


def query_value(name: str, ticket_ids: tuple[int, ...]) -> st.SearchStrategy[str]:
    known: dict[str, st.SearchStrategy[str]] = {
        "s": st.integers(0, 6).map(str), "n": st.integers(0, 3).map(str), "agent": st.sampled_from((AGENT, "nobody")),
        "caller": st.sampled_from(SIDS), "ticket": st.sampled_from(ticket_ids or (1,)).map(str),
    }
    return st.one_of(
        known.get(name, st.sampled_from(("0", "1", "zh", "en"))), FUZZ_TEXT.filter(lambda v: len(v) < 3000)
    )


SEGMENT = st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)


# --- requests ------------------------------------------------------------------------------------

@dataclass
class Sent:
    """One request as sent (enough to replay it by hand) and what came back."""

    method: str
    path: str
    query: str
    pairs: list[tuple[str, str]]
    headers: dict[str, str]
    status: int = 0
    body: str = ""
    mimetype: str = ""

    def describe(self) -> str:
        shown = [(k[:80], v[:80] + (f"…(+{len(v) - 80} chars)" if len(v) > 80 else "")) for k, v in self.pairs]
        return (f"{self.method} {self.path}{'?' + self.query if self.query else ''}\n  form pairs: {shown!r}\n"
                f"  headers: {self.headers!r}\n  -> {self.status}: {self.body[:600]}")


def body_of(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)


def twilio_form(sid: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": PREMIUM_PHONE, "To": "+864001234567",
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", "Caller": PREMIUM_PHONE,
            "Called": "+864001234567"}


def build_pairs(sid: str, changes: dict[str, Any]) -> list[tuple[str, str]]:
    form = twilio_form(sid)
    for k in changes["drop"]:
        form.pop(k, None)
    for k, v in changes["set"]:
        form[k] = v
    return [*form.items(), *changes["dupes"], *changes["junk"]]


def public_url(path: str, query: str) -> str:
    return PUBLIC_URL + path + ("?" + query if query else "")


def signature(path: str, query: str, pairs: list[tuple[str, str]]) -> str:
    return sign(public_url(path, query), MultiDict(pairs))


def send(
    client: Any, method: str, path: str, query: str, pairs: list[tuple[str, str]], headers: dict[str, str]
) -> Sent:
    sent = Sent(method, path, query, pairs, headers)
    resp = client.open(path + ("?" + query if query else ""), method=method, data=body_of(pairs),
                       content_type="application/x-www-form-urlencoded", headers=headers)
    sent.status, sent.body, sent.mimetype = resp.status_code, resp.get_data(as_text=True), resp.mimetype
    return sent


def rule_of(app: Any, path: str) -> str:
    """The url_map rule a POST to `path` reaches ("?" when none)."""
    try:
        rule, _ = app.url_map.bind("hotline.test").match(path, method="POST", return_rule=True)
    except Exception:  # noqa: BLE001 (404/405: no rule)
        return "?"
    return str(rule.rule)


def voice_rules(app: Any) -> list[Any]:
    rules = sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/voice/")), key=lambda r: r.rule)
    assert len(rules) >= 15, [r.rule for r in rules]
    return rules


def route_strategy(app: Any, node_names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A concrete path of any /voice/* rule: real step names in <step>, any safe segment elsewhere."""
    names = tuple(dict.fromkeys((*STEPS, *node_names, "offer")))

    def concrete(rule: Any) -> st.SearchStrategy[str]:
        parts = re.split(r"(<[^>]+>)", rule.rule)
        pieces: list[st.SearchStrategy[str]] = []
        for part in parts:
            m = re.fullmatch(r"<(?:(\w+):)?(\w+)>", part)
            if m is None:
                pieces.append(st.just(part))
            elif m.group(1) == "path":
                pieces.append(
                    st.lists(st.one_of(st.sampled_from(names), SEGMENT), min_size=1, max_size=3).map("/".join)
                )
            else:
                pieces.append(st.one_of(st.sampled_from(names), SEGMENT))
        return st.tuples(*pieces).map("".join)

    return st.one_of(*(concrete(r) for r in voice_rules(app)))
