"""The program editor in the panel: versions and their publications, the draft (the schedule's
offsets, the months, each email's templates with their variables and a live preview for a
chosen client), the impact of publishing on the clients in flight, publish and roll back. Thin:
every rule is in `scheduler.programs` and `scheduler.replan`."""

from __future__ import annotations

import secrets
from dataclasses import fields
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from scheduler import emails, errors, programs, replan
from scheduler.engine import OutgoingMessage, Version
from scheduler.models import Client
from scheduler.program import Schedule
from scheduler.vocab import Template
from web import journey_context, security
from web.extensions import db, htmx
from web.panel import refused

bp = Blueprint("editor", __name__, url_prefix="/program")

SCHEDULE_FIELDS = [f.name for f in fields(Schedule)]
# What each setting means, beside its field.
SCHEDULE_HELP = {
    "month_length_days": "days between two milestones",
    "upcoming_reminder_days_before": "“coming soon” reminder, days before the milestone",
    "overdue_reminder_days_after": "“need help?” reminder, days after the milestone",
    "escalation_days_after": "admin escalation, days after the milestone",
    "revision_reminder_days_after": "admin reminder, days after a rejection",
    "celebration_days_after": "celebration, days after a delivery",
    "resume_reminder_days_before": "“resuming soon”, days before a hold's end",
    "retry_delay_minutes": "a failed action is retried this many minutes later…",
    "max_retries": "…this many times",
    "halfway_month": "completing this month sends the halfway celebration",
    "on_time_days": "a delivery is on time by its milestone + these days",
    "at_risk_checkin_days": "earlier check-in, days before each milestone from M2, sent only to "
    "clients the risk model finds at risk then (0: off)",
    "send_hour": "local hour automations fire (empty: the deployment's SEND_HOUR)",
    "frequency_cap": "optional emails per client per 24 h (empty: EMAIL_FREQUENCY_CAP)",
}
PREVIEW_LIMIT = 50


def actor() -> str:
    return str(current_user.email)


def page_context(**extra: Any) -> dict[str, Any]:
    ctx = journey_context()
    versions = programs.published(ctx)
    return {
        "versions": versions,
        "current": ctx.current_version(),
        "on": programs.clients_on(ctx),
        "draft": programs.draft(ctx),
        "publications": programs.publications(ctx, 20),
        "fields": SCHEDULE_FIELDS,
        "help": SCHEDULE_HELP,
        "templates": list(Template),
        **extra,
    }


@bp.get("/")
def index() -> Any:
    context = page_context()
    ctx = journey_context()
    ctx.commit()  # version 1, stored on first sight
    return render_template("panel/program.html", **context)


@bp.post("/draft/start")
def start() -> Any:
    ctx = journey_context()
    programs.start_draft(ctx, actor())
    ctx.commit()
    return redirect(url_for("editor.index") + "#draft", 303)


@bp.post("/draft/discard")
def discard() -> Any:
    ctx = journey_context()
    try:
        programs.discard_draft(ctx)
        ctx.commit()
        flash("The draft is discarded.", "ok")
    except errors.JourneyError as exc:
        refused(exc)
        flash(exc.message, "error")
    return redirect(url_for("editor.index"), 303)


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def definition_from(form: Any, base: dict[str, Any]) -> dict[str, Any]:
    """The draft's program with the form's fields: numbers as typed (the program's own checks
    say what is wrong with them), months' titles, summaries and deliverables."""
    schedule: dict[str, Any] = {}
    for name in SCHEDULE_FIELDS:
        raw = form.get(f"schedule.{name}", "").strip()
        if raw == "":
            continue
        try:
            schedule[name] = int(raw)
        except ValueError:
            raise errors.Invalid(
                f"schedule.{name}: must be a whole number, not {raw!r}", f"schedule.{name}"
            ) from None
    months = []
    for number, month in enumerate(base.get("months", []), start=1):
        changed = dict(month)
        for key in ("title", "summary"):
            if f"months.{number}.{key}" in form:
                changed[key] = form[f"months.{number}.{key}"]
        if f"months.{number}.deliverables" in form:
            changed["deliverables"] = lines(form[f"months.{number}.deliverables"])
        months.append(changed)
    name = form.get("name", base.get("name", ""))
    return {**base, "name": name, "schedule": schedule, "months": months}


