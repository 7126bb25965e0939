"""The review flow from the command line: approve, reject, generate by hand, record an open,
record the business plan's approval."""

from __future__ import annotations

from typing import TextIO

import click
from flask.cli import with_appcontext

from scheduler import lookups, review
from web import journey_context
from web.cli.common import carry_out, commit, friendly


@click.command("approve")
@click.argument("client")
@click.argument("month", type=int)
@click.option(
    "--content-file",
    type=click.File("r", encoding="utf-8"),
    help="Deliver this corrected text instead (Markdown; - reads standard input); the "
    "generated text is kept.",
)
@with_appcontext
@friendly
def approve_cmd(client: str, month: int, content_file: TextIO | None) -> None:
    """Approve a month's deliverable (in review, or rejected): delivered to the client now."""
    ctx = journey_context()
    found = lookups.find_client(ctx, client)
    content = content_file.read() if content_file is not None else None
    d = carry_out(review.approve, found, month, content)
    edited = " with your corrections" if d.generated_content is not None else ""
    click.echo(f"M{month} of {found.name} approved{edited}")


@click.command("reject")
@click.argument("client")
@click.argument("month", type=int)
@click.option("--notes", default="", help="What to change.")
@with_appcontext
@friendly
def reject_cmd(client: str, month: int, notes: str) -> None:
    """Reject a month's deliverable, with notes."""
    ctx = journey_context()
    found = lookups.find_client(ctx, client)
    d = review.reject(ctx, found, month, notes)
    commit()
    click.echo(f"M{month} v{d.version} of {found.name} rejected")


@click.command("generate")
@click.argument("client")
@click.argument("month", type=int)
@click.option("--notes", default="", help="Guidance for this version.")
@with_appcontext
@friendly
def generate_cmd(client: str, month: int, notes: str) -> None:
    """Generate a month's deliverable by hand, now (cancels its scheduled generation)."""
    ctx = journey_context()
    a = review.generate_by_hand(ctx, lookups.find_client(ctx, client), month, notes)
    commit()
    click.echo(f"generation of M{month} queued as automation {a.id}")


@click.command("opened")
@click.argument("client")
@click.argument("month", type=int)
@with_appcontext
@friendly
def opened_cmd(client: str, month: int) -> None:
    """Record that the client opened a month's deliverable."""
    ctx = journey_context()
    review.open_deliverable(ctx, lookups.find_client(ctx, client), month)
    commit()
    click.echo(f"M{month} marked opened")


@click.command("business-plan-approved")
@click.argument("client")
@with_appcontext
@friendly
def business_plan_cmd(client: str) -> None:
    """Record the business plan's approval: month 1 is generated at once if it has not been."""
    ctx = journey_context()
    a = review.approve_business_plan(ctx, lookups.find_client(ctx, client))
    commit()
    click.echo("business plan approved" + (f"; M1 generation is automation {a.id}" if a else ""))


COMMANDS = [approve_cmd, reject_cmd, generate_cmd, opened_cmd, business_plan_cmd]
