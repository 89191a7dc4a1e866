"""History: a day's figures per 15-minute interval (adding up to the SQL statistics) and its CSV export.

(A little over 300 lines: the figures and the export read the same seeded day.)
"""
from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callqueue import clock, handling
from callqueue.records import IN_PROGRESS, CallRecord
from callqueue.reports import history, stats
from callqueue.settings import QueueSettings

DAY = date(2026, 3, 10)
SH = ZoneInfo("Asia/Shanghai")
LO = datetime(2026, 3, 10, tzinfo=SH).astimezone(UTC)  # local midnight starting DAY
HI = LO + timedelta(days=1)
END_OF_DAY = HI - timedelta(milliseconds=1)  # the day's last millisecond: stats' window is inclusive


def L(h: int, m: int = 0, s: int = 0, ms: int = 0, days: int = 0) -> datetime:
    """An instant given as Shanghai wall-clock time on DAY (+ `days`); Shanghai has no DST."""
    return LO + timedelta(days=days, hours=h, minutes=m, seconds=s, milliseconds=ms)


def add(db: Any, sid: str, **fields: Any) -> None:
    fields.setdefault("outcome", "answered" if fields.get("answered") else IN_PROGRESS)
    fields.setdefault("verified", False)
    db.add(CallRecord(call_sid=sid, offers=0, **fields))
    db.commit()


def at(result: dict[str, Any], hhmm: str) -> dict[str, Any]:
    """The interval of `result` starting at local `hhmm` on DAY."""
    wanted = f"{DAY.isoformat()}T{hhmm}:00+08:00"
    (found,) = [iv for iv in result["intervals"] if iv["start"] == wanted]
    return found


