"""`hotline config check`: validate a configuration file and name every problem by its key path."""
from __future__ import annotations

import os
import sys

import click

from core.schema import ConfigError


@click.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def config_check(file: str | None) -> None:
    """Validate FILE (default: $HOTLINE_CONFIG, else the shipped defaults); print every problem."""
    from hotline.configuration import full_config

    path = file or os.environ.get("HOTLINE_CONFIG") or None
    try:
        full_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            click.echo(line, err=True)
        sys.exit(1)
    click.echo(f"{path or 'shipped defaults'}: ok")
