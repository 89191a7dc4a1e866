"""Property-based fuzzing of every /voice/* webhook (hypothesis).

Routes come from the app's url_map, so a new webhook is fuzzed without touching this file; `<step>`
takes the flow's real step names (and the menu's node names), and the query parameters are the ones
the webhook code reads (`request.args.get("…")` in webhooks/*.py).

- Signed requests (they reach the handlers): weird, huge, unicode, control-character and NUL values,
  missing fields, wrong types, duplicated keys; whole call sequences that follow the TwiML like Twilio.
  Property: 200 with schema-valid TwiML, or a 4xx — never a 5xx, never a traceback, and never an
  exception swallowed into the spoken apology (the stores are up: an apology here is a bug). After
  every request the live queue in Redis agrees with itself, with the agents' presence and with SQL.
- Unsigned or tampered requests: always 403 (413 when over the size limit), and the stores are
  exactly as they were.

Reproducible: derandomized hypothesis, no example database; the figures are printed at the end.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from callqueue.agents.accounts import add_agent
from callqueue.callbacks import attempts, tickets
from callqueue.live import calls, presence
from callqueue.live.presence import PresenceError
from callqueue.records import CallRecord
from core import keys
from hotline.models import Base
from ivr import replies
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, sign
from tests.test_ivr_calls import PREMIUM_PHONE, PREMIUM_PIN, STANDARD_PHONE, STANDARD_PIN, UNKNOWN_PHONE, members  # noqa: F401
from webhooks.outbound.dispatcher import connect_url

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 256 * 1024  # the app's MAX_CONTENT_LENGTH
AGENT = "fuzzann"

# How much to fuzz: sized so that this file runs in about a minute on the 2-core CI machine.
SIGNED_EXAMPLES = 400
TAMPERED_EXAMPLES = 300
MAX_STEPS = 10

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
    except Exception:  # noqa: BLE001 - 404/405: no rule
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


# --- the stores ----------------------------------------------------------------------------------

@dataclass
class Seeded:
    sql: dict[str, list[dict[str, Any]]]
    redis: list[tuple[bytes, int, bytes]]
    ticket_ids: tuple[int, ...]


def seed(services: Any, db: Any) -> Seeded:
    """Members (fixture), an available agent, and callback tickets being dialled; remembered for `restore`."""
    now = datetime.now(UTC)
    add_agent(
        db, login=AGENT, name="Fuzz", password="fuzz-pass-1", role="agent", client_identity=AGENT, phone=None, now=now
    )
    ids = []
    for i, phone in enumerate(("+8613800000051", "+8613800000052")):
        t = tickets.create(db, phone=phone, tier="premium", lang="zh", reason="after_hours", score=float(i),
                           due=now - timedelta(minutes=1), now=now - timedelta(hours=1), max_attempts=3).ticket
        claimed = attempts.claim(db, t.id, now)
        assert claimed is not None
        attempts.placed(db, t.id, claimed.n, SIDS[i + 1])
        ids.append(t.id)
    db.commit()
    presence.set_state(services.redis, AGENT, "available", now, endpoint="client:" + AGENT)
    with services.engine.connect() as conn:
        sql = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in Base.metadata.sorted_tables}
    r = services.redis
    snap = [(k, max(r.pttl(k), 0), r.dump(k)) for k in sorted(r.keys("*"))]
    return Seeded(sql, snap, tuple(ids))


def restore(services: Any, seeded: Seeded) -> None:
    """Back to the seeded state (every example starts from the same stores, so failures replay)."""
    r = services.redis
    r.flushdb()
    for k, ttl, dumped in seeded.redis:
        r.restore(k, ttl, dumped, replace=True)
    with services.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        for table in Base.metadata.sorted_tables:
            if seeded.sql[table.name]:
                conn.execute(table.insert(), seeded.sql[table.name])


def snapshot(services: Any) -> tuple[Any, Any]:
    """Everything in both stores, to compare before and after a refused request."""
    r = services.redis
    red = {k: (r.type(k), r.dump(k)) for k in sorted(r.keys("*"))}
    with services.engine.connect() as conn:
        sql = {t.name: sorted(map(repr, conn.execute(select(t)).all())) for t in Base.metadata.sorted_tables}
    return red, sql


def changed_keys(before: tuple[Any, Any], after: tuple[Any, Any]) -> dict[str, list[str]]:
    """Which Redis keys and SQL tables differ between two snapshots (for a readable failure)."""
    (rb, sb), (ra, sa) = before, after
    return {"redis": sorted(str(k) for k in set(rb) | set(ra) if rb.get(k) != ra.get(k)),
            "sql": sorted(t for t in set(sb) | set(sa) if sb.get(t) != sa.get(t))}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else v


def queue_problems(services: Any) -> list[str]:
    """Where the live queue disagrees with itself, with the agents, or with SQL (empty: consistent)."""
    r = services.redis
    problems: list[str] = []
    order = {_text(s) for s in r.zrange(keys.ORDER, 0, -1)}
    offers = {_text(s) for s in r.zrange(keys.OFFERS, 0, -1)}
    tier_sets = {_text(k).removeprefix(keys.tier_waiting("")): {_text(s) for s in r.zrange(k, 0, -1)}
                 for k in r.keys(keys.tier_waiting("*"))}
    hashes = {_text(k).removeprefix(keys.call("")): {_text(a): _text(b) for a, b in r.hgetall(k).items()}
              for k in r.scan_iter(keys.call("*"))}
    state = {sid: h.get("state") for sid, h in hashes.items()}
    for sid in order:
        if state.get(sid) != "waiting":
            problems.append(f"{sid} is in the order but its call is {state.get(sid)!r}")
    for sid in offers:
        if state.get(sid) != "offered":
            problems.append(f"{sid} is among the offers but its call is {state.get(sid)!r}")
    for tier, members_ in tier_sets.items():
        for sid in members_:
            if state.get(sid) not in ("waiting", "offered"):
                problems.append(f"{sid} is in tier set {tier!r} but its call is {state.get(sid)!r}")
            elif hashes[sid].get("tier") != tier:
                problems.append(f"{sid} is in tier set {tier!r} but its call's tier is {hashes[sid].get('tier')!r}")
    open_sids = []
    for sid, h in hashes.items():
        st_ = h.get("state")
        if st_ == "waiting" and (sid not in order or sid not in tier_sets.get(h.get("tier", ""), set())):
            problems.append(f"{sid} is waiting but not in the order and its tier set: {h}")
        if st_ == "offered" and (sid not in offers or sid not in tier_sets.get(h.get("tier", ""), set())):
            problems.append(f"{sid} is offered but not among the offers and its tier set: {h}")
        if st_ in ("offered", "connected"):
            agent = r.hgetall(keys.agent(h.get("agent", "")))
            a = {_text(x): _text(y) for x, y in agent.items()}
            if a.get("state") != "on_call" or a.get("call") != sid:
                problems.append(f"{sid} is {st_} with agent {h.get('agent')!r}, whose presence is {a}")
        if st_ in ("waiting", "offered"):
            open_sids.append(sid)
    for k in r.scan_iter(keys.agent("*")):
        a = {_text(x): _text(y) for x, y in r.hgetall(k).items()}
        login = _text(k).removeprefix(keys.agent(""))
        if a.get("state") == "on_call":
            h = hashes.get(a.get("call", ""), {})
            if h.get("state") not in ("offered", "connected") or h.get("agent") != login:
                problems.append(f"agent {login} is on a call with {a.get('call')!r}, whose call is {h or None}")
    if open_sids:
        with services.engine.connect() as conn:
            rows = {
                row.call_sid: row for row in conn.execute(select(CallRecord).where(CallRecord.call_sid.in_(open_sids)))
            }
        for sid in open_sids:
            rec = rows.get(sid)
            if rec is None:
                problems.append(f"{sid} is {state[sid]} in Redis but has no call record")
            elif rec.left_queue is not None or rec.ended is not None:
                problems.append(
                    f"{sid} is {state[sid]} in Redis but its record says it left ({rec.left_queue}) / ended ({rec.ended})"
                )
    return problems


# --- log capture ---------------------------------------------------------------------------------

class Trouble(logging.Handler):
    """Errors, and degraded answers, logged by the hotline while the stores are up: each one is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.getMessage() in ("store down", "degraded answer failed"):
            self.records.append(record)

    def take(self) -> list[str]:
        out = []
        for rec in self.records:
            tb = self.format(rec) if rec.exc_info else rec.getMessage()
            out.append(f"[{rec.name}] {tb} {getattr(rec, 'fields', '')}")
        self.records.clear()
        return out


