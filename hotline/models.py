"""Every mapped model, imported so that `Base.metadata` knows all tables (migrations, tests)."""
from __future__ import annotations

from callqueue.agents.accounts import Agent
from callqueue.agents.presence_log import PresenceEvent
from callqueue.callbacks.tickets import CallbackAttempt, CallbackTicket
from callqueue.handling import CallTransfer
from callqueue.records import CallRecord
from core.db import Base
from members.models import Member, MemberPhone

__all__ = ["Agent", "Base", "CallRecord", "CallTransfer", "CallbackAttempt", "CallbackTicket", "Member", "MemberPhone",
           "PresenceEvent"]
