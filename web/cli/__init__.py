"""The `journey` command: every operator command, over the app factory. One module per group
of commands, each a thin shell over the engine's operations: `clients` (enroll, list, timeline),
`review`, `controls`, `automations`, `admins` (and API tokens), `program` (and emails),
`operations` (sweep, serve, demo, simulate), `insight` (metrics, risk), `abtests` (A/B tests
simulated on synthetic clients)."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import FlaskGroup, routes_command, shell_command

from scheduler.program import ProgramError
from web import ACTOR_KEY, create_app
from web.cli import (
    abtests,
    admins,
    automations,
    clients,
    controls,
    insight,
    operations,
    program,
    review,
)
from web.config import ConfigError


def app_factory() -> Any:
    try:
        return create_app()
    except (ConfigError, ProgramError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def acting_as(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """The person a command acts for, recorded with what it changes: `--as EMAIL`, else the
    OS user running it."""
    import getpass

    try:
        person = value.strip() if value else getpass.getuser()
    except (KeyError, OSError):  # no such user in the password database (a bare container)
        person = ""
    ctx.meta[ACTOR_KEY] = person
    return person


# Flask's own `run` serves pages without the worker and the sweep: `journey serve` is the one.
cli = FlaskGroup(
    name="journey",
    create_app=app_factory,
    add_default_commands=False,
    help="Journey Engine: plan and carry out every client's journey.",
    params=[
        click.Option(
            ["--as", "acting"],
            metavar="EMAIL",
            expose_value=False,
            is_eager=True,
            callback=acting_as,
            help="Record this person (an admin's email) as the one acting (default: the OS user).",
        )
    ],
)
cli.add_command(shell_command)
cli.add_command(routes_command)
for module in (
    clients,
    review,
    controls,
    automations,
    admins,
    operations,
    program,
    insight,
    abtests,
):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    cli.main(prog_name="journey")
