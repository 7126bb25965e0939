"""`journey clients` and `journey timeline`: enroll, list, and read one client's journey."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from scheduler import enrollment, lookups, outcomes, overview, timeline
from scheduler.models import Automation, Client
from scheduler.progress import generation_progress
from scheduler.vocab import AutomationStatus, status_label
from web import journey_context
from web.api import serialize
from web.cli.common import DATE, commit, describe, friendly
from web.extensions import db


@click.group(cls=AppGroup)
def clients() -> None:
    """Enroll and list clients."""


@clients.command("add")
@click.argument("name")
@click.argument("email")
@click.option("--start-date", type=DATE, required=True, help="Program start, YYYY-MM-DD.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--onboarding", type=click.File("r"), help="JSON file of onboarding answers.")
@click.option("--business-plan", type=click.File("r"), help="Text file of the business plan.")
@friendly
def clients_add(
    name: str, email: str, start_date: date, timezone: str, onboarding: Any, business_plan: Any
) -> None:
    """Enroll a client and plan the whole journey."""
    answers: dict[str, Any] = {}
    if onboarding is not None:
        try:
            answers = json.load(onboarding)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--onboarding") from None
        if not isinstance(answers, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--onboarding")
    client = enrollment.enroll(
        journey_context(),
        name=name,
        email=email,
        start_date=start_date,
        timezone=timezone,
        onboarding=answers,
        business_plan=business_plan.read() if business_plan else "",
    )
    commit()
    planned = db.session.scalar(
        select(func.count()).where(
            Automation.client_id == client.id, Automation.status == AutomationStatus.SCHEDULED
        )
    )
    click.echo(
        f"enrolled {client.name} <{client.email}> as client {client.id}: "
        f"{planned} automations scheduled"
    )


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per client.")
def clients_list(as_json: bool) -> None:
    """List every client."""
    rows = list(db.session.scalars(select(Client).order_by(Client.id)))
    found = overview.statuses(journey_context(), [c.id for c in rows])
    for c in rows:
        if as_json:
            click.echo(json.dumps(serialize.client(c, found[c.id])))
        else:
            status = status_label(found[c.id])
            click.echo(f"{c.id:>5}  {c.name:<28} {c.email:<32} M{c.current_month}  {status}")


@click.command("timeline")
@click.argument("client")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@with_appcontext
@friendly
def timeline_cmd(client: str, as_json: bool) -> None:
    """Show a client's journey: months, the next 30 days, history."""
    ctx = journey_context()
    t = timeline.build(ctx, lookups.find_client(ctx, client))
    c = t.client
    if as_json:
        status = overview.client_status(ctx, c)
        expected = outcomes.upcoming(ctx, c, t.upcoming)
        progress = generation_progress(ctx, t.client)
        click.echo(json.dumps(serialize.timeline_json(t, progress, status, expected), indent=2))
        return
    state = status_label(overview.client_status(ctx, c))
    click.echo(f"{c.name} <{c.email}>  ·  {c.timezone}  ·  start {c.start_date}  ·  {state}")
    click.echo(
        f"current month M{t.current}  ·  {t.done}/{len(t.months)} months done ({t.percent}%)"
        f"  ·  {c.held_days} day(s) on hold so far"
    )
    click.echo("")
    for m in t.months:
        opened = "  (opened)" if m.opened else ""
        note = f"  ({m.note})" if m.note else ""
        click.echo(f"  M{m.month}  {m.date:%a %b %d %Y}  {m.title:<28} {m.state}{opened}{note}")
    click.echo("\nnext 30 days:")
    for a, e in zip(t.upcoming, outcomes.upcoming(ctx, c, t.upcoming), strict=True):
        click.echo(f"  {a.trigger_at:%Y-%m-%d %H:%M} UTC  #{a.id:<6} {describe(a)}: {e.text}")
    if not t.upcoming:
        click.echo("  nothing scheduled")
    if t.holds:
        click.echo("\nholds:")
        for h in t.holds:
            end = (
                f"{h.end_date} ({h.days} days)"
                if h.ended_at
                else (f"until {h.until}" if h.until else "open-ended")
            )
            click.echo(f"  {h.start_date} → {end}  {h.reason}")
    click.echo("\nhistory (latest first):")
    for entry in t.history[:20]:
        month = f" M{entry.month}" if entry.month else ""
        click.echo(
            f"  {entry.at:%Y-%m-%d %H:%M} UTC  {entry.type}{month} {entry.template or ''}  "
            f"{entry.status}: {entry.detail}"
        )
    if not t.history:
        click.echo("  nothing has run yet")


COMMANDS = [clients, timeline_cmd]
