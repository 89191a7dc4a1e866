"""`hotline agents add|list`: agents and supervisors."""
from __future__ import annotations

from datetime import UTC, datetime

import click

from hotline.startup import fail, open_services


@click.group()
def agents() -> None:
    """Agents and supervisors."""


@agents.command("add")
@click.option("--login", required=True)
@click.option("--name", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["agent", "supervisor"]), default="agent", show_default=True)
@click.option("--client", "client_identity", help="Twilio Client identity to ring")
@click.option("--phone", help="E.164 phone number to ring")
def agents_add(login: str, name: str, password: str, role: str, client_identity: str | None, phone: str | None) -> None:
    """Add an agent or supervisor with exactly one endpoint."""
    from callqueue.agents.accounts import AgentError, add_agent
    from members.phones import normalize_phone

    svc = open_services()
    try:
        e164 = normalize_phone(phone, svc.config["hotline"]["phone_region"]) if phone else None
        if phone and e164 is None:
            raise AgentError(f"phone: {phone!r} is not a valid phone number")
        with svc.unit_of_work() as session:
            add_agent(session, login=login, name=name, password=password, role=role,
                      client_identity=client_identity, phone=e164, now=datetime.now(UTC))
    except AgentError as exc:
        fail(str(exc))
    finally:
        svc.close()
    click.echo(f"added {role} {login}")


@agents.command("list")
def agents_list() -> None:
    """List agents and supervisors."""
    from callqueue.agents.accounts import list_agents

    svc = open_services()
    try:
        with svc.unit_of_work() as session:
            rows = list_agents(session)
    finally:
        svc.close()
    for row in rows:
        click.echo(f"{row['login']:<16} {row['role']:<10} {row['endpoint'] or '':<24} {row['name']}")
