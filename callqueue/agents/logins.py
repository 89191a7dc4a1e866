"""Agent and supervisor logins: password check with lockout after repeated failures."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callqueue.agents.accounts import Agent
from core.passwords import verify_secret

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)


@dataclass(frozen=True)
class Identity:
    """Who is logged in, as plain values."""

    login: str
    name: str
    role: str


@dataclass(frozen=True)
class LoginResult:
    """The identity on success; otherwise why not (`bad_credentials` or `locked`)."""

    identity: Identity | None
    reason: str = ""
    locked_until: datetime | None = None


def authenticate(session: Session, login: str, password: str, now: datetime) -> LoginResult:
    """Check a login; count failures and lock the account for 15 minutes after 5 in a row."""
    # No login holds a NUL (PostgreSQL text cannot), so one with it is simply unknown, never a query error.
    agent = session.scalar(select(Agent).where(Agent.login == login)) if login and "\x00" not in login else None
    if agent is None:
        return LoginResult(None, "bad_credentials")
    if agent.locked_until is not None and agent.locked_until > now:
        return LoginResult(None, "locked", agent.locked_until)
    if not verify_secret(password, agent.password_hash):
        agent.failed_logins += 1
        if agent.failed_logins >= MAX_FAILURES:
            agent.failed_logins = 0
            agent.locked_until = now + LOCK_FOR
            return LoginResult(None, "locked", agent.locked_until)
        return LoginResult(None, "bad_credentials")
    if agent.failed_logins or agent.locked_until:
        agent.failed_logins = 0
        agent.locked_until = None
    return LoginResult(Identity(agent.login, agent.name, agent.role))


def identity_of(session: Session, login: str) -> Identity | None:
    """The identity behind a login kept in a console session (None if the agent is gone)."""
    agent = session.scalar(select(Agent).where(Agent.login == login))
    return Identity(agent.login, agent.name, agent.role) if agent else None
