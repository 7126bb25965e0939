"""`journey clients` and `journey timeline`: enroll, list, and read one client's journey."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from scheduler import (
    editing,
    enrollment,
    errors,
    imports,
    lookups,
    outcomes,
    overview,
    timeline,
)
from scheduler.models import Admin, Automation, Client
from scheduler.progress import generation_progress
from scheduler.vocab import AutomationStatus, ClientStatus, status_label
from web import journey_context
from web.api import serialize
from web.cli.common import DATE, commit, describe, friendly, risk_words
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


@clients.command("edit")
@click.argument("client")
@click.option("--name", help="New name.")
@click.option("--email", help="New email address.")
@click.option("--timezone", help="New IANA time zone: pending sends keep their local time.")
@click.option("--coach", help="The coach's email (an admin), or 'none' for every admin.")
@click.option("--dry-run", is_flag=True, help="Say what would change, change nothing.")
@friendly
def clients_edit(
    client: str,
    name: str | None,
    email: str | None,
    timezone: str | None,
    coach: str | None,
    dry_run: bool,
) -> None:
    """Change a client's details; a new time zone moves every pending send with them."""
    ctx = journey_context()
    found = lookups.find_client(ctx, client)
    coach_id: Any = editing.UNSET
    if coach is not None:
        coach_id = None if coach.lower() == "none" else coach_by_email(coach)
    old_zone = found.timezone
    moves = editing.edit(ctx, found, name=name, email=email, timezone=timezone, coach_id=coach_id)
    db.session.flush()
    for m in moves:
        click.echo(
            f"  {m.name}: {m.before.astimezone(ZoneInfo(old_zone)):%a %d %b %Y %H:%M} "
            f"{old_zone} -> {m.after.astimezone(ZoneInfo(found.timezone)):%a %d %b %Y %H:%M} "
            f"{found.timezone}"
        )
    if dry_run:
        ctx.rollback()
        click.echo(f"dry run: nothing changed ({len(moves)} sends would move)")
        return
    commit()
    click.echo(f"saved: {found.name} <{found.email}>, {len(moves)} sends moved")


def coach_by_email(email: str) -> int:
    admin = db.session.scalar(select(Admin).where(Admin.email == email.strip().lower()))
    if admin is None:
        raise errors.NotFound(f"coach: no admin {email}", "coach")
    return admin.id


@clients.command("offboard")
@click.argument("client")
@click.option("--reason", required=True, help="Why the journey ends early.")
@friendly
def clients_offboard(client: str, reason: str) -> None:
    """End a journey early: everything pending is cancelled, with the reason."""
    ctx = journey_context()
    found = lookups.find_client(ctx, client)
    cancelled = editing.offboard(ctx, found, reason)
    commit()
    click.echo(f"the journey of {found.name} has ended; {cancelled} automations cancelled")


@clients.command("delete")
@click.argument("client")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def clients_delete(client: str, yes: bool) -> None:
    """Erase a client and everything kept about them (the right to erasure)."""
    ctx = journey_context()
    found = lookups.find_client(ctx, client)
    goes = editing.summary(editing.erasure(ctx, found))
    click.echo(f"erasing {found.name} <{found.email}> deletes {goes}")
    if not yes and not click.confirm("erase, for good?", default=False):
        click.echo("nothing erased")
        sys.exit(1)
    removed = editing.summary(editing.erase(ctx, found))
    commit()
    click.echo(f"erased: {removed}")


@clients.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--dry-run", is_flag=True, help="Check every row and say what would happen.")
@friendly
def clients_import(file: Any, dry_run: bool) -> None:
    """Enroll clients from a CSV file (name, email, timezone, start_date, coach, and any other
    column as an onboarding answer): all of them, or none when a row is wrong. Rows already
    enrolled with the same name and start are left as they are, so a second run changes
    nothing."""
    ctx = journey_context()
    text = file.read()
    report = imports.dry_run(ctx, text)
    for row in report.errors:
        click.echo(f"line {row.line}: {'; '.join(row.errors)}", err=True)
    if dry_run or report.errors:
        click.echo(("dry run: " if dry_run else "") + report.summary())
        if report.errors:
            sys.exit(2)
        return
    db.session.rollback()
    with click.progressbar(length=len(report.new), label="enrolling", file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        done = imports.run(ctx, text, progress)
    commit()
    click.echo(done.summary())


@clients.command("export")
@click.option("--q", default="", help="Only names or emails containing this.")
@click.option("--status", default="", type=click.Choice(["", *[s.value for s in ClientStatus]]))
@click.option("--sort", default="name", type=click.Choice(list(overview.SORTS)))
@friendly
def clients_export(q: str, status: str, sort: str) -> None:
    """The clients list as CSV, on standard output (the panel's filters)."""
    for chunk in imports.clients_csv(journey_context(), q=q, status=status, sort=sort):
        click.echo(chunk, nl=False)


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
    if t.risk is not None:
        click.echo(f"risk score: {risk_words(t.risk)}")
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


@click.command("log-export")
@click.option("--client", default="", help="Id, email or part of a name.")
@click.option("--type", "type_", default="", help="Automation type.")
@click.option("--status", default="", help="Log status (COMPLETED, SKIPPED...).")
@click.option("--from", "start", type=DATE, help="From this day (UTC), YYYY-MM-DD.")
@click.option("--to", "end", type=DATE, help="To this day (UTC), inclusive.")
@click.option("--actor", default="", help="Who acted (part of their email), or 'engine'.")
@with_appcontext
@friendly
def log_export_cmd(
    client: str, type_: str, status: str, start: date | None, end: date | None, actor: str
) -> None:
    """The automation log as CSV, on standard output, newest first (the panel's filters)."""
    where = overview.log_filter(
        client=client, type=type_, status=status, start=start, end=end, actor=actor
    )
    for chunk in imports.log_csv(journey_context(), where):
        click.echo(chunk, nl=False)


COMMANDS = [clients, timeline_cmd, log_export_cmd]
