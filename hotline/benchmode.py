"""Bench mode (`HOTLINE_BENCH=1`, set by `hotline bench`): store round trips per request, and a constant endpoint.

`install` is called by the app factory only in bench mode, so a normal process registers none of these
hooks and pays nothing for them. In bench mode every response carries what its request cost:

  X-Hotline-Redis-RT   Redis round trips (one per write to the socket: a pipeline or a script is one)
  X-Hotline-SQL        SQL statements sent (SQLAlchemy's before_cursor_execute)
  X-Hotline-SQL-Tx     transactions ended (commit or rollback of a connection)
  X-Hotline-SQL-Conn   connections checked out of the pool (on PostgreSQL each costs a pre-ping round trip)

and `POST /bench/twiml` answers a constant TwiML document without touching a store: the floor of the
same server stack (gunicorn, Flask, the app's own before/after hooks), to compare the webhooks with.
"""
from __future__ import annotations

import threading
from typing import Any

import redis
from flask import Flask, Response
from sqlalchemy import Engine, event

from core.services import Services

CONSTANT_TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US" voice="Polly.Joanna">'
                  "Thank you for calling.</Say></Response>")
HEADERS = {
    "redis": "X-Hotline-Redis-RT",
    "sql": "X-Hotline-SQL",
    "sql_tx": "X-Hotline-SQL-Tx",
    "sql_conn": "X-Hotline-SQL-Conn",
}


class RoundTrips(threading.local):
    """Per-thread counters: gunicorn's gthread workers run one request per thread at a time."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start counting a new request on this thread."""
        self.redis = self.sql = self.sql_tx = self.sql_conn = 0

    def as_headers(self) -> dict[str, str]:
        """The counts as response headers."""
        return {name: str(getattr(self, field)) for field, name in HEADERS.items()}


def count_redis(client: redis.Redis, counts: RoundTrips) -> redis.Redis:
    """Make every connection of `client`'s pool count its round trips into `counts`; returns `client`.

    A round trip is one write of packed commands: redis-py sends a whole pipeline (or an EVALSHA)
    in one `send_packed_command` and then reads the replies, so counting writes counts round trips.
    A new connection's handshake and a health-check PING are round trips of their own and count too.
    """
    pool = client.connection_pool
    base = pool.connection_class

    class Counting(base):  # type: ignore[misc,valid-type]  # a subclass of the pool's own connection class
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            counts.redis += 1
            super().send_packed_command(command, check_health)

    Counting.__name__ = f"Counting{base.__name__}"
    pool.connection_class = Counting
    pool.reset()  # connections made before now are of the old class: drop them (none exist at app start-up)
    return client


def count_sql(engine: Engine, counts: RoundTrips) -> None:
    """Count statements, transaction ends and pool checkouts of `engine` into `counts`."""

    def statement(*_args: Any) -> None:
        counts.sql += 1

    def tx_end(*_args: Any) -> None:
        counts.sql_tx += 1

    def checkout(*_args: Any) -> None:
        counts.sql_conn += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", tx_end)
    event.listen(engine, "rollback", tx_end)
    event.listen(engine.pool, "checkout", checkout)


def install(app: Flask, svc: Services) -> RoundTrips:
    """Hook the counters into `app`'s stores and responses, and add `POST /bench/twiml`."""
    counts = RoundTrips()
    count_redis(svc.redis, counts)
    count_redis(svc.jobs().rq.connection, counts)  # rq's own client (enqueueing the dispatch job)
    count_sql(svc.engine, counts)

    # App-level hooks run before the blueprints' before_request and after their after_request,
    # so the figures cover the signature check, the handler, the webhook log line and the metrics.
    @app.before_request
    def _start_counting() -> None:
        counts.reset()

    @app.after_request
    def _report_counts(response: Response) -> Response:
        response.headers.update(counts.as_headers())
        return response

    @app.post("/bench/twiml")
    def bench_twiml() -> Response:
        """A constant TwiML document: no store, no signature check, no log line."""
        return Response(CONSTANT_TWIML, mimetype="application/xml")

    app.extensions["bench"] = counts
    return counts
