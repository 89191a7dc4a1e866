"""Starting a process (a command, the web server, a worker): its services from the environment, or one clear line
on stderr and an exit when that cannot be (bad configuration, a store that does not answer)."""
from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

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
