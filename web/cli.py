"""The `journey` command: every operator command, over the app factory."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from flask.cli import FlaskGroup
from sqlalchemy import func, select

from scheduler import journey as ops
from scheduler import timeline
from scheduler.models import Admin, Automation, Client
from scheduler.program import ProgramError, load_program
from scheduler.vocab import AutomationStatus
from web import create_app, journey_context
from web.config import ConfigError
from web.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

DATE = click.DateTime(formats=["%Y-%m-%d"])


def friendly(fn: F) -> F:
    """Turn the engine's refusals into a message and a non-zero exit, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ops.JourneyError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2 if isinstance(exc, ops.Invalid) else 1)

    return wrapper  # type: ignore[return-value]


def app_factory() -> Any:
    try:
        return create_app()
    except (ConfigError, ProgramError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


cli = FlaskGroup(
    name="journey",
    create_app=app_factory,
    help="Journey Engine: plan and carry out every client's journey.",
)


def main() -> None:
    cli.main(prog_name="journey")


def as_date(value: datetime | None) -> date | None:
    return value.date() if value else None


def commit() -> None:
    journey_context().commit()


# -- clients -----------------------------------------------------------------------------------


@cli.group()
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
    name: str, email: str, start_date: datetime, timezone: str, onboarding: Any, business_plan: Any
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
    client = ops.enroll(
        journey_context(),
        name=name,
        email=email,
        start_date=start_date.date(),
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
    for c in db.session.scalars(select(Client).order_by(Client.id)):
        status = "completed" if c.completed_at else "on hold" if c.paused_at else "active"
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": c.id,
                        "name": c.name,
                        "email": c.email,
                        "timezone": c.timezone,
                        "start_date": c.start_date.isoformat(),
                        "current_month": c.current_month,
                        "status": status,
                    }
                )
            )
        else:
            click.echo(f"{c.id:>5}  {c.name:<28} {c.email:<32} M{c.current_month}  {status}")


# -- the journey -------------------------------------------------------------------------------


@cli.command("timeline")
@click.argument("client")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@friendly
def timeline_cmd(client: str, as_json: bool) -> None:
    """Show a client's journey: months, the next 30 days, history."""
    ctx = journey_context()
    t = timeline.build(ctx, ops.find_client(ctx, client))
    c = t.client
    if as_json:
        click.echo(json.dumps(timeline_json(t), indent=2))
        return
    state = "completed" if c.completed_at else "ON HOLD" if c.paused_at else "active"
    click.echo(f"{c.name} <{c.email}>  ·  {c.timezone}  ·  start {c.start_date}  ·  {state}")
    click.echo(
        f"current month M{t.current}  ·  {t.done}/{len(t.months)} months done ({t.percent}%)"
        f"  ·  {c.held_days} day(s) on hold so far"
    )
    click.echo("")
    for m in t.months:
        opened = "  (opened)" if m.opened else ""
        click.echo(f"  M{m.month}  {m.date:%a %b %d %Y}  {m.title:<28} {m.state}{opened}")
    click.echo("\nnext 30 days:")
    for a in t.upcoming:
        click.echo(f"  {a.trigger_at:%Y-%m-%d %H:%M} UTC  #{a.id:<6} {describe(a)}")
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


def describe(a: Automation) -> str:
    month = f" M{a.month}" if a.month else ""
    template = f" {a.template}" if a.template else ""
    return f"{a.type}{month}{template}"


def timeline_json(t: timeline.Timeline) -> dict[str, Any]:
    c = t.client
    return {
        "client": {
            "id": c.id,
            "name": c.name,
            "email": c.email,
            "timezone": c.timezone,
            "start_date": c.start_date.isoformat(),
            "paused": c.paused_at is not None,
            "completed": c.completed_at is not None,
            "held_days": c.held_days,
        },
        "current_month": t.current,
        "months_done": t.done,
        "percent": t.percent,
        "months": [
            {
                "month": m.month,
                "title": m.title,
                "date": m.date.isoformat(),
                "state": m.state,
                "opened": m.opened,
            }
            for m in t.months
        ],
        "upcoming": [automation_json(a) for a in t.upcoming],
        "holds": [
            {
                "start_date": h.start_date.isoformat(),
                "until": h.until.isoformat() if h.until else None,
                "end_date": h.end_date.isoformat() if h.end_date else None,
                "days": h.days,
                "reason": h.reason,
            }
            for h in t.holds
        ],
    }


