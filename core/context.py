"""What Flask edges use to reach the process's services and the request's SQL session."""
from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from core.services import Services


def services() -> Services:
    """The services of the running app."""
    return current_app.extensions["hotline"]


def db() -> Session:
    """The request's session, opened on first use and closed on teardown."""
    if "db" not in g:
        g.db = services().sessions()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """Teardown: roll back anything uncommitted and close the request's session."""
    session = g.pop("db", None)
    if session is not None:
        session.close()
