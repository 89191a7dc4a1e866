"""The ticket's confirmation text message, sent from a job (never inside a webhook)."""
from __future__ import annotations

from callqueue.callbacks import tickets
from core.services import Services
from ivr.callback_steps import spell


def send_ticket_sms(svc: Services, ticket_id: int) -> str:
    """Text ticket `ticket_id`'s number to its phone; returns the MessageSid ("" if the ticket is gone)."""
    with svc.unit_of_work() as session:
        t = session.get(tickets.CallbackTicket, ticket_id)
        found = tickets.view(t) if t is not None else None
    if found is None:
        return ""
    body = svc.config.prompt("sms_ticket", found.lang).format(
        number=found.number, phone=spell(found.phone).replace(" ", "")
    )
    return svc.gateway.send_sms(found.phone, body)