def automation_json(a: Automation) -> dict[str, Any]:
    return {
        "id": a.id,
        "client_id": a.client_id,
        "type": a.type,
        "month": a.month,
        "template": a.template,
        "status": a.status,
        "trigger_at": a.trigger_at.isoformat(),
        "source": a.source,
        "retry_count": a.retry_count,
        "detail": a.detail,
        "error": a.error,
    }


@cli.command("approve")
@click.argument("client")
@click.argument("month", type=int)
@friendly
def approve_cmd(client: str, month: int) -> None:
    """Approve a month's deliverable: delivered to the client now."""
    ctx = journey_context()
    d = ops.approve(ctx, ops.find_client(ctx, client), month)
    commit()
    click.echo(f"M{month} v{d.version} delivered")


@cli.command("reject")
@click.argument("client")
@click.argument("month", type=int)
@click.option("--notes", default="", help="What to change.")
@friendly
def reject_cmd(client: str, month: int, notes: str) -> None:
    """Reject a month's deliverable, with notes."""
    ctx = journey_context()
    d = ops.reject(ctx, ops.find_client(ctx, client), month, notes)
    commit()
    click.echo(f"M{month} v{d.version} rejected")


@cli.command("generate")
@click.argument("client")
@click.argument("month", type=int)
@click.option("--notes", default="", help="Guidance for this version.")
@friendly
def generate_cmd(client: str, month: int, notes: str) -> None:
    """Generate a month's deliverable by hand, now (cancels its scheduled generation)."""
    ctx = journey_context()
    a = ops.generate_by_hand(ctx, ops.find_client(ctx, client), month, notes)
    commit()
    click.echo(f"generation of M{month} queued as automation {a.id}")


@cli.command("opened")
@click.argument("client")
@click.argument("month", type=int)
@friendly
def opened_cmd(client: str, month: int) -> None:
    """Record that the client opened a month's deliverable."""
    ctx = journey_context()
    ops.open_deliverable(ctx, ops.find_client(ctx, client), month)
    commit()
    click.echo(f"M{month} marked opened")


@cli.command("business-plan-approved")
@click.argument("client")
@friendly
def business_plan_cmd(client: str) -> None:
    """Record the business plan's approval: month 1 is generated at once if it has not been."""
    ctx = journey_context()
    a = ops.approve_business_plan(ctx, ops.find_client(ctx, client))
    commit()
    click.echo("business plan approved" + (f"; M1 generation is automation {a.id}" if a else ""))


@cli.command("pause")
@click.argument("client")
@click.option("--until", type=DATE, help="Local date the hold ends by itself, YYYY-MM-DD.")
@click.option("--reason", default="", help="Why (shown to admins and in the email).")
@friendly
def pause_cmd(client: str, until: datetime | None, reason: str) -> None:
    """Put a client on hold: nothing fires until the hold ends."""
    ctx = journey_context()
    hold = ops.pause(ctx, ops.find_client(ctx, client), until=as_date(until), reason=reason)
    commit()
    click.echo(f"on hold from {hold.start_date}" + (f" until {hold.until}" if hold.until else ""))


@cli.command("resume")
@click.argument("client")
@friendly
def resume_cmd(client: str) -> None:
    """End a client's hold: the journey moves later by the days paused."""
    ctx = journey_context()
    hold = ops.resume(ctx, ops.find_client(ctx, client))
    commit()
    click.echo(f"resumed: the journey moved {hold.days} day(s) later")


@cli.command("adjust")
@click.argument("client")
@click.option("--start-date", type=DATE, required=True, help="New program start, YYYY-MM-DD.")
@friendly
def adjust_cmd(client: str, start_date: datetime) -> None:
    """Change the program start date: every pending step is recomputed."""
    ctx = journey_context()
    moved = ops.adjust(ctx, ops.find_client(ctx, client), start_date.date())
    commit()
    click.echo(f"start date is now {start_date:%Y-%m-%d}; {moved} automation(s) moved")


@cli.command("skip")
@click.argument("client")
@click.argument("month", type=int)
@friendly
def skip_cmd(client: str, month: int) -> None:
    """Skip a month: its automations are cancelled and it counts as done."""
    ctx = journey_context()
    ops.skip_month(ctx, ops.find_client(ctx, client), month)
    commit()
    click.echo(f"M{month} skipped")


# -- automations -------------------------------------------------------------------------------


@cli.group()
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
        query = query.where(Automation.client_id == ops.find_client(journey_context(), client).id)
    if status:
        query = query.where(Automation.status == status)
    for a in db.session.scalars(query):
        if as_json:
            click.echo(json.dumps(automation_json(a)))
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
    ops.cancel(ctx, ops.find_automation(ctx, automation_id))
    commit()
    click.echo(f"automation {automation_id} cancelled")


