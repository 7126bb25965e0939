"""`journey program` and `journey emails`: the program definition and the emails it sends."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask.cli import AppGroup
from sqlalchemy import select

from scheduler import errors, lookups, programs, replan
from scheduler.models import Admin, Client
from scheduler.program import ProgramError, load_program
from web import journey_context
from web.cli.common import commit, friendly
from web.extensions import db


@click.group(cls=AppGroup)
def program() -> None:
    """The program definition (months, offsets)."""


@program.command("check", with_appcontext=False)
@click.argument("path", type=click.Path(dir_okay=False))
def program_check(path: str) -> None:
    """Validate a program file."""
    try:
        p = load_program(path)
    except ProgramError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"ok: {p.name}, {p.length} months")


@program.command("show")
def program_show() -> None:
    """Print the program new enrollments get (the current version)."""
    ctx = journey_context()
    p = ctx.program
    click.echo(f"{p.name} ({p.length} months), version {ctx.current_version()}")
    for m in p.months:
        click.echo(f"  M{m.number}  {m.title}: {', '.join(m.deliverables)}")
    click.echo(f"schedule: {p.schedule}")


def actor(by: str | None) -> str:
    """Who acts: --by, else the account running the command."""
    return (by or f"cli:{getpass.getuser()}").strip()[:254]


APPLIES = click.Choice(list(replan.APPLIES))
APPLIES_HELP = "new: new enrollments only; all: also the clients in flight (replanned)."


@program.command("versions")
@friendly
def program_versions() -> None:
    """List the versions (and the draft), with how many clients in flight run each."""
    ctx = journey_context()
    on = programs.clients_on(ctx)
    current = ctx.current_version()
    for row in programs.published(ctx):
        mark = "*" if row.number == current else " "
        when = f"{row.published_at:%Y-%m-%d %H:%M} UTC" if row.published_at else ""
        click.echo(
            f"{mark} v{row.number}  {when}  by {row.published_by}  "
            f"{on.get(row.number or 0, 0)} client(s) in flight  {row.note}".rstrip()
        )
    found = programs.draft(ctx)
    if found is not None:
        click.echo(f"  draft (from v{found.based_on}) by {found.created_by}  {found.note}".rstrip())
    commit()


@program.command("edit")
@click.argument("path", required=False, type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--template",
    "templates",
    multiple=True,
    nargs=2,
    metavar="NAME FILE",
    help="Set an email template of the draft (REMINDER_UPCOMING.txt, ….html) from FILE.",
)
@click.option("--note", help="What the draft changes.")
@click.option("--by", help="Who edits (default: the account running the command).")
@friendly
def program_edit(
    path: str | None, templates: tuple[tuple[str, str], ...], note: str | None, by: str | None
) -> None:
    """Change the draft: its program from a TOML file (checked like `program check`), and/or
    email templates."""
    ctx = journey_context()
    definition = None
    if path:
        definition = programs.program_data(programs.check_toml(Path(path).read_text("utf-8")))
    sources = {name: Path(file).read_text("utf-8") for name, file in templates} or None
    row = programs.update_draft(ctx, actor(by), definition=definition, templates=sources, note=note)
    commit()
    click.echo(f"draft saved (from v{row.based_on})")


@program.command("discard")
@friendly
def program_discard() -> None:
    """Throw the draft away."""
    programs.discard_draft(journey_context())
    commit()
    click.echo("draft discarded")


@program.command("diff")
@click.argument("old")
@click.argument("new", default="draft")
@friendly
def program_diff(old: str, new: str) -> None:
    """What changed from version OLD to NEW (a number, or `draft`, the default)."""
    ctx = journey_context()
    found = programs.diff(ctx, programs.find(ctx, old), programs.find(ctx, new))
    for field, a, b in found.program:
        click.echo(f"{field}: {a} -> {b}")
    for text in found.templates.values():
        click.echo(text.rstrip("\n"))
    if not found.program and not found.templates:
        click.echo("no difference")


def show_impact(seen: replan.Impact, limit: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(seen.as_dict(limit), indent=2))
        return
    click.echo(seen.summary())
    for client in seen.clients[:limit]:
        tz = ZoneInfo(client.timezone)
        click.echo(
            f"  {client.name} (#{client.client_id}, {client.timezone}, v{client.from_version})"
        )
        for ch in client.changes:
            old = f"{ch.old_at.astimezone(tz):%Y-%m-%d %H:%M}" if ch.old_at else "-"
            new = f"{ch.new_at.astimezone(tz):%Y-%m-%d %H:%M}" if ch.new_at else "-"
            late = "  (past: skipped)" if ch.late else ""
            click.echo(f"    {ch.kind:<10} {ch.name}: {old} -> {new}{late}")
    if len(seen.clients) > limit:
        click.echo(f"  … and {len(seen.clients) - limit} more client(s)")


@program.command("preview")
@click.option("--applies-to", type=APPLIES, default=replan.IN_FLIGHT, help=APPLIES_HELP)
@click.option("--rollback-to", type=int, help="Preview rolling back to this version instead.")
@click.option("--limit", type=click.IntRange(0), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def program_preview(applies_to: str, rollback_to: int | None, limit: int, as_json: bool) -> None:
    """What publishing the draft (or rolling back) would do to the clients in flight."""
    ctx = journey_context()
    target = programs.get_version(ctx, rollback_to) if rollback_to else None
    show_impact(programs.preview(ctx, applies_to, target), limit, as_json)
    ctx.rollback()


@program.command("publish")
@click.option("--applies-to", type=APPLIES, required=True, help=APPLIES_HELP)
@click.option("--note", help="What this version changes.")
@click.option("--by", help="Who publishes (default: the account running the command).")
@friendly
def program_publish(applies_to: str, note: str | None, by: str | None) -> None:
    """Publish the draft as the next version."""
    done = programs.publish(journey_context(), actor(by), applies_to, note)
    summary = done.impact.summary()
    number = done.version.number
    commit()
    click.echo(f"published version {number}: {summary}")


@program.command("rollback")
@click.argument("version", type=int)
@click.option("--applies-to", type=APPLIES, required=True, help=APPLIES_HELP)
@click.option("--by", help="Who rolls back (default: the account running the command).")
@friendly
def program_rollback(version: int, applies_to: str, by: str | None) -> None:
    """Publish VERSION's program and emails again, as the next version."""
    done = programs.rollback(journey_context(), actor(by), version, applies_to)
    summary = done.impact.summary()
    number = done.version.number
    commit()
    click.echo(f"published version {number} (version {version} again): {summary}")


