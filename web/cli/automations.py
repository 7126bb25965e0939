"""`journey automations`: list, cancel, trigger and schedule automations by hand."""

from __future__ import annotations

import json
from datetime import datetime

import click
from flask.cli import AppGroup
from sqlalchemy import select

from scheduler import controls, lookups
from scheduler.models import Automation
from scheduler.vocab import AutomationStatus
from web import journey_context
from web.api import serialize
from web.cli.common import UTC_TIME, carry_out, commit, describe, friendly
from web.extensions import db


@click.group(cls=AppGroup)
def automations() -> None:
    """List, cancel, trigger and schedule automations."""


@automations.command("list")
@click.option("--client", help="Client id or email.")
@click.option("--status", type=click.Choice([s.value for s in AutomationStatus]))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def automations_list(client: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List automations, soonest first."""
    query = select(Automation).order_by(Automation.trigger_at, Automation.id).limit(limit)
    if client:
        query = query.where(
            Automation.client_id == lookups.find_client(journey_context(), client).id
        )
    if status:
        query = query.where(Automation.status == status)
    for a in db.session.scalars(query):
        if as_json:
            click.echo(json.dumps(serialize.automation(a)))
        else:
            click.echo(
                f"#{a.id:<6} {a.trigger_at:%Y-%m-%d %H:%M} UTC  client {a.client_id:<5} "
                f"{describe(a):<45} {a.status}"
            )


@automations.command("cancel")
@click.argument("automation_id", type=int)
@friendly
def automations_cancel(automation_id: int) -> None:
    """Cancel one scheduled automation."""
    ctx = journey_context()
    controls.cancel(ctx, lookups.find_automation(ctx, automation_id))
    commit()
    click.echo(f"automation {automation_id} cancelled")


@automations.command("trigger")
@click.argument("automation_id", type=int)
@friendly
def automations_trigger(automation_id: int) -> None:
    """Run a scheduled (or failed) automation now."""
    ctx = journey_context()
    click.echo(f"automation {automation_id}:")
    carry_out(controls.trigger_now, lookups.find_automation(ctx, automation_id))


@automations.command("schedule")
@click.argument("client")
@click.option("--type", "type_", required=True, help="e.g. SEND_REMINDER, GENERATE_DELIVERABLE.")
@click.option("--template", help="The email template, for email automations.")
@click.option("--month", type=int)
@click.option(
    "--at",
    type=UTC_TIME,
    help="When: YYYY-MM-DD HH:MM in UTC, or with an offset (default: now).",
)
@friendly
def automations_schedule(
    client: str, type_: str, template: str | None, month: int | None, at: datetime | None
) -> None:
    """Schedule one automation by hand."""
    ctx = journey_context()
    a = controls.schedule_by_hand(
        ctx,
        lookups.find_client(ctx, client),
        type_.upper(),
        month=month,
        template=template.upper() if template else None,
        at=at,
    )
    commit()
    click.echo(f"automation {a.id} scheduled for {a.trigger_at:%Y-%m-%d %H:%M} UTC")


COMMANDS = [automations]
