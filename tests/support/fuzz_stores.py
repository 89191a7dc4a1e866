"""The stores around a fuzzed webhook (tests/fuzz/test_fuzz_webhooks_*.py): a seeded state every example starts
from, the checks that the live queue agrees with itself, the agents and SQL, the log records that betray a swallowed
error (fixture `trouble`), and the check of one answer: 200 with schema-valid TwiML or a 4xx, never a 5xx.
"""
from __future__ import annotations

import logging
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from callqueue.agents.accounts import add_agent
from callqueue.callbacks import attempts, tickets
from callqueue.live import presence
from callqueue.records import CallRecord
from core import keys
from hotline.models import Base
from tests.support.fuzz_voice import AGENT, SIDS, Sent


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
                    f"{sid} is {state[sid]} in Redis but its record says it left ({rec.left_queue})"
                    f" / ended ({rec.ended})"
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


# --- figures and answers -------------------------------------------------------------------------

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
        except Exception as exc:  # noqa: BLE001 (the failure is reported with the request that caused it)
            raise AssertionError(f"TwiML that Twilio would refuse ({exc}):\n{sent.describe()}") from None
    else:
        assert 400 <= sent.status < 500, f"neither 200 nor 4xx:\n{sent.describe()}"


def node_names_of(services: Any) -> tuple[str, ...]:
    return tuple(sorted(services.config["menu"]["nodes"]))
