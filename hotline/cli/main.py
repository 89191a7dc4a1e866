"""The `hotline` command: the service's command groups (one module each), and the tools' commands.

The tools (`bench`, `call`, `agent`, `simulate`, `plan`: tools/) stand above the composition root and import
it, so this module never imports them: they register under the entry-point group `hotline.commands`
(pyproject.toml) and are loaded only when asked for, as Flask's CLI loads `flask.commands`.
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import click

from hotline.cli.agents import agents
from hotline.cli.callbacks import callbacks
from hotline.cli.config import config
from hotline.cli.db import db, demo
from hotline.cli.members import members
from hotline.cli.processes import cron, run, serve, worker

TOOL_COMMANDS = "hotline.commands"


def tool_commands() -> dict[str, EntryPoint]:
    """The tools' commands by name, as installed (`pip install -e .` records them)."""
    return {ep.name: ep for ep in entry_points(group=TOOL_COMMANDS)}


class HotlineGroup(click.Group):
    """The service's own commands, plus the tools' commands loaded from their entry points on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, the tools' included (for --help)."""
        return sorted({*super().list_commands(ctx), *tool_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A service command, or else the tool command of that name (imported only now)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        found = tool_commands().get(cmd_name)
        return found.load() if found is not None else None


@click.group(cls=HotlineGroup)
def main() -> None:
    """Hotline: a priority-member telephone hotline on Twilio."""
    from core.logs import configure

    configure()


for command in (serve, worker, cron, run, demo, config, db, members, agents, callbacks):
    main.add_command(command)