@pytest.fixture
def trouble() -> Iterator[Trouble]:
    handler = Trouble()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("hotline")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


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


# --- the properties ------------------------------------------------------------------------------

@dataclass
class Figures:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    routes: Counter = field(default_factory=Counter)
    verbs: Counter = field(default_factory=Counter)
    t0: float = field(default_factory=time.perf_counter)

    def line(self, what: str) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (f"\n[fuzz] {what}: {self.requests} requests in {time.perf_counter() - self.t0:.1f} s over "
                f"{len(self.routes)} routes; status codes {{{codes}}}"
                + (f"; TwiML verbs answered {dict(sorted(self.verbs.items()))}" if self.verbs else ""))


def short(value: Any) -> str:
    """A repr with long strings cut (some values are 300 000 characters)."""
    return re.sub(r"'([^']{120})[^']{40,}'", lambda m: f"'{m.group(1)}…'", repr(value))


def check_answer(sent: Sent, twiml_check: Callable[[str], None]) -> None:
    """200 with schema-valid TwiML, or a 4xx; never a 5xx or a traceback."""
    assert sent.status < 500, f"a 5xx:\n{sent.describe()}"
    assert "Traceback" not in sent.body, f"a traceback in the body:\n{sent.describe()}"
    if sent.status == 200:
        assert sent.mimetype == "application/xml", f"a 200 that is not TwiML:\n{sent.describe()}"
        try:
            ET.fromstring(sent.body)
            twiml_check(sent.body)
        except Exception as exc:  # noqa: BLE001 - the failure is reported with the request that caused it
            raise AssertionError(f"TwiML that Twilio would refuse ({exc}):\n{sent.describe()}") from None
    else:
        assert 400 <= sent.status < 500, f"neither 200 nor 4xx:\n{sent.describe()}"


def node_names_of(services: Any) -> tuple[str, ...]:
    return tuple(sorted(services.config["menu"]["nodes"]))


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
        if kind == "dispatch":  # the worker pairs the best caller with the longest-idle agent and moves the caller
            with services.unit_of_work() as session:
                offer = calls.dispatch(session, services.redis, services.clock())
            if offer is not None:  # the REST redirect: Twilio requests the connect URL for that caller
                pending[offer.call_sid] = connect_url(services, offer)
        else:
            try:
                presence.set_state(services.redis, AGENT, "available", services.clock(), endpoint="client:" + AGENT)
            except PresenceError:
                pass  # on a call: the call's own events move the agent

    def journey(sid: str, caller: str, moves: list[str | None]) -> None:
        """A call as Twilio runs it: answer each <Gather> with the next keys, follow <Redirect>, hold, ring the agent."""
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


# --- found by the fuzzer, kept as plain cases ----------------------------------------------------

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
