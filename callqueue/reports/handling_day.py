"""How a day's connected calls were handled, for the history page and the CSV: holds, transfers (who passed the
call to whom, how, how it ended) and wrap-ups that ran out with no disposition."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callqueue.handling import CallTransfer
from callqueue.records import CallRecord


def transfer_logs(session: Session, lo: datetime, hi: datetime) -> dict[str, str]:
    """Each call's transfers started in [lo, hi), as `from>to:mode:result` in order, space-separated, by CallSid."""
    T = CallTransfer
    rows = session.execute(select(T.call_sid, T.from_agent, T.to_target, T.mode, T.result)
                           .where(T.started >= lo, T.started < hi).order_by(T.call_sid, T.n))
    out: dict[str, list[str]] = defaultdict(list)
    for sid, source, target, mode, result in rows:
        out[sid].append(f"{source}>{target}:{mode}:{result or 'under_way'}")
    return {sid: " ".join(moves) for sid, moves in out.items()}


def day_handling(session: Session, lo: datetime, hi: datetime) -> dict[str, Any]:
    """The calls answered in [lo, hi): how many were put on hold and for how long in all, how many were passed on
    (and in how many transfers, by mode and result), and how many wrap-ups expired. 2 queries."""
    R, T = CallRecord, CallTransfer
    held, holds, hold_s, passed, expired = session.execute(
        select(func.count().filter(R.hold_count > 0), func.coalesce(func.sum(R.hold_count), 0),
               func.coalesce(func.sum(R.hold_s), 0.0), func.count().filter(R.transfers > 0),
               func.count().filter(R.wrap_up_expired.is_(True)))
        .where(R.answered >= lo, R.answered < hi)).one()
    by_kind = {f"{mode}:{result or 'under_way'}": n for mode, result, n in session.execute(
        select(T.mode, T.result, func.count()).where(T.started >= lo, T.started < hi).group_by(T.mode, T.result))}
    return {"calls_held": held, "holds": int(holds), "hold_s": round(float(hold_s), 1), "calls_transferred": passed,
            "transfers": sum(by_kind.values()), "transfers_by_kind": by_kind, "wrap_ups_expired": expired}
