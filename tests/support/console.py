"""The web console in Flask's test client (tests/web/test_console_*.py): an agent and a supervisor (fixture
`console_people`), logging in through the form with its CSRF token, and the token a page hands its scripts."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from callqueue.agents.accounts import add_agent

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


@pytest.fixture
def console_people(db: Any) -> None:
    """The agent ann and the supervisor sam, with their passwords (<login>-pass-1)."""
    add_agent(
        db, login="ann", name="Ann", password="ann-pass-1", role="agent", client_identity="ann", phone=None, now=NOW
    )
    add_agent(
        db,
        login="sam",
        name="Sam",
        password="sam-pass-1",
        role="supervisor",
        client_identity="sam",
        phone=None,
        now=NOW,
    )
    db.commit()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def log_in(client: Any, login: str, password: str, **extra: str) -> Any:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"login": login, "password": password, "csrf_token": token, **extra})


def page_csrf(client: Any, path: str = "/agent") -> str:
    return re.search(r'data-csrf="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)
