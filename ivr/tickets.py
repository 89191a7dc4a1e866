"""'Check my ticket' (menu key 8): what the caller hears about the open callback ticket of their number."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from callqueue.callbacks import tickets
from ivr.callback_steps import when_params
from ivr.replies import Say, say


@dataclass(frozen=True)
class TicketStatus:
    """The open ticket's number (spelled for speech) and its status (prompt `ticket_open`'s {status})."""

    number: str
    status: Say


def ticket_status(session: Session, caller: str, lang: str, now: datetime, tz: str) -> TicketStatus | None:
    """The open callback ticket of calling number `caller` (status, next attempt time), or None. One SELECT."""
    if not caller:
        return None
    t = tickets.open_for_phone(session, caller)
    if t is None:
        return None
    return TicketStatus(" ".join(t.number), status_say(t, lang, now, tz))


def status_say(t: tickets.Ticket, lang: str, now: datetime, tz: str) -> Say:
    """How a ticket's status is said: booked for a time, retrying at a time, being dialled, or connected."""
    if t.status == "dialing":
        return say("ticket_dialing", lang)
    if t.status == "connected":
        return say("ticket_connected", lang)
    due = max(t.due, now).astimezone(ZoneInfo(tz)).isoformat()
    return say("ticket_retry" if t.attempts else "ticket_scheduled", lang, **when_params(due))

