"""The world the JSON API fuzzing attacks (tests/fuzz/test_fuzz_api_*.py): two agents and a supervisor with their
passwords, a finished call, a call in progress, two callers waiting and a callback ticket due (fixture `world`)."""
from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callqueue.agents.accounts import add_agent
from callqueue.callbacks import tickets
from callqueue.live import calls, conference, presence

PASSWORDS = {"ann": "ann-pass-1", "sam": "sam-pass-1", "bob": "bob-pass-1"}


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{PASSWORDS[login]}".encode()).decode()}


@pytest.fixture
def world(db: Any, redis: Any, services: Any) -> dict[str, Any]:
    """Two agents and a supervisor; ann has just finished a call (wrap-up), bob is on one (`on_call`, his agent's
    leg answered, the caller not moved in yet), two callers wait, a ticket is due."""
    now = datetime.now(UTC)
    add_agent(
        db, login="ann", name="Ann", password=PASSWORDS["ann"], role="agent", client_identity="ann", phone=None, now=now
    )
    add_agent(
        db, login="bob", name="Bob", password=PASSWORDS["bob"], role="agent", client_identity="bob", phone=None, now=now
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password=PASSWORDS["sam"],
        role="supervisor",
        client_identity="sam",
        phone=None,
        now=now,
    )
    cfg = services.config
    sids = ["CA" + c * 32 for c in "abcd"]
    for i, sid in enumerate(sids):
        calls.arrived(db, sid, from_number=f"+861380000000{i}", now=now)
        calls.join_queue(db, redis, sid, tier=("premium", "standard", "guest", "standard")[i], now=now, settings=cfg,
                         category="billing", verified=i == 0, from_number=f"+861380000000{i}")
    presence.set_state(redis, "ann", "available", now, endpoint="client:ann")
    offer = calls.dispatch(db, redis, now)
    assert offer is not None and offer.agent == "ann"
    calls.agent_answered(db, redis, offer.call_sid, "ann", now, cfg)
    assert conference.caller_moved(redis, offer.call_sid, "ann")  # in the conference; then ann's leg ends
    assert calls.agent_left(db, redis, offer.call_sid, "ann", now, cfg).outcome == "ended"
    presence.set_state(redis, "bob", "available", now, endpoint="client:bob")
    offer = calls.dispatch(db, redis, now)
    assert offer is not None and offer.agent == "bob"
    calls.agent_answered(db, redis, offer.call_sid, "bob", now, cfg)
    on_call = offer.call_sid
    ticket = tickets.create(db, phone="+8613800000051", tier="premium", lang="zh", reason="after_hours", score=1.0,
                            due=now - timedelta(minutes=5), now=now - timedelta(hours=2), max_attempts=3).ticket
    db.commit()
    return {"ticket": ticket.number, "sids": sids, "on_call": on_call}


def log_in(client: Any, login: str) -> str:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"login": login, "password": PASSWORDS[login], "csrf_token": token})
    assert resp.status_code == 302, resp.status_code
    page = client.get("/agent").get_data(as_text=True)
    return re.search(r'data-csrf="([^"]+)"', page).group(1)
