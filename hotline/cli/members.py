"""`hotline members add|import|list|unlock`: the click group the `hotline` command registers.

Each command is a plain function taking a Services object (`add_command`, `import_command`, …) wrapped
by a click command that opens the services (hotline/cli/common.py: ctx.obj when it is one, else new ones).
"""
from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from core.services import Services
from hotline.cli.common import command_services
from members.admin import MemberError, add_member, check_member, list_members, member_tiers, unlock_member
from members.importer import ImportFileError, PinHasher, Rejected, import_members, read_csv

SHOWN_REJECTS = 50
EXIT_REJECTED = 3  # the file was imported, but some rows were rejected


def add_command(svc: Services, uid: str, name: str, tier: str, phones: tuple[str, ...], pin: str) -> str:
    """Add one member; returns the line to print. Raises MemberError."""
    fields, errors = check_member(uid, name, tier, ";".join(phones), svc.config)
    if fields is None:
        raise MemberError(errors)
    with svc.unit_of_work() as session:
        add_member(session, fields, pin, svc.config, datetime.now(UTC), pin_key=svc.settings.pin_key_bytes)
    return f"added member {fields.uid} ({fields.tier}) {fields.name}: {' '.join(fields.phones)}"


def import_command(svc: Services, data: bytes, *, encoding: str = "utf-8", workers: int | None = None,
                   progress: bool = True, out: TextIO | None = None) -> tuple[str, list[Rejected]]:
    """Import a CSV (bytes); return the summary line and the rejected rows. ImportFileError: nothing changed."""
    csv_file = read_csv(data, encoding)
    total = len(csv_file.records)
    t0 = time.perf_counter()
    created = updated = unchanged = 0
    rejected: list[Rejected] = []
    session = svc.sessions()
    try:
        with PinHasher(workers) as hasher, click.progressbar(
            length=total, label=f"importing {total} rows", file=out or sys.stderr, show_pos=True, show_eta=True,
            hidden=not progress,
        ) as bar:
            for chunk in import_members(session, csv_file, config=svc.config, now=datetime.now(UTC), hasher=hasher,
                                        pin_key=svc.settings.pin_key_bytes):
                session.commit()
                created, updated, unchanged = (
                    created + chunk.created,
                    updated + chunk.updated,
                    unchanged + chunk.unchanged,
                )
                rejected += chunk.rejected
                bar.update(chunk.rows)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    seconds = time.perf_counter() - t0
    rate = total / seconds if seconds > 0 else float(total)
    summary = (f"{total} rows in {seconds:.1f} s ({rate:,.0f} rows/s): {created} created, {updated} updated, "
               f"{unchanged} unchanged, {len(rejected)} rejected")
    return summary, rejected


@click.group("members")
def members() -> None:
    """Members: add, import from CSV, list, unlock."""


@members.command("add")
@click.option("--uid", required=True, help="Member number (digits, as keyed in on a phone).")
@click.option("--name", required=True)
@click.option("--tier", required=True, help="A configured tier other than guest (annual_premium, premium, standard).")
@click.option("--phone", "phones", required=True, multiple=True, help="E.164 or national number; repeat for several.")
@click.option(
    "--pin",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (keeps it out of shell history).",
)
@click.pass_context
def add(ctx: click.Context, uid: str, name: str, tier: str, phones: tuple[str, ...], pin: str) -> None:
    """Add one member (an existing member number is an error: use import to update)."""
    with command_services(ctx) as svc:
        try:
            click.echo(add_command(svc, uid, name, tier, phones, pin))
        except MemberError as exc:
            for line in exc.errors:
                click.echo(f"hotline members add: {line}", err=True)
            ctx.exit(2)


@members.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encoding", default="utf-8", show_default=True, help="The file's text encoding (e.g. gbk).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes hashing plaintext PINs [default: every core].",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rejected rows (line, reason) to this CSV.",
)
@click.pass_context
def import_(ctx: click.Context, file: Path, encoding: str, workers: int | None, rejects: Path | None) -> None:
    """Upsert members from FILE.csv by uid (header row: uid,name,tier,phone and pin or pin_hash).

    Exit status: 0 all rows imported; 1 the file is unusable (nothing changed); 3 some rows rejected (others imported).
    """
    with command_services(ctx) as svc:
        try:
            summary, rejected = import_command(svc, file.read_bytes(), encoding=encoding, workers=workers)
        except ImportFileError as exc:
            raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    click.echo(f"imported {file}: {summary}")
    if rejected:
        click.echo(f"rejected rows ({len(rejected)}):", err=True)
        for r in rejected[:SHOWN_REJECTS]:
            click.echo(f"  line {r.line}: {r.reason}", err=True)
        if len(rejected) > SHOWN_REJECTS:
            click.echo(
                f"  … and {len(rejected) - SHOWN_REJECTS} more"
                + ("" if rejects else " (write them all with --rejects FILE)"),
                err=True,
            )
    if rejects:
        with rejects.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["line", "reason"])
            writer.writerows([r.line, r.reason] for r in rejected)
        click.echo(f"rejected rows written to {rejects}", err=True)
    if rejected:
        ctx.exit(EXIT_REJECTED)


@members.command("list")
@click.option("--tier", help="Only members of this tier.")
@click.pass_context
def list_(ctx: click.Context, tier: str | None) -> None:
    """List members by member number: uid, tier, name, phones, locked until."""
    with command_services(ctx) as svc:
        if tier and tier not in member_tiers(svc.config):
            raise click.BadParameter(
                f"{tier!r} is not one of {', '.join(member_tiers(svc.config))}", param_hint="--tier"
            )
        session = svc.sessions()
        try:
            count = 0
            for row in list_members(session, tier, now=datetime.now(UTC)):
                locked = f"  locked until {row['locked_until']}" if row["locked_until"] else ""
                click.echo(f"{row['uid']:<12} {row['tier']:<15} {row['name']:<20} {row['phones']}{locked}")
                count += 1
        finally:
            session.close()
    click.echo(f"{count} member{'s' if count != 1 else ''}", err=True)


@members.command("unlock")
@click.argument("uid")
@click.pass_context
def unlock(ctx: click.Context, uid: str) -> None:
    """Clear a member's wrong-PIN count and lock."""
    with command_services(ctx) as svc:
        with svc.unit_of_work() as session:
            found = unlock_member(session, uid)
    if not found:
        raise click.ClickException(f"no member {uid}")
    click.echo(f"unlocked member {uid}")