@automations.command("trigger")
@click.argument("automation_id", type=int)
@friendly
def automations_trigger(automation_id: int) -> None:
    """Run a scheduled (or failed) automation now."""
    ctx = journey_context()
    ops.trigger_now(ctx, ops.find_automation(ctx, automation_id))
    commit()
    click.echo(f"automation {automation_id} runs now")


@automations.command("schedule")
@click.argument("client")
@click.option("--type", "type_", required=True, help="e.g. SEND_REMINDER, GENERATE_DELIVERABLE.")
@click.option("--template", help="The email template, for email automations.")
@click.option("--month", type=int)
@click.option(
    "--at",
    type=click.DateTime(
        formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
    ),
    help="When, in UTC (default: now).",
)
@friendly
def automations_schedule(
    client: str, type_: str, template: str | None, month: int | None, at: datetime | None
) -> None:
    """Schedule one automation by hand."""
    ctx = journey_context()
    a = ops.schedule_by_hand(
        ctx,
        ops.find_client(ctx, client),
        type_.upper(),
        month=month,
        template=template.upper() if template else None,
        at=at.replace(tzinfo=UTC) if at else None,
    )
    commit()
    click.echo(f"automation {a.id} scheduled for {a.trigger_at:%Y-%m-%d %H:%M} UTC")


# -- admins, operations ------------------------------------------------------------------------


@cli.group()
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
        raise ops.Invalid(f"password: at least {MIN_PASSWORD} characters", "password")
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

    address = ops.clean_email(email)
    zone = ops.clean_zone(timezone)
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

    admin = db.session.scalar(select(Admin).where(Admin.email == ops.clean_email(email)))
    if admin is None:
        raise ops.NotFound(f"no admin {email}", "email")
    password = read_password(password_stdin)
    if password is None:
        raise ops.Invalid("password: type it at a terminal or use --password-stdin", "password")
    from scheduler.sessions import end_all

    admin.password_hash = hash_password(password)
    ended = end_all(db.session, admin.id, journey_context().now(), "password changed")
    db.session.commit()
    click.echo(f"password of {admin.email} changed; {ended} session(s) ended")


@admins.command("list")
def admins_list() -> None:
    for a in db.session.scalars(select(Admin).order_by(Admin.id)):
        click.echo(f"{a.id:>4}  {a.email:<32} {a.name}  {'active' if a.active else 'inactive'}")


# -- API tokens --------------------------------------------------------------------------------


@cli.group()
def tokens() -> None:
    """API tokens: each belongs to an admin; the secret is shown once, only its hash is kept."""


@tokens.command("create")
@click.argument("admin_email")
@click.option("--name", default="", help="What the token is for (shown in listings).")
@friendly
def tokens_create(admin_email: str, name: str) -> None:
    """Create a token for an admin and print it (once)."""
    from web.api.tokens import issue

    address = ops.clean_email(admin_email)
    admin = db.session.scalar(select(Admin).where(Admin.email == address))
    if admin is None:
        raise ops.NotFound(f"no admin {address} (add one with `journey admins add`)", "admin")
    if not admin.active:
        raise ops.Conflict(f"admin {address} is not active")
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
        raise ops.NotFound(f"no token {token_id}", "token")
    if revoke(db.session, token, journey_context().now()):
        db.session.commit()
        click.echo(f"token {token_id} revoked")
    else:
        click.echo(f"token {token_id} was already revoked")


@cli.command("sweep")
@click.option("--every", type=click.FloatRange(min=0.1), help="Keep sweeping, every N seconds.")
def sweep_cmd(every: float | None) -> None:
    """Run the sweep now: hand due automations to the workers, take back dead workers' ones.
    (Production runs it every minute from periodiq; --every is a stand-in where periodiq is not.)"""
    import time

    from scheduler.sweep import sweep

    while True:
        try:
            report = sweep(journey_context())
            click.echo(
                f"{report.at:%Y-%m-%d %H:%M:%S} UTC  dispatched {report.dispatched}, "
                f"reclaimed {report.reclaimed}, overdue {report.overdue}"
            )
        except Exception as exc:
            if every is None:
                raise
            # Keep going: the database or broker may be back by the next round.
            click.echo(f"sweep failed ({type(exc).__name__}: {exc}); retrying", err=True)
        if every is None:
            return
        db.session.remove()
        time.sleep(every)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve_cmd(host: str, port: int) -> None:
    """Serve the app with an embedded worker and sweep (the no-Redis, one-process mode)."""
    from flask import current_app
    from werkzeug.serving import run_simple

    from tasks.embedded import Embedded

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    embedded = None
    if not app.config["REDIS_URL"]:
        embedded = Embedded(app)
        embedded.start()
    else:
        click.echo("REDIS_URL is set: run `dramatiq tasks.worker` and `periodiq tasks.worker` too")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if embedded is not None:
            embedded.stop()


