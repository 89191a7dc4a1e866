"""'Check my ticket' (menu key 8): the one hook a later issue fills with the callback tickets."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class TicketStatus:
    """What the caller hears about their open callback ticket (prompt `ticket_open`)."""

    number: str
    status: str  # already in the caller's language


def ticket_status(session: Session, caller: str, lang: str, now: datetime) -> TicketStatus | None:
    """The open callback ticket of calling number `caller`, or None (callback tickets do not exist yet)."""
    return None
