"""The admin controls from the command line: hold, resume, adjust the start date, skip a month."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext

from scheduler import controls, lookups
from web import journey_context
from web.cli.common import DATE, carry_out, commit, friendly


@click.command("pause")
@click.argument("client")
@click.option("--until", type=DATE, help="Local date the hold ends by itself, YYYY-MM-DD.")
@click.option("--reason", default="", help="Why (shown to admins and in the email).")
@with_appcontext
@friendly
def pause_cmd(client: str, until: date | None, reason: str) -> None:
    """Put a client on hold: nothing fires until the hold ends."""
    ctx = journey_context()
    found = lookups.find_client(ctx, client)
    click.echo(f"{found.name} on hold" + (f" until {until}" if until else " (no end date)") + ":")
    carry_out(lambda ctx, c: controls.pause(ctx, c, until=until, reason=reason), found)


@click.command("resume")
@click.argument("client")
@with_appcontext
@friendly
def resume_cmd(client: str) -> None:
    """End a client's hold: the journey moves later by the days paused."""
    ctx = journey_context()
    hold = carry_out(controls.resume, lookups.find_client(ctx, client))
    click.echo(f"resumed: the journey moved {hold.days} day(s) later")


@click.command("adjust")
@click.argument("client")
@click.option("--start-date", type=DATE, required=True, help="New program start, YYYY-MM-DD.")
@with_appcontext
@friendly
def adjust_cmd(client: str, start_date: date) -> None:
    """Change the program start date: every pending step is recomputed."""
    ctx = journey_context()
    moved = controls.adjust(ctx, lookups.find_client(ctx, client), start_date)
    commit()
    click.echo(f"start date is now {start_date:%Y-%m-%d}; {moved} automation(s) moved")


@click.command("skip")
@click.argument("client")
@click.argument("month", type=int)
@with_appcontext
@friendly
def skip_cmd(client: str, month: int) -> None:
    """Skip a month: its automations are cancelled and it counts as done."""
    ctx = journey_context()
    controls.skip_month(ctx, lookups.find_client(ctx, client), month)
    commit()
    click.echo(f"M{month} skipped")


COMMANDS = [pause_cmd, resume_cmd, adjust_cmd, skip_cmd]
