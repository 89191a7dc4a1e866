"""`hotline db upgrade` and `hotline demo`: the database's schema and its demo data."""
from __future__ import annotations

from datetime import UTC, datetime

import click

from hotline.startup import open_services


@click.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to the configured database."""
    from hotline.migrate import upgrade

    svc = open_services()
    try:
        upgrade(svc.engine)
    finally:
        svc.close()
    click.echo(f"database at {svc.engine.url.render_as_string(hide_password=True)} is up to date")


@click.command()
def demo() -> None:
    """Seed demo members of every tier, two agents and a supervisor (only into an empty database)."""
    from hotline.demo import seed_demo

    svc = open_services()
    try:
        with svc.unit_of_work() as session:
            lines = seed_demo(session, svc.config, now=datetime.now(UTC), pin_key=svc.settings.pin_key_bytes)
    finally:
        svc.close()
    for line in lines:
        click.echo(line)
