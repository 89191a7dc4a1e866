"""What the `hotline` commands share: the services a command works with (the failure line and the process's
services are hotline/startup.py's, shared with the runner and the worker)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import SQLAlchemyError

from core.schema import ConfigError
from core.services import Services


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