@bp.post("/draft")
def save() -> Any:
    """Save the program part of the draft (HTMX: the draft form redrawn with what happened)."""
    ctx = journey_context()
    row = programs.start_draft(ctx, actor())
    try:
        definition = definition_from(request.form, dict(row.definition))
        programs.update_draft(ctx, actor(), definition=definition, note=request.form.get("note"))
        ctx.commit()
    except errors.JourneyError as exc:
        code = refused(exc)
        if not htmx:
            flash(exc.message, "error")
            return redirect(url_for("editor.index") + "#draft", 303)
        # The form as typed, with the message next to the field it names.
        typed = definition_from_typed(request.form, programs.draft(journey_context()))
        context = page_context(error=exc.message, field=exc.field, typed=typed)
        return render_template("panel/_program_draft.html", **context), code
    if htmx:
        return render_template(
            "panel/_program_draft.html", **page_context(message="The draft is saved.")
        )
    flash("The draft is saved.", "ok")
    return redirect(url_for("editor.index") + "#draft", 303)


def definition_from_typed(form: Any, row: Any) -> dict[str, str]:
    return {key: str(value) for key, value in form.items() if key != "csrf_token"}


# -- the impact of publishing ----------------------------------------------------------------------


@bp.get("/preview")
def preview() -> Any:
    ctx = journey_context()
    applies = request.args.get("applies_to", replan.IN_FLIGHT)
    rollback_to = request.args.get("rollback_to", "")
    try:
        target = programs.find(ctx, rollback_to) if rollback_to else None
        seen = programs.preview(ctx, applies, target)
    except errors.JourneyError as exc:
        code = refused(exc)
        return render_template("panel/_flash.html", error=exc.message), code
    ctx.rollback()
    context = {
        "seen": seen,
        "shown": seen.clients[:PREVIEW_LIMIT],
        "applies": applies,
        "rollback_to": rollback_to,
        "zone": ZoneInfo,
    }
    if htmx:
        return render_template("panel/_program_impact.html", **context)
    return render_template("panel/program_impact.html", **context)


@bp.post("/publish")
def publish() -> Any:
    ctx = journey_context()
    applies = request.form.get("applies_to", "")
    rollback_to = request.form.get("rollback_to", "")
    try:
        if rollback_to:
            to = programs.find(ctx, rollback_to)
            done = programs.rollback(ctx, actor(), to.number or 0, applies)
        else:
            done = programs.publish(ctx, actor(), applies, request.form.get("note"))
        text = f"Version {done.version.number} is published: {done.impact.summary()}."
        ctx.commit()
    except errors.JourneyError as exc:
        refused(exc)
        flash(exc.message, "error")
        return redirect(url_for("editor.index"), 303)
    flash(text, "ok")
    if htmx:
        return "", 204, {"HX-Redirect": url_for("editor.index")}
    return redirect(url_for("editor.index"), 303)


@bp.get("/versions/<int:number>.toml")
def export(number: int) -> Any:
    ctx = journey_context()
    try:
        text = programs.export_toml(ctx, number)
    except errors.NotFound:
        abort(404)
    return (
        text,
        200,
        {
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": f'attachment; filename="program-v{number}.toml"',
        },
    )


@bp.get("/diff")
def diff() -> Any:
    ctx = journey_context()
    try:
        old = programs.find(ctx, request.args.get("old", "1"))
        new = programs.find(ctx, request.args.get("new", "draft"))
        found = programs.diff(ctx, old, new)
    except errors.JourneyError as exc:
        code = refused(exc)
        return render_template("panel/refused.html", message=exc.message, code=code), code
    return render_template("panel/program_diff.html", old=old, new=new, found=found)


# -- the draft's emails ----------------------------------------------------------------------------


def template_or_404(name: str) -> Template:
    try:
        return Template(name)
    except ValueError:
        abort(404)


def draft_version() -> Version:
    ctx = journey_context()
    row = programs.start_draft(ctx, actor())
    return programs.as_version(row)