@cli.command("demo")
@click.option("--if-empty", is_flag=True, help="Only when there is no client yet.")
@click.option(
    "--allow-known-password",
    is_flag=True,
    help="Outside the embedded default, load it anyway: its admin's password is published.",
)
def demo_cmd(if_empty: bool, allow_known_password: bool) -> None:
    """Load a few demo clients at different points of their journey (the embedded default
    only: the demo's admin has a password anyone can read in the README)."""
    from flask import current_app

    from web.config import embedded
    from web.demo import DEMO_LOGIN, DEMO_PASSWORD, load_demo

    if not embedded(current_app.config) and not allow_known_password:
        click.echo(
            f"error: the demo's admin logs in with a published password ({DEMO_LOGIN} / "
            f"{DEMO_PASSWORD}), and this is not the embedded default (REDIS_URL is set or the "
            "database is not SQLite): nothing loaded. To load it anyway, add "
            "--allow-known-password, then change that password at once with "
            f"`journey admins password {DEMO_LOGIN}`.",
            err=True,
        )
        sys.exit(2)
    if if_empty and db.session.scalar(select(func.count()).select_from(Client)):
        click.echo("demo: clients already exist, nothing loaded")
        return
    names = load_demo(journey_context())
    click.echo(f"demo: enrolled {', '.join(names)}")
    click.echo(f"demo: log in to the panel as {DEMO_LOGIN} with password {DEMO_PASSWORD}")


@cli.group()
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


# -- emails ------------------------------------------------------------------------------------


@cli.group("emails")
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
    from scheduler import digest, emails
    from scheduler.vocab import Template

    ctx = journey_context()
    try:
        chosen = Template(template.upper())
    except ValueError:
        names = ", ".join(t.value for t in Template)
        raise ops.Invalid(f"unknown template {template!r} (one of {names})", "template") from None
    if chosen is Template.WEEKLY_DIGEST:
        query = select(Admin).order_by(Admin.id)
        if admin_email:
            query = query.where(Admin.email == admin_email.strip().lower())
        admin = db.session.scalars(query).first()
        if admin is None:
            raise ops.NotFound("no such admin: add one with `journey admins create EMAIL`", "admin")
        _, due = digest.week_of(ctx.now(), admin.timezone)
        rendered = digest.render_for(ctx, admin, due)
    else:
        if client_ref:
            client = ops.find_client(ctx, client_ref)
        else:
            client = db.session.scalars(select(Client).order_by(Client.id)).first()
            if client is None:
                raise ops.NotFound("no client yet: enroll one, or run `journey demo`", "client")
        try:
            rendered = emails.preview(ctx, chosen, client)
        except emails.MissingVariable as exc:
            raise ops.Conflict(str(exc), "template") from None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    html, text = folder / f"{chosen}.html", folder / f"{chosen}.txt"
    html.write_text(rendered.html, encoding="utf-8")
    text.write_text(f"Subject: {rendered.subject}\n\n{rendered.text}", encoding="utf-8")
    click.echo(f"Subject: {rendered.subject}")
    click.echo(f"wrote {html} and {text}")


@cli.command("simulate", with_appcontext=False)
@click.argument("scenario", type=click.Path(dir_okay=False, allow_dash=True))
def simulate_cmd(scenario: str) -> None:
    """Run a scenario through the real engine on simulated time; print JSON lines."""
    import logging

    from scheduler.simulate import ScenarioError, load_scenario, simulate

    logging.getLogger("scheduler").setLevel(logging.ERROR)  # outcomes are in the output
    try:
        text = sys.stdin.read() if scenario == "-" else Path(scenario).read_text(encoding="utf-8")
        parsed = load_scenario(text)
    except OSError as exc:
        click.echo(f"error: cannot read {scenario}: {exc.strerror}", err=True)
        sys.exit(2)
    except ScenarioError as exc:
        click.echo(f"error: {scenario}: {exc}", err=True)
        sys.exit(2)
    for line in simulate(parsed, lambda message: click.echo(f"warning: {message}", err=True)):
        click.echo(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