def nonzero(counters: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out = {t: {k: v for k, v in c.items() if v} for t, c in counters.items()}
    return {t: c for t, c in out.items() if c}


def test_a_day_has_96_quarter_hours_and_boundaries_are_half_open(db, qs):
    add(db, "CAa", tier="standard", queued=L(10, 14, 59, 999))
    add(db, "CAb", tier="standard", queued=L(10, 15))
    add(db, "CAc", tier="premium", queued=L(10, 14), answered=L(10, 15))  # answered on the boundary
    res = history.intervals(db, DAY, qs)
    assert (res["date"], res["timezone"], res["interval_minutes"]) == ("2026-03-10", "Asia/Shanghai", 15)
    assert res["tiers"] == qs.tiers == ["annual_premium", "premium", "standard", "guest"]
    assert len(res["intervals"]) == 96
    assert res["intervals"][0]["start"] == "2026-03-10T00:00:00+08:00"
    assert res["intervals"][-1]["start"] == "2026-03-10T23:45:00+08:00"
    first, second = at(res, "10:00"), at(res, "10:15")
    assert first["tiers"]["standard"]["offered"] == second["tiers"]["standard"]["offered"] == 1
    assert (first["tiers"]["premium"]["answered"], second["tiers"]["premium"]["answered"]) == (0, 1)
    assert second["overall"]["offered"] == 1 and res["day"]["overall"]["answered"] == 1
    # Waiting at 10:14:59.999 (the interval's last millisecond): only CAa, queued that very instant.
    assert (first["tiers"]["standard"]["waiting"], first["tiers"]["standard"]["longest_wait_s"]) == (1, 0.0)
    assert (first["overall"]["waiting"], first["overall"]["longest_wait_s"]) == (2, 59.999)  # CAc too
    assert (second["overall"]["waiting"], second["overall"]["longest_wait_s"]) == (2, 900.0)
    assert at(res, "09:45")["overall"]["waiting"] == 0
    assert res["day"]["overall"]["offered"] == 3 and res["day"]["overall"]["waiting"] == 2


def test_answered_in_a_later_interval_than_queued(db, qs):
    add(db, "CAp", tier="premium", queued=L(10, 5), answered=L(10, 40), ended=L(10, 50))  # SL 20 s
    add(db, "CAq", tier="annual_premium", queued=L(10, 31), answered=L(10, 31, 10))  # SL 15 s
    res = history.intervals(db, DAY, qs)
    q1, q2, q3, q4 = (at(res, h) for h in ("10:00", "10:15", "10:30", "10:45"))
    assert (q1["tiers"]["premium"]["offered"], q1["tiers"]["premium"]["answered"]) == (1, 0)
    assert (q1["overall"]["waiting"], q1["overall"]["longest_wait_s"]) == (1, 599.999)
    assert (q2["overall"]["offered"], q2["overall"]["waiting"], q2["overall"]["longest_wait_s"]) == (0, 1, 1499.999)
    premium = q3["tiers"]["premium"]
    assert (premium["offered"], premium["answered"], premium["asa_s"], premium["service_level"]) == (0, 1, 2100.0, 0.0)
    annual = q3["tiers"]["annual_premium"]
    assert (annual["offered"], annual["answered"], annual["asa_s"], annual["service_level"]) == (1, 1, 10.0, 1.0)
    assert (q3["overall"]["answered"], q3["overall"]["asa_s"], q3["overall"]["service_level"]) == (2, 1055.0, 0.5)
    assert q3["overall"]["waiting"] == 0
    assert (q4["overall"]["answered"], q4["overall"]["service_level"], q4["overall"]["asa_s"]) == (0, None, None)


def test_leaving_the_queue_abandoned_short_and_callback(db, qs):
    add(db, "CAlong", tier="standard", queued=L(11), left_queue=L(11, 1, 30), outcome="abandoned")  # after SL 60 s
    add(db, "CAwithin", tier="standard", queued=L(11, 2), left_queue=L(11, 3), outcome="abandoned")  # exactly T
    add(db, "CAshort", tier="standard", queued=L(11, 3), left_queue=L(11, 3, 3), outcome="short_abandoned")
    add(db, "CAcb", tier="standard", queued=L(11, 4), left_queue=L(11, 20), outcome="to_callback")
    add(db, "CAans", tier="standard", queued=L(11, 5), answered=L(11, 6))  # exactly T: within
    add(db, "CArem", tier="standard", queued=L(11, 6), left_queue=L(11, 7), outcome="removed")
    res = history.intervals(db, DAY, qs)
    o = at(res, "11:00")["overall"]
    assert (o["offered"], o["answered"], o["abandoned"], o["short_abandoned"], o["to_callback"]) == (6, 1, 2, 1, 0)
    assert o["service_level"] == 0.5  # 1 answered within T ÷ (1 answered + 1 abandoned after T)
    assert o["abandon_rate"] == 0.6667  # short abandons are left out
    assert (o["waiting"], o["longest_wait_s"]) == (1, 659.999)  # only the caller who later took a callback
    later = at(res, "11:15")["overall"]
    assert (later["offered"], later["to_callback"], later["waiting"]) == (0, 1, 0)


def test_waiting_is_computed_from_the_timestamps(db, qs):
    add(db, "CAy", tier="standard", queued=L(23, 55, days=-1), answered=L(0, 20))  # yesterday's caller
    add(db, "CAz", tier="premium", queued=L(23, 50), answered=L(0, 5, days=1))  # answered tomorrow
    add(db, "CAgone", tier="guest", queued=L(5), outcome="removed")  # settled, with no time: like stats, not waiting
    res = history.intervals(db, DAY, qs)
    first, second = at(res, "00:00")["tiers"]["standard"], at(res, "00:15")["tiers"]["standard"]
    assert (first["waiting"], first["longest_wait_s"], first["offered"]) == (1, 1199.999, 0)
    assert (second["waiting"], second["answered"]) == (0, 1)
    last = at(res, "23:45")["tiers"]["premium"]
    assert (last["offered"], last["waiting"], last["longest_wait_s"]) == (1, 1, 599.999)
    assert res["day"]["overall"]["waiting"] == 1 and res["day"]["overall"]["offered"] == 2
    assert at(res, "05:00")["overall"]["waiting"] == 0
    # stats reads "waiting" as of now, so a call answered since is not waiting there: history must not reuse it.
    assert stats.counters_from_records(db, END_OF_DAY, qs)[1] == {}


def test_callers_waiting_through_the_whole_day(db, qs):
    add(db, "CAstale", tier="guest", queued=L(12, days=-2))  # still in progress (a lost status callback)
    add(db, "CAlong", tier=None, queued=L(23, 30, days=-1), left_queue=HI, outcome="abandoned")
    res = history.intervals(db, DAY, qs)
    assert all(iv["tiers"]["guest"]["waiting"] == 2 for iv in res["intervals"])
    assert at(res, "00:00")["tiers"]["guest"]["longest_wait_s"] == 130499.999  # 36 h 14 min 59.999 s
    assert res["day"]["overall"]["abandoned"] == 0 and res["day"]["overall"]["offered"] == 0


def random_day(db: Any, qs: QueueSettings, seed: int = 20260310) -> list[CallRecord]:
    """~300 calls around DAY: some joined before it, some on interval boundaries; all settled by its end."""
    rnd = random.Random(seed)
    lo, hi = clock.to_ms(LO), clock.to_ms(HI)
    tiers = [*qs.tiers, None, "legacy_vip"]
    rows = []
    for n in range(300):
        if rnd.random() < 0.2:  # exactly on a boundary, or its last millisecond
            q = lo + rnd.randrange(96) * 900_000 - rnd.choice((0, 1))
        else:
            q = rnd.randrange(lo - 2 * 3600_000, hi - 1)
        wait = rnd.choice((rnd.randrange(0, 5000), rnd.randrange(0, 90_000), rnd.randrange(0, 1_800_000)))
        stop = q + wait
        outcome = rnd.choices(["answered", "abandoned", "short_abandoned", "to_callback", IN_PROGRESS],
                              [50, 20, 8, 7, 15])[0]
        if stop >= hi:  # settled after the day: stats' "now" view could not agree on waiting
            outcome = IN_PROGRESS
        rec = CallRecord(call_sid=f"CA{n:04d}", tier=rnd.choice(tiers), queued=clock.from_ms(q), outcome=outcome,
                         verified=False, offers=0)
        if outcome == "answered":
            rec.answered = clock.from_ms(stop)
        elif outcome != IN_PROGRESS:
            rec.left_queue = clock.from_ms(stop)
        rows.append(rec)
    db.add_all(rows)
    db.commit()
    return rows


def test_intervals_add_up_to_the_sql_statistics(db, qs):
    records = random_day(db, qs)
    counted = history.count_day(db, DAY, qs)
    summed: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for per_tier in counted.counters:
        for tier, c in per_tier.items():
            for k, v in c.items():
                summed[tier][k] += v
    expected, _ = stats.counters_from_records(db, END_OF_DAY, qs, "today")
    assert nonzero(summed) == nonzero(expected)
    assert sum(c.get("offered", 0) for c in nonzero(summed).values()) > 150  # the set is realistic, not empty
    # The published day figures, waiting included, are the SQL statistics of the day's last millisecond.
    res = history.intervals(db, DAY, qs)
    sql = stats.from_records(db, END_OF_DAY, qs, "today")
    assert "legacy_vip" in res["tiers"] and res["day"]["tiers"] == sql["tiers"]
    assert res["day"]["overall"] == sql["overall"]
    for figure in ("offered", "answered", "abandoned", "short_abandoned", "to_callback"):
        assert sum(iv["overall"][figure] for iv in res["intervals"]) == sql["overall"][figure]
    # Waiting is conserved: each interval's waiting = the one before + offered − every way out.
    before = history.intervals(db, DAY - timedelta(days=1), qs)["intervals"][-1]["overall"]["waiting"]
    assert before > 0
    for iv in res["intervals"]:
        o = iv["overall"]
        assert (
            o["waiting"]
            == before + o["offered"] - o["answered"] - o["abandoned"] - o["short_abandoned"] - o["to_callback"]
        )
        before = o["waiting"]
    # The per-record rule alone agrees with stats on another window too (stats' end is inclusive).
    now = L(14, 7, 33, 250)
    start = clock.window_start_ms(clock.to_ms(now), "15m", SH)
    alone: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        q, a, lq = (None if t is None else clock.to_ms(t) for t in (r.queued, r.answered, r.left_queue))
        tier = r.tier or "guest"
        for k, v in history.record_counts(
            q, a, lq, r.outcome, qs.service_level_ms(tier), start, clock.to_ms(now) + 1
        ).items():
            alone[tier][k] += v
    assert nonzero(alone) == nonzero(stats.counters_from_records(db, now, qs, "15m")[0])


def berlin() -> QueueSettings:
    return QueueSettings(boost_s={"standard": 0}, max_wait_s={"standard": 900},
                         service_level_s={"standard": 60}, timezone="Europe/Berlin")


@pytest.mark.parametrize("day, count", [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (DAY, 96)])
def test_a_dst_day_has_92_or_100_intervals(db, qs, day, count):
    res = history.intervals(db, day, berlin())
    starts = [iv["start"] for iv in res["intervals"]]
    assert len(starts) == count and len(set(starts)) == count
    assert all(datetime.fromisoformat(s).minute % 15 == 0 for s in starts)
    assert starts[0].startswith(f"{day.isoformat()}T00:00:00+0")
    assert len(history.intervals(db, day, qs)["intervals"]) == 96  # Shanghai keeps no DST


def test_the_repeated_hour_of_autumn_is_told_apart(db):
    s = berlin()
    add(db, "CAfirst", tier="standard", queued=datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30+02:00
    add(db, "CAsecond", tier="standard", queued=datetime(2026, 10, 25, 1, 40, tzinfo=UTC))  # 02:40+01:00
    res = history.intervals(db, date(2026, 10, 25), s)
    offered = {iv["start"]: iv["overall"]["offered"] for iv in res["intervals"] if iv["overall"]["offered"]}
    assert offered == {"2026-10-25T02:30:00+02:00": 1, "2026-10-25T02:30:00+01:00": 1}
    starts = [iv["start"] for iv in history.intervals(db, date(2026, 3, 29), s)["intervals"]]
    assert starts[7:9] == ["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00"]


def test_today_ends_at_the_current_interval(db, qs):
    add(db, "CAold", tier="standard", queued=L(9), answered=L(9, 1))
    add(db, "CAnow", tier="premium", queued=L(10, 10))
    res = history.intervals(db, DAY, qs, now=L(10, 20))
    assert len(res["intervals"]) == 42 and res["intervals"][-1]["start"] == "2026-03-10T10:15:00+08:00"
    current = res["intervals"][-1]["overall"]
    assert (current["waiting"], current["longest_wait_s"]) == (1, 600.0)  # as of now, not of 10:29:59.999
    live_sql = stats.from_records(db, L(10, 20), qs, "today")
    assert res["day"]["overall"] == live_sql["overall"] and res["day"]["tiers"] == live_sql["tiers"]
    on_boundary = history.intervals(db, DAY, qs, now=L(10, 15))
    assert len(on_boundary["intervals"]) == 42 and on_boundary["intervals"][-1]["overall"]["longest_wait_s"] == 300.0
    future = history.intervals(db, DAY, qs, now=L(23, 0, days=-1))
    assert future["intervals"] == [] and future["day"]["overall"]["offered"] == 0


def test_export_rows_one_per_call_of_the_day(db, qs):
    add(db, "CAprev", tier="standard", arrived=L(23, 59, 59, 999, days=-1), queued=L(0, 0, 30))
    add(db, "CAa", arrived=L(9), queued=L(9, 0, 5, 250), offered=L(9, 0, 30), answered=L(9, 0, 40),
        ended=L(9, 5, 40, 500), tier="premium", category="billing", verified=True, from_number="+8613800000001",
        member_uid="M001", agent_login="alice", waited_s=34.75, queue_result="redirected",
        dial_status="completed", disposition="resolved", notes='=HYPERLINK("http://x","click")',
        agents="bob,alice", hold_count=2, hold_s=12.25, transfers=1)
    handling.transfer_started(db, "CAa", 1, by="bob", to="alice", mode="warm", now=L(9, 2))
    handling.transfer_ended(db, "CAa", result="completed", now=L(9, 2, 30))
    add(db, "CAb", queued=L(8), left_queue=L(8, 0, 3), outcome="short_abandoned", waited_s=3.0,
        from_number="+8613800000002", notes="hello, world\nsecond line")
    add(db, "CAc", arrived=L(9), from_number="+8613800000003", disposition="-1", category="+x",
        notes="@SUM(A1)", member_uid="\tM2", outcome="ivr")
    add(db, "CAd", arrived=L(23, 59, 59, 999), outcome="failed", answered=L(23, 59, 59, 999), agents="carol",
        wrap_up_expired=True)
    add(db, "CAnext", arrived=L(0, days=1), outcome="ivr")
    rows = list(history.export_rows(db, DAY, qs))
    assert rows[0] == ["call_sid", "arrived", "queued", "offered", "answered", "left_queue", "ended", "tier",
                       "category", "verified", "caller", "member_uid", "agent", "outcome", "waited_s", "talk_s",
                       "queue_result", "dial_status", "disposition", "notes", "agents", "hold_count", "hold_s",
                       "transfers", "transfer_log", "wrap_up_expired"]
    assert [r[0] for r in rows[1:]] == ["CAb", "CAa", "CAc", "CAd"]  # by arrived (else queued), then id
    b, a, c, d = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])  # a value for every column
    assert a == {
        "call_sid": "CAa", "arrived": "2026-03-10T09:00:00.000+08:00", "queued": "2026-03-10T09:00:05.250+08:00",
        "offered": "2026-03-10T09:00:30.000+08:00", "answered": "2026-03-10T09:00:40.000+08:00", "left_queue": "",
        "ended": "2026-03-10T09:05:40.500+08:00", "tier": "premium", "category": "billing", "verified": "yes",
        "caller": "'+86138****0001", "member_uid": "M001", "agent": "alice", "outcome": "answered",
        "waited_s": "34.75", "talk_s": "300.5", "queue_result": "redirected", "dial_status": "completed",
        "disposition": "resolved", "notes": "'=HYPERLINK(\"http://x\",\"click\")",
        "agents": "bob,alice", "hold_count": "2", "hold_s": "12.25", "transfers": "1",
        "transfer_log": "bob>alice:warm:completed", "wrap_up_expired": "no",
    }
    assert (d["agents"], d["hold_count"], d["transfers"], d["transfer_log"], d["wrap_up_expired"]) == (
        "carol", "0", "0", "", "yes")
    figures = history.intervals(db, DAY, qs)["handling"]  # the history page's day
    assert figures == {"calls_held": 1, "holds": 2, "hold_s": 12.2, "calls_transferred": 1, "transfers": 1,
                       "transfers_by_kind": {"warm:completed": 1}, "wrap_ups_expired": 1}
    assert (b["arrived"], b["queued"], b["left_queue"], b["waited_s"], b["talk_s"]) == (
        "", "2026-03-10T08:00:00.000+08:00", "2026-03-10T08:00:03.000+08:00", "3", "")
    assert b["notes"] == "hello, world\nsecond line" and b["verified"] == "no" and b["tier"] == ""
    assert (c["disposition"], c["category"], c["notes"], c["member_uid"]) == ("'-1", "'+x", "'@SUM(A1)", "'\tM2")
    assert (d["arrived"], d["caller"], d["outcome"]) == ("2026-03-10T23:59:59.999+08:00", "", "failed")
    assert "13800000001" not in repr(rows)  # no whole number anywhere
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == rows  # quoting keeps commas and newlines in a cell


