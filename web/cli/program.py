"""`journey program` and `journey emails`: the program definition and the emails it sends."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from scheduler import errors, lookups
from scheduler.models import Admin, Client
from scheduler.program import ProgramError, load_program
from web import journey_context
from web.cli.common import friendly
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
    """Print the program in use."""
    p = journey_context().program
    click.echo(f"{p.name} ({p.length} months)")
    for m in p.months:
        click.echo(f"  M{m.number}  {m.title}: {', '.join(m.deliverables)}")
    click.echo(f"schedule: {p.schedule}")


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
