"""`hotline callbacks list|run-due`: the supervisor's view of callback tickets and a manual dialling pass."""
from __future__ import annotations

import json

import click

from callqueue.callbacks import tickets
from core.logs import mask_phone
from core.services import Services
from hotline.cli.common import command_services
from webhooks.outbound import callback_dialer


def list_command(svc: Services, status: str | None, as_json: bool) -> str:
    """The tickets (optionally of one status) as a table or JSON lines (numbers masked)."""
    rows = callback_dialer.ticket_list(svc, status)
    if as_json:
        return "\n".join(json.dumps({**t.as_json(), "phone": mask_phone(t.phone)}, ensure_ascii=False) for t in rows)
    lines = [f"{'number':<9} {'status':<10} {'tier':<15} {'reason':<15} {'phone':<16} {'due (UTC)':<20} attempts"]
    for t in rows:
        lines.append(f"{t.number:<9} {t.status:<10} {t.tier:<15} {t.reason:<15} {mask_phone(t.phone):<16} "
                     f"{t.due:%Y-%m-%d %H:%M:%S}  {t.attempts}/{t.max_attempts}" + (f"  {t.note}" if t.note else ""))
    lines.append(f"{len(rows)} ticket(s)")
    return "\n".join(lines)


def run_due_command(svc: Services) -> str:
    """One sweep now: recover lost attempts, then dial every due ticket whose turn has come."""
    result = callback_dialer.sweep(svc, wait_s=10)
    return f"recovered {result['callbacks_recovered']}, placed {result['callbacks_placed']} callback call(s)"


@click.group()
def callbacks() -> None:
    """Callback tickets."""


@callbacks.command("list")
@click.option("--status", type=click.Choice(tickets.STATUSES), default=None, help="Only tickets in this status.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def list_cmd(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List tickets: open ones in dialling order, closed ones newest first."""
    with command_services(ctx) as svc:
        click.echo(list_command(svc, status, as_json))


@callbacks.command("run-due")
@click.pass_context
def run_due_cmd(ctx: click.Context) -> None:
    """Dial the due tickets whose turn has come now (what the worker's sweep does every few seconds)."""
    with command_services(ctx) as svc:
        click.echo(run_due_command(svc))
