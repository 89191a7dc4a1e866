"""Demo data for `make run`: members of every tier, two agents and a supervisor, with printed logins."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callqueue.agents.accounts import Agent, add_agent
from core.config import Config
from members.admin import add_member, check_member
from members.models import Member

# (uid, name, tier, phone, pin). Numbers are in the 138-0013-8xxx test range; PINs are demo-only.
DEMO_MEMBERS = (
    ("10000001", "林晓 (annual premium)", "annual_premium", "+8613800138001", "2468"),
    ("10000002", "王芳 (premium)", "premium", "+8613800138002", "1357"),
    ("10000003", "张伟 (standard)", "standard", "+8613800138003", "1111"),
)
DEMO_AGENTS = (
    ("agent1", "李娜", "agent", "agent1", "agent1-pass"),
    ("agent2", "陈杰", "agent", "agent2", "agent2-pass"),
    ("super", "赵敏", "supervisor", "super", "super-pass"),
)


def seed_demo(session: Session, config: Config, now: datetime, *, pin_key: bytes) -> list[str]:
    """Add the demo people unless the database already has members or agents; return lines to print."""
    members = session.scalar(select(func.count()).select_from(Member)) or 0
    agents = session.scalar(select(func.count()).select_from(Agent)) or 0
    if members or agents:
        return [f"demo: database already has {members} members and {agents} agents; nothing added"]
    lines = ["demo members (call from these numbers, or key in the member number):"]
    for uid, name, tier, phone, pin in DEMO_MEMBERS:
        fields, errors = check_member(uid, name, tier, phone, config)
        if fields is None:
            raise ValueError("; ".join(errors))
        add_member(session, fields, pin, config, now, pin_key=pin_key)
        lines.append(f"  {tier:<15} uid {uid}  phone {phone}  PIN {pin}  {name}")
    lines.append("demo agents and supervisor (log in at /login; HTTP Basic on /api):")
    for login, name, role, identity, password in DEMO_AGENTS:
        add_agent(
            session, login=login, name=name, password=password, role=role, client_identity=identity, phone=None, now=now
        )
        lines.append(f"  {role:<10} login {login:<7} password {password:<12} rings client:{identity}")
    return lines
