"""People for the flow tests: agents and the supervisor with their passwords, members per tier with one PIN, and
the keys that take a caller of a tier to the agent queue."""
from __future__ import annotations

import base64
import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime

from callqueue.agents.accounts import add_agent
from core.config import Config
from core.passwords import hash_pin
from core.services import Services
from members.importer import PinHasher, import_members, read_csv
from simulator import Script

SUPERVISOR = "sam"
PIN = "2468"


def password(login: str) -> str:
    return f"{login}-pass-1"


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password(login)}".encode()).decode()}


def add_people(services: Services, agents: Sequence[str]) -> None:
    """Agents (Twilio Client identity = login) and the supervisor `sam`, all offline in Redis until they say
    otherwise."""
    now = datetime.now(UTC)
    with services.unit_of_work() as db:
        for login in agents:
            add_agent(db, login=login, name=login.title(), password=password(login), role="agent",
                      client_identity=login, phone=None, now=now)
        add_agent(db, login=SUPERVISOR, name="Sam", password=password(SUPERVISOR), role="supervisor",
                  client_identity=SUPERVISOR, phone=None, now=now)


def phone(tier: str, i: int) -> str:
    """A valid mainland mobile number per tier and index (guests' numbers belong to nobody)."""
    prefix = {"annual_premium": "137", "premium": "138", "standard": "139", "guest": "136"}[tier]
    return f"+86{prefix}{i:08d}"


def add_members(services: Services, config: Config, counts: dict[str, int]) -> dict[str, list[str]]:
    """Members per tier, one phone each and the PIN `PIN`, imported in bulk (the PIN hashed once)."""
    pin_hash = hash_pin(
        PIN, services.settings.pin_key_bytes
    )  # the web and worker processes (hotline_env) read this key from the same data dir
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["uid", "name", "tier", "phone", "pin_hash"])
    phones: dict[str, list[str]] = {}
    uid = 50000
    for tier, n in counts.items():
        for i in range(n):
            uid += 1
            phones.setdefault(tier, []).append(phone(tier, i))
            w.writerow([str(uid), f"member {uid}", tier, phone(tier, i), pin_hash])
    with services.unit_of_work() as db, PinHasher(1) as hasher:
        for chunk in import_members(
            db,
            read_csv(out.getvalue().encode()),
            config=config,
            now=datetime.now(UTC),
            hasher=hasher,
            pin_key=services.settings.pin_key_bytes,
        ):
            assert not chunk.rejected, chunk.rejected
    return phones


def script(tier: str, patience: float | None = None) -> Script:
    """The keys that take a caller of `tier` to the agent queue: a member's PIN then 0; a guest 0 then * (no member
    number).

    `patience`: simulated seconds the caller holds in a queue before hanging up.
    """
    answers = ("0", "*#") if tier == "guest" else (PIN + "#", "0")
    return Script(answers=answers, when_answers_run_out="hangup", hangup_after_queue_seconds=patience)
