"""What every `hotline` command shares: one clear line on failure, and the process's services."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError

from core.schema import ConfigError
from core.services import Services


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line on stderr and exit."""
    click.echo(f"hotline: {message}", err=True)
    sys.exit(code)


def open_services(**overrides: Any) -> Services:
    """Services from the environment, or exit with one clear line (bad config, unreachable store)."""
    from hotline.app import create_services, svc_health

    try:
        svc = create_services(overrides or None)
    except ConfigError as exc:
        fail("invalid configuration:\n  " + "\n  ".join(exc.errors))
    except RuntimeError as exc:
        fail(str(exc))
    problems = svc_health(svc)
    if problems:
        svc.close()
        fail(f"cannot start: {'; '.join(problems)} (check HOTLINE_DATABASE_URL / HOTLINE_REDIS_URL)")
    return svc


@contextmanager
def command_services(ctx: click.Context) -> Iterator[Services]:
    """The caller's Services (ctx.obj, as tests pass them), or new ones closed afterwards; configuration and
    database errors become clear messages."""
    given = ctx.find_object(Services)
    if given is not None:
        svc = given
    else:
        from hotline.app import create_services

        try:
            svc = create_services()
        except ConfigError as exc:
            raise click.ClickException("invalid configuration:\n  " + "\n  ".join(exc.errors)) from None
    try:
        yield svc
    except SQLAlchemyError as exc:
        detail = str(exc.orig if hasattr(exc, "orig") else exc)[:200]
        raise click.ClickException(
            f"database error: {exc.__class__.__name__}: {detail} (has `hotline db upgrade` been run?)"
        ) from None
    finally:
        if given is None:
            svc.close()
