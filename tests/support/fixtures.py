"""The shared fixtures: real SQL and real Redis (embedded by default, servers when the env names them), the app on
them, signed webhooks checked against the TwiML schema, and a scratch Redis database for the day simulation."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.redisconn import EmbeddedRedis, make_redis
from core.services import Services
from hotline.app import create_app, create_services
from hotline.migrate import upgrade
from hotline.models import Base
from simulator.schema import schema_available, validate_twiml
from tests.support.common import ALWAYS_OPEN, AUTH_TOKEN, PUBLIC_URL, sign
from tests.support.schema import REQUIRE, schema_problem, schema_required


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory for the whole run (short path: it holds a unix socket)."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    """HOTLINE_TEST_REDIS_URL, or one embedded redis-server for the run."""
    url = os.environ.get("HOTLINE_TEST_REDIS_URL")
    if url:
        yield url
        return
    embedded = EmbeddedRedis(data_dir)
    yield embedded.start()
    embedded.stop()


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    """HOTLINE_TEST_DATABASE_URL, or a SQLite file for the run."""
    return os.environ.get("HOTLINE_TEST_DATABASE_URL") or f"sqlite:///{data_dir / 'test.db'}"


@pytest.fixture(scope="session")
def overrides(data_dir: Path, redis_url: str, database_url: str) -> dict[str, Any]:
    """Settings every test app is built with; tests copy and change them when they need to."""
    return {
        "data_dir": data_dir,
        "database_url": database_url,
        "redis_url": redis_url,
        "config_path": str(ALWAYS_OPEN),
        "public_url": PUBLIC_URL,
        "trusted_proxies": 0,
        "secret_key": "test-secret-key",
        "twilio_account_sid": "",
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_url": "http://127.0.0.1:9",  # nothing listens: a test that needs the REST API starts the simulator
        "testing": True,
    }


@pytest.fixture(scope="session")
def services(overrides: dict[str, Any]) -> Iterator[Services]:
    """Process services on a freshly migrated database."""
    svc = create_services(overrides)
    with svc.engine.begin() as conn:
        # A server database may hold an earlier run's tables: start from nothing, then migrate.
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(svc.engine)
    yield svc
    svc.close()


@pytest.fixture(autouse=True)
def clean_stores(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touches the stores starts with empty tables and an empty Redis."""
    if "services" not in request.fixturenames:
        yield
        return
    svc: Services = request.getfixturevalue("services")
    svc.redis.flushdb()
    with svc.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    yield


@pytest.fixture
def app(services: Services) -> Any:
    """The Flask app on the shared services."""
    return create_app(services=services)


@pytest.fixture
def client(app: Any) -> Any:
    """A Flask test client."""
    return app.test_client()


@pytest.fixture
def db(services: Services) -> Iterator[Any]:
    """A SQL session for the test's own reads and writes."""
    session = services.sessions()
    yield session
    session.close()


@pytest.fixture
def redis(services: Services) -> Any:
    """The Redis client the app uses."""
    return services.redis


@pytest.fixture(scope="session")
def twiml_check() -> Callable[[str], None]:
    """Validate a TwiML document against the shared schema (skipped, with a reason, when absent; a failure when
    HOTLINE_REQUIRE_SCHEMA is set, as in CI: the root conftest has already stopped such a run at its start)."""
    if not schema_available():
        problem = schema_problem()
        if schema_required():
            pytest.fail(f"{REQUIRE} is set (as in CI) but {problem}")
        print(f"TwiML schema absent ({problem}): documents are not validated", file=sys.stderr)
    return validate_twiml


@pytest.fixture
def voice(client: Any, twiml_check: Callable[[str], None]) -> Callable[..., Any]:
    """POST a signed Twilio webhook; 200 answers are checked against the TwiML schema."""

    def post(path: str, params: dict[str, str] | None = None, signed: bool = True, **kw: Any) -> Any:
        params = {
            "CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": "+8613800000001",
            "To": "+864001234567", "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
            **(params or {}),
        }
        headers = {"X-Twilio-Signature": sign(PUBLIC_URL + path, params)} if signed else {}
        resp = client.post(path, data=params, headers=headers, **kw)
        if resp.status_code == 200 and resp.mimetype == "application/xml":
            twiml_check(resp.get_data(as_text=True))
        return resp

    return post


@pytest.fixture
def qs(services: Services) -> Any:
    """The queue's settings from the test configuration."""
    from callqueue.settings import queue_settings

    return queue_settings(services.config)


@pytest.fixture
def scratch_url(redis_url: str) -> str:
    """A database of the test server that no other test uses (the simulation flushes it)."""
    return redis_url if os.environ.get("HOTLINE_TEST_REDIS_URL") else redis_url + "?db=9"


@pytest.fixture
def scratch(scratch_url: str) -> Iterator[Any]:
    """An empty scratch database for the day simulation (tests/planning/)."""
    r = make_redis(scratch_url, timeout_s=60)
    r.flushdb()
    yield r
    r.flushdb()
    r.close()