@program.command("export")
@click.argument("version")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file.")
@friendly
def program_export(version: str, out: str | None) -> None:
    """Print VERSION's program as TOML (`program check` reads it back)."""
    ctx = journey_context()
    row = programs.find(ctx, version)
    text = programs.to_toml(programs.check_program(row.definition))
    if out:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@click.group("emails", cls=AppGroup)
def emails_group() -> None:
    """The emails the journey sends."""


@emails_group.command("preview")
@click.argument("template")
@click.option("--client", "client_ref", help="Client id or email (default: the first client).")
@click.option("--admin", "admin_email", help="For WEEKLY_DIGEST: the admin it is for.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="email-preview",
    show_default=True,
    help="Folder for TEMPLATE.html and TEMPLATE.txt.",
)
@friendly
def emails_preview(
    template: str, client_ref: str | None, admin_email: str | None, out: str
) -> None:
    """Render TEMPLATE for a client (nothing is sent) into OUT/TEMPLATE.html and .txt."""
    from scheduler import digest, emails, overview
    from scheduler.vocab import Template

    ctx = journey_context()
    try:
        chosen = Template(template.upper())
    except ValueError:
        names = ", ".join(t.value for t in Template)
        raise errors.Invalid(
            f"unknown template {template!r} (one of {names})", "template"
        ) from None
    if chosen is Template.WEEKLY_DIGEST:
        query = select(Admin).order_by(Admin.id)
        if admin_email:
            query = query.where(Admin.email == admin_email.strip().lower())
        admin = db.session.scalars(query).first()
        if admin is None:
            raise errors.NotFound(
                "no such admin: add one with `journey admins create EMAIL`", "admin"
            )
        # As it would go today: the week before today, and today with the six days after.
        today = overview.local_today(ctx, admin.timezone)
        rendered = digest.render_for(ctx, admin, today)
    else:
        if client_ref:
            client = lookups.find_client(ctx, client_ref)
        else:
            client = db.session.scalars(select(Client).order_by(Client.id)).first()
            if client is None:
                raise errors.NotFound("no client yet: enroll one, or run `journey demo`", "client")
        try:
            rendered = emails.preview(ctx, chosen, client)
        except emails.MissingVariable as exc:
            raise errors.Conflict(str(exc), "template") from None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    html, text = folder / f"{chosen}.html", folder / f"{chosen}.txt"
    html.write_text(rendered.html, encoding="utf-8")
    text.write_text(f"Subject: {rendered.subject}\n\n{rendered.text}", encoding="utf-8")
    click.echo(f"Subject: {rendered.subject}")
    click.echo(f"wrote {html} and {text}")


COMMANDS = [program, emails_group]
