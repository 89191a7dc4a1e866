"""SQL model of agents and supervisors, and the functions that create and list them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, UTCDateTime
from core.passwords import hash_secret

ROLES = ("agent", "supervisor")


class Agent(Base):
    """A person who answers calls (role `agent`) or also watches the queue (`supervisor`)."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    client_identity: Mapped[str | None] = mapped_column(String(100), default=None)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AgentError(ValueError):
    """An agent could not be created: the message says which field and why."""


def add_agent(
    session: Session, *, login: str, name: str, password: str, role: str,
    client_identity: str | None, phone: str | None, now: datetime,
) -> int:
    """Create an agent (exactly one endpoint: a Twilio Client identity or an E.164 phone); return its id."""
    if role not in ROLES:
        raise AgentError(f"role: must be one of {', '.join(ROLES)}")
    if not login or not login.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise AgentError("login: letters, digits, '.', '_' or '-' only")
    if len(password) < 8:
        raise AgentError("password: at least 8 characters")
    if bool(client_identity) == bool(phone):
        raise AgentError("endpoint: give exactly one of --client IDENTITY or --phone E164")
    if session.scalar(select(Agent.id).where(Agent.login == login)) is not None:
        raise AgentError(f"login: {login!r} already exists")
    agent = Agent(login=login, name=name, password_hash=hash_secret(password), role=role,
                  client_identity=client_identity or None, phone=phone or None, created_at=now)
    session.add(agent)
    session.flush()
    return agent.id


def list_agents(session: Session) -> list[dict[str, str | None]]:
    """Every agent as plain values, by login."""
    rows = session.scalars(select(Agent).order_by(Agent.login))
    return [
        {"login": a.login, "name": a.name, "role": a.role, "endpoint": endpoint_of(a) or None}
        for a in rows
    ]


def endpoint_of(agent: Agent) -> str:
    """Where to ring the agent: "client:IDENTITY" (Twilio Client) or their E.164 phone number."""
    return f"client:{agent.client_identity}" if agent.client_identity else (agent.phone or "")


def agent_endpoint(session: Session, login: str) -> str | None:
    """The endpoint of the agent `login`, or None when there is no such agent."""
    agent = session.scalar(select(Agent).where(Agent.login == login))
    return None if agent is None else endpoint_of(agent)


def roster(session: Session) -> list[tuple[str, str]]:
    """(login, endpoint) of every agent and supervisor, for presence.ensure_known."""
    return [(a.login, endpoint_of(a)) for a in session.scalars(select(Agent).order_by(Agent.login))]