def test_export_streams_a_big_day_in_order(db, qs):
    db.add_all([CallRecord(call_sid=f"CA{n:05d}", arrived=L(0, 0, 0, (n * 7919) % 86_400_000), outcome="ivr",
                           verified=False, offers=0) for n in range(1203)])
    db.commit()
    rows = history.export_rows(db, DAY, qs)
    assert iter(rows) is rows  # a generator, not a list built up front
    body = list(rows)[1:]
    assert len(body) == 1203
    arrived = [r[1] for r in body]
    assert arrived == sorted(arrived) and len(set(r[0] for r in body)) == 1203


def test_parse_day(qs):
    now = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # already 01:00 on 10 March in Shanghai
    assert history.parse_day("2026-03-01", qs, now) == date(2026, 3, 1)
    assert history.parse_day(None, qs, now) == DAY and history.parse_day("", qs, now) == DAY
    assert history.parse_day("2026-03-11", qs, now) == date(2026, 3, 11)  # a day ahead is allowed
    for bad in (
        "2026-3-10",
        "10/03/2026",
        "20260310",
        "2026-03-10T00:00",
        " 2026-03-10",
        "2026-02-30",
        "２０２６-03-10",
    ):
        with pytest.raises(ValueError, match="date: must be YYYY-MM-DD"):
            history.parse_day(bad, qs, now)
    with pytest.raises(ValueError, match="more than a day in the future"):
        history.parse_day("2026-03-12", qs, now)