def chosen_client(raw: str | None) -> Client | None:
    query = select(Client).order_by(Client.completed_at.is_not(None), Client.id)
    if raw and raw.isascii() and raw.isdigit() and int(raw) < 2**62:
        found = db.session.get(Client, int(raw))
        if found is not None:
            return found
    return db.session.scalars(query).first()


def render_preview(template: Template, client: Client | None) -> dict[str, Any]:
    """The draft's email for `client`, rendered exactly as it would be sent (or why not)."""
    if client is None:
        return {"preview_error": "Enroll a client to preview this email."}
    if template is Template.WEEKLY_DIGEST:
        return {"preview_error": "The weekly digest is for admins: preview it from the CLI."}
    try:
        rendered = emails.preview(journey_context(), template, client, draft_version())
    except (emails.MissingVariable, errors.JourneyError) as exc:
        return {"preview_error": str(exc)}
    except Exception as exc:  # the sandbox's refusal, or a template error at render time
        return {"preview_error": f"{type(exc).__name__}: {exc}"}
    return {"rendered": rendered}


def email_context(template: Template, **extra: Any) -> dict[str, Any]:
    version = draft_version()
    client = chosen_client(request.values.get("client"))
    context = {
        "template": template,
        "sources": {
            ext: emails.template_source(version, f"{template}.{ext}") or ""
            for ext in ("txt", "html")
        },
        "variables": sorted(programs.variables(template)),
        "clients": list(db.session.scalars(select(Client).order_by(Client.name).limit(200))),
        "client": client,
        "templates": list(Template),
        "stamp": secrets.token_hex(4),  # a fresh frame address after each save
        **extra,
    }
    context |= render_preview(template, client)
    return context


@bp.get("/draft/emails/<name>")
def email(name: str) -> Any:
    template = template_or_404(name)
    context = email_context(template)
    journey_context().commit()
    if htmx and htmx.target == "email-preview":
        return render_template("panel/_program_email_preview.html", **context)
    return render_template("panel/program_email.html", **context)


@bp.post("/draft/emails/<name>")
def save_email(name: str) -> Any:
    template = template_or_404(name)
    ctx = journey_context()
    sources = {
        f"{template}.{ext}": request.form[ext] for ext in ("txt", "html") if ext in request.form
    }
    try:
        programs.update_draft(ctx, actor(), templates=sources)
        ctx.commit()
    except errors.JourneyError as exc:
        code = refused(exc)
        if htmx:
            return render_template("panel/_flash.html", error=exc.message), code
        flash(exc.message, "error")
        return redirect(url_for("editor.email", name=name), 303)
    context = email_context(template, message="Saved in the draft.")
    if htmx:
        return render_template("panel/_program_email_preview.html", **context)
    flash("Saved in the draft.", "ok")
    return redirect(url_for("editor.email", name=name), 303)


@bp.get("/draft/emails/<name>/html")
def email_html(name: str) -> Any:
    """The draft email's HTML alone, for the preview's sandboxed frame."""
    template = template_or_404(name)
    found = render_preview(template, chosen_client(request.args.get("client")))
    if "rendered" not in found:
        abort(409, description=found.get("preview_error", ""))
    return (
        found["rendered"].html,
        200,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": security.EMAIL_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


@bp.post("/draft/emails/<name>/test")
def test_send(name: str) -> Any:
    """Send the draft's email, as the chosen client would get it, to the admin's own address."""
    template = template_or_404(name)
    ctx = journey_context()
    found = render_preview(template, chosen_client(request.form.get("client")))
    if "rendered" not in found:
        return render_template("panel/_flash.html", error=found["preview_error"]), 409
    rendered = found["rendered"]
    address = actor()
    stamp = ctx.now().strftime("%Y%m%d%H%M%S%f")
    try:
        ctx.engine.mailer.send(
            OutgoingMessage(
                to=address,
                subject=f"[test] {rendered.subject}",
                text=rendered.text,
                html=rendered.html,
                message_id=emails.message_id(f"test:{template}:{stamp}", ctx.engine.mail_sender),
                template=str(template),
            )
        )
    except Exception as exc:
        return render_template("panel/_flash.html", error=f"not sent: {exc}"), 502
    return render_template("panel/_flash.html", message=f"A test email went to {address}.")
