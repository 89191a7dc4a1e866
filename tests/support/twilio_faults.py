"""Shared by the tests of Twilio's retries, duplicates and failures (tests/faults/test_faults_twilio_*.py): fixed
instants and hours, the state a request may change, an agent made available without a dispatch, and a gateway on the
simulator with short timeouts and recorded pauses."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from callqueue.agents.accounts import agent_endpoint
from callqueue.live import presence
from core.redisconn import make_redis
from hotline.models import Base
from tests.support.clocks import RunningClock
from tests.support.common import AUTH_TOKEN, PUBLIC_URL
from tests.support.flow import Flow, in_process_flow
from webhooks.outbound.gateway import RetryPolicy, TwilioGateway

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=SH)  # an ordinary working day
TUESDAY_22 = datetime(2026, 11, 24, 22, 0, tzinfo=SH)  # after 21:00: closed with NINE_TO_NINE
NINE_TO_NINE = "[hours]\nholiday_calendar = \"\"\n[hours.weekly]\n" + "".join(
    f'{day} = ["09:00-21:00"]\n' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))


def snapshot(services: Any) -> dict[str, Any]:
    """Every Redis key's value (not its TTL) and every row of every SQL table."""
    r = make_redis(services.redis_url, decode=False)  # rq's job hashes are binary
    out: dict[str, Any] = {}
    readers: dict[str, Callable[[bytes], Any]] = {
        "string": r.get,
        "hash": r.hgetall,
        "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
        "set": lambda k: sorted(r.smembers(k)),
        "list": lambda k: r.lrange(k, 0, -1),
    }
    try:
        for k in sorted(r.keys("*")):
            kind = r.type(k).decode()
            read = readers.get(kind)
            out["redis " + k.decode()] = read(k) if read is not None else kind
    finally:
        r.close()
    with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(table.select().order_by(*table.primary_key.columns))
            out["sql " + table.name] = [tuple(row) for row in rows]
    return out


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def available(services: Any, login: str, now: datetime) -> None:
    """An agent available in Redis without asking for a dispatch (the test dispatches)."""
    with services.sessions() as db:
        endpoint = agent_endpoint(db, login)
    presence.set_state(services.redis, login, "available", now, endpoint=endpoint)


FAST = {  # the shipped kinds, with short pauses (the pauses are recorded, not slept, unless a test says so)
    "move": RetryPolicy(attempts=4, base_s=0.1, max_backoff_s=1.0, budget_s=5.0),
    "create": RetryPolicy(attempts=3, base_s=0.1, budget_s=5.0),
    "sms": RetryPolicy(attempts=2, base_s=0.1, budget_s=3.0, retry_after_cap_s=1.0),
}
TIMEOUT_S = 0.3  # the gateway's request timeout in these tests; a fault's delay of 1 s is a timeout


def fast_gateway(sim: Any, pauses: list[float] | None = None, api_url: str | None = None, **kw: Any) -> TwilioGateway:
    """A gateway on the simulator whose backoff pauses are recorded in `pauses` instead of slept (when given)."""
    extra: dict[str, Any] = {"sleep": pauses.append, "rand": lambda: 0.5} if pauses is not None else {}
    return TwilioGateway(
        sim.account_sid,
        AUTH_TOKEN,
        api_url or sim.api_url,
        from_number=sim.number,
        timeout_s=kw.pop("timeout_s", TIMEOUT_S),
        policies={**FAST, **kw.pop("policies", {})},
        **extra,
        **kw,
    )


def moves_to(handle: Any, path: str) -> int:
    """How many times the call requested `path` (after its end)."""
    return sum(1 for r in handle.result.requests if r.url.removeprefix(PUBLIC_URL).split("?")[0] == path)


def rest(sim: Any, method: str, piece: str) -> int:
    return len(sim.rest_requests(method, piece))


def flow_gateway(flow: Flow, **policies: RetryPolicy) -> None:
    """The in-process app's gateway: short timeout, short real pauses."""
    flow.svc.gateway = fast_gateway(flow.sim, policies={**FAST, **policies})


def fixed_flow(services: Any, folder: Path) -> Any:
    """A flow with no rq worker (the test dispatches and dials) on a clock starting at a fixed instant."""
    return in_process_flow(services, folder, workers=0, clock=RunningClock(TUESDAY_10))


MOVE = "/Calls/CA"  # Calls/{CallSid}.json: the dispatcher's redirect (not Calls.json, a create)
