"""Every mapped model, imported so that `Base.metadata` knows all tables (migrations, tests)."""
from __future__ import annotations

from core.db import Base
from members.models import Member, MemberPhone
from callqueue.agents.accounts import Agent
from callqueue.records import CallRecord
from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket

__all__ = ["Base", "Member", "MemberPhone", "Agent", "CallRecord", "CallbackTicket", "CallbackAttempt"]
