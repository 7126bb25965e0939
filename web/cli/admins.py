"""`journey admins` and `journey tokens`: the people who run the program, and their API tokens."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from scheduler import errors, inputs
from scheduler.models import Admin
from web import journey_context
from web.cli.common import friendly
from web.extensions import db


@click.group(cls=AppGroup)
def admins() -> None:
    """The people who receive reviews, escalations and failures."""


def read_password(from_stdin: bool) -> str | None:
    """A new password: one line of standard input, or typed twice at a terminal; None when
    there is neither (the admin then gets emails but cannot log in)."""
    from web.auth import MIN_PASSWORD

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        return None
    if len(password) < MIN_PASSWORD:
        raise errors.Invalid(f"password: at least {MIN_PASSWORD} characters", "password")
    return password


@admins.command("create")
@click.argument("email")
@click.option("--name", default="")
@click.option("--timezone", default="UTC", show_default=True, help="For the weekly digest.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly
def admins_create(email: str, name: str, timezone: str, password_stdin: bool) -> None:
    """Create an admin, who can log in to the panel (idempotent: an existing admin is left
    as is; `admins password` changes a password)."""
    from web.auth import hash_password

    address = inputs.clean_email(email)
    zone = inputs.clean_zone(timezone)
    if db.session.scalar(select(Admin).where(Admin.email == address)) is not None:
        click.echo(f"admin {address} already exists")
        return
    password = read_password(password_stdin)
    db.session.add(
        Admin(
            email=address,
            name=name,
            timezone=zone,
            active=True,
            password_hash=hash_password(password) if password else None,
            created_at=journey_context().now(),
        )
    )
    db.session.commit()
    login = "can log in" if password else "has no password yet (`journey admins password`)"
    click.echo(f"admin {address} created; {login}")


@admins.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly
def admins_password(email: str, password_stdin: bool) -> None:
    """Set an admin's password (their other sessions end)."""
    from web.auth import hash_password

    admin = db.session.scalar(select(Admin).where(Admin.email == inputs.clean_email(email)))
    if admin is None:
        raise errors.NotFound(f"no admin {email}", "email")
    password = read_password(password_stdin)
    if password is None:
        raise errors.Invalid("password: type it at a terminal or use --password-stdin", "password")
    from scheduler.sessions import end_all

    admin.password_hash = hash_password(password)
    ended = end_all(db.session, admin.id, journey_context().now(), "password changed")
    db.session.commit()
    click.echo(f"password of {admin.email} changed; {ended} session(s) ended")


@admins.command("timezone")
@click.argument("email")
@click.argument("zone")
@friendly
def admins_timezone(email: str, zone: str) -> None:
    """Set the time zone an admin reads lists in (the panel's clients, log and dashboard, and
    the weekly digest)."""
    admin = db.session.scalar(select(Admin).where(Admin.email == inputs.clean_email(email)))
    if admin is None:
        raise errors.NotFound(f"no admin {email}", "email")
    admin.timezone = inputs.clean_zone(zone)
    db.session.commit()
    click.echo(f"{admin.email} reads times in {admin.timezone}")


@admins.command("list")
def admins_list() -> None:
    for a in db.session.scalars(select(Admin).order_by(Admin.id)):
        click.echo(f"{a.id:>4}  {a.email:<32} {a.name}  {'active' if a.active else 'inactive'}")


@click.group(cls=AppGroup)
def tokens() -> None:
    """API tokens: each belongs to an admin; the secret is shown once, only its hash is kept."""


@tokens.command("create")
@click.argument("admin_email")
@click.option("--name", default="", help="What the token is for (shown in listings).")
@friendly
def tokens_create(admin_email: str, name: str) -> None:
    """Create a token for an admin and print it (once)."""
    from web.api.tokens import issue

    address = inputs.clean_email(admin_email)
    admin = db.session.scalar(select(Admin).where(Admin.email == address))
    if admin is None:
        raise errors.NotFound(f"no admin {address} (add one with `journey admins add`)", "admin")
    if not admin.active:
        raise errors.Conflict(f"admin {address} is not active")
    token, raw = issue(db.session, admin, name, journey_context().now())
    db.session.commit()
    click.echo(f"token {token.id} for {address}{f' ({token.name})' if token.name else ''}:")
    click.echo(raw)
    click.echo("Keep it now: it cannot be shown again. Send it as `Authorization: Bearer <token>`.")


@tokens.command("list")
def tokens_list() -> None:
    """List tokens (prefixes only)."""
    from scheduler.models import ApiToken

    for t in db.session.scalars(select(ApiToken).order_by(ApiToken.id)):
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        click.echo(
            f"{t.id:>4}  {t.prefix}…  {t.admin.email:<32} {t.name or '-':<20} {state}, {used}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@friendly
def tokens_revoke(token_id: int) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from scheduler.models import ApiToken
    from web.api.tokens import revoke

    token = db.session.get(ApiToken, token_id) if 0 < token_id < 2**63 else None
    if token is None:
        raise errors.NotFound(f"no token {token_id}", "token")
    if revoke(db.session, token, journey_context().now()):
        db.session.commit()
        click.echo(f"token {token_id} revoked")
    else:
        click.echo(f"token {token_id} was already revoked")


COMMANDS = [admins, tokens]
