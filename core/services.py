"""The process's long-lived collaborators, built once by the web app or the worker."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Config
from core.db import make_engine, make_session_factory
from core.jobqueue import QUEUE, JobQueue
from core.redisconn import EmbeddedRedis, ensure_redis_url, make_redis
from core.settings import Settings


@dataclass
class Services:
    """Engine, sessions, Redis and the Twilio gateway for one process."""

    settings: Settings
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    gateway: Any  # webhooks.outbound.gateway.TwilioGateway (an edge object, built by the composition layer)
    redis_url: str
    embedded: EmbeddedRedis | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # edges read time here; tests set it

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error: what jobs and CLI commands use."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def jobs(self) -> JobQueue:
        """The queue of the hotline's rq jobs, built on first use (its client leaves replies as bytes for rq)."""
        queue = self.extras.get("jobs")
        if queue is None:
            from rq import Queue  # only processes that queue jobs load rq

            conn = make_redis(self.redis_url, self.settings.redis_timeout_s, decode=False)
            queue = self.extras["jobs"] = JobQueue(Queue(QUEUE, connection=conn))
        return queue

    def close(self) -> None:
        """Release connections; stop the embedded Redis if this process started it."""
        self.redis.close()
        self.engine.dispose()
        if self.embedded is not None:
            self.embedded.stop()


def build_services(settings: Settings, config: Config, make_gateway: Callable[[Settings], Any]) -> Services:
    """Connect to the stores named by `settings` (starting the embedded Redis if none is named)."""
    url, embedded = ensure_redis_url(settings.redis_url, settings.data_dir)
    engine = make_engine(settings.database_url)
    return Services(
        settings=settings,
        config=config,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=make_redis(url, timeout_s=settings.redis_timeout_s),
        gateway=make_gateway(settings),
        redis_url=url,
        embedded=embedded,
    )
