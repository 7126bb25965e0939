"""The admin panel: clients, each client's journey with its controls, the review queue, the
automation health dashboard and the log. Server-rendered; the controls are HTMX requests that
answer with the part of the page they change. Views are thin: the rules are in `scheduler`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from scheduler import (
    abtests,
    audit,
    communications,
    controls,
    editing,
    emails,
    enrollment,
    errors,
    funnel,
    imports,
    inputs,
    lookups,
    markup,
    metrics,
    outcomes,
    overview,
    progress,
    review,
    risk,
    rules,
    timeline,
)
from scheduler import dashboard as dashboard_counts
from scheduler.engine import Context
from scheduler.models import Admin, Automation, Client, fits_id
from scheduler.vocab import (
    LOG_STATUS_LABELS,
    STATUS_LABELS,
    TEMPLATE_NAMES,
    TYPE_NAMES,
    AutomationType,
    ClientStatus,
    Template,
    automation_name,
)
from web import journey_context, security
from web.extensions import db, htmx

bp = Blueprint("panel", __name__)

STATUS_CODE = {errors.Invalid: 422, errors.NotFound: 404, errors.Conflict: 409}


def refused(exc: errors.JourneyError) -> int:
    db.session.rollback()
    journey_context().rollback()
    return next((code for kind, code in STATUS_CODE.items() if isinstance(exc, kind)), 400)


@bp.errorhandler(errors.JourneyError)
def refusal(exc: errors.JourneyError) -> Any:
    """What a page refuses (a query parameter it cannot use, say `?page=x`): the message, with
    its 4xx status, never a 500."""
    code = refused(exc)
    if htmx:
        return render_template("panel/_flash.html", error=exc.message), code
    return render_template("panel/refused.html", message=exc.message, code=code), code


def client_or_404(client_id: int) -> Client:
    try:
        return lookups.find_client(journey_context(), client_id)
    except errors.NotFound:
        abort(404)


def admin_zone() -> str:
    """The zone of the admin reading the page: lists that mix clients show their instants
    there (each client's own pages use the client's zone)."""
    return getattr(current_user, "timezone", None) or "UTC"


@bp.app_template_filter("when")
def when(instant: datetime | None, zone: str | ZoneInfo, style: str = "%a %d %b %Y %H:%M") -> Any:
    """An instant as a person reads it, in the stated zone, with UTC on hover."""
    if instant is None:
        return ""
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    utc = instant.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.isoformat(), f"{utc:%Y-%m-%d %H:%M} UTC", instant.astimezone(tz).strftime(style)
    )


@bp.app_template_filter("percent")
def percent(share: float) -> int:
    """A probability as the engine words it (`rules.percent`: never rounded up across the
    at-risk threshold), so that the panel says what the log says."""
    return rules.percent(share)


@bp.app_context_processor
def vocabulary() -> dict[str, Any]:
    """The words people read, the same on every page (codes stay in URLs and the API)."""
    return {
        "status_label": lambda code: STATUS_LABELS[ClientStatus(code)],
        "log_status": lambda code: LOG_STATUS_LABELS.get(code, code.lower()),
        "automation_name": automation_name,
        "template_names": TEMPLATE_NAMES,
        "type_names": TYPE_NAMES,
        "admin_zone": admin_zone,
        "markdown": markup.to_html,
    }


def parse_date(value: str | None, field: str) -> date | None:
    """An optional date field of a form or query string (the domain's parser)."""
    return inputs.parse_date(value, field) if value else None


def parse_int(value: str | None, field: str) -> int | None:
    """An optional whole-number field of a form or query string (the domain's parser)."""
    return inputs.parse_int(value, field) if value not in (None, "") else None


def cursor(args: Any) -> dict[str, int | None]:
    """Where a long list's page starts: after the row `after`, or before the row `before` (the
    ids its Next and Previous links carry). An id no row can have starts nowhere."""
    found = {}
    for name in ("after", "before"):
        value = parse_int(args.get(name), name)
        found[name] = value if value is not None and fits_id(value) else None
    return found


# -- clients ---------------------------------------------------------------------------------------


@bp.get("/")
def clients() -> Any:
    ctx = journey_context()
    q = request.args.get("q", "")
    status = request.args.get("status", "")
    sort = request.args.get("sort", "name")
    at_risk = request.args.get("risk") == "1"
    page = overview.clients(
        ctx,
        q=q,
        status=status,
        sort=sort,
        page=parse_int(request.args.get("page"), "page") or 1,
        only=risk.at_risk_ids() if at_risk else None,
        **cursor(request.args),
    )
    context = {
        "risks": risk.kept_scores(ctx, [row.id for row in page.rows]),
        "at_risk": at_risk,
        "page": page,
        "q": q,
        "status": status,
        "sort": sort,
        "statuses": overview.STATUSES,
        "coaches": coaches(),
        "zone": admin_zone(),
    }
    if htmx and htmx.target == "client-rows":
        return render_template("panel/_client_rows.html", **context)
    return render_template("panel/clients.html", **context)


@bp.get("/clients.csv")
def clients_csv() -> Any:
    """The clients list, with its filters and order, every page, as CSV."""
    args = request.args
    body = imports.clients_csv(
        journey_context(),
        q=args.get("q", ""),
        status=args.get("status", ""),
        sort=args.get("sort", "name"),
    )
    return csv_response(body, "clients.csv")


def csv_response(body: Any, filename: str) -> Any:
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/clients/import")
def import_clients() -> Any:
    """Check a CSV file row by row (a dry run), or import it: every row or none."""
    ctx = journey_context()
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise errors.Invalid("file: choose a CSV file", "file")
        raw = upload.read(imports.MAX_BYTES + 1)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise errors.Invalid("file: not UTF-8 text", "file") from None
        if request.form.get("mode") == "import":
            report = imports.run(ctx, text)
            ctx.commit()
        else:
            report = imports.dry_run(ctx, text)
            ctx.rollback()
    except errors.JourneyError as exc:
        code = refused(exc)
        report = None
        if upload is not None and exc.field == "file" and "rows have errors" in exc.message:
            report = imports.dry_run(ctx, text)
            ctx.rollback()
        return render_template("panel/_import_report.html", error=exc.message, report=report), code
    return render_template("panel/_import_report.html", report=report)


def coaches() -> list[Admin]:
    return list(
        db.session.scalars(select(Admin).where(Admin.active.is_(True)).order_by(Admin.name))
    )


@bp.post("/clients")
def enroll() -> Any:
    ctx = journey_context()
    form = request.form
    try:
        start = parse_date(form.get("start_date"), "start_date")
        if start is None:
            raise errors.Invalid("start_date: required", "start_date")
        client = enrollment.enroll(
            ctx,
            name=form.get("name", ""),
            email=form.get("email", ""),
            start_date=start,
            timezone=form.get("timezone", "UTC") or "UTC",
        )
        coach = parse_int(form.get("coach"), "coach")
        if coach is not None:
            if db.session.get(Admin, coach) is None:
                raise errors.NotFound("coach: no such admin", "coach")
            client.coach_id = coach
        ctx.commit()
    except errors.JourneyError as exc:
        code = refused(exc)
        return render_template(
            "panel/_enroll.html", error=exc.message, form=form, coaches=coaches()
        ), code
    flash(f"{client.name} is enrolled: their journey is planned.", "ok")
    target = url_for("panel.client", client_id=client.id)
    if htmx:
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


# -- one client's journey --------------------------------------------------------------------------


def journey_view(client: Client, **extra: Any) -> dict[str, Any]:
    ctx = journey_context()
    line = timeline.build(ctx, client, days_ahead=30, history=200)
    zone = ZoneInfo(client.timezone)
    today = lookups.local_today(ctx, client)
    admins = emails.active_admins(ctx)
    return {
        "client": client,
        "status": overview.client_status(ctx, client),
        "t": line,
        # Each pending automation with what will happen to it, in the order it will.
        "upcoming": sorted(
            zip(
                line.upcoming,
                outcomes.upcoming(ctx, client, line.upcoming, lookups.journey(ctx, client)),
                strict=True,
            ),
            key=lambda pair: (pair[1].at is None, pair[1].at or pair[0].trigger_at),
        ),
        "strip": timeline.strip(
            line.months,
            line.holds,
            client.start_date,
            today,
            ctx.program_of(client).schedule.month_length_days,
        ),
        "generation": progress.generation_progress(ctx, client),
        "zone": zone,
        "program": ctx.program_of(client),
        "templates": [t for t in Template if t is not Template.WEEKLY_DIGEST],
        "types": [t for t in AutomationType if t is not AutomationType.UPDATE_STATUS],
        "coach": db.session.get(Admin, client.coach_id) if client.coach_id else None,
        "today": today,
        "risk": line.risk,
        "coaches": coaches(),
        "changes": audit.changes(ctx, client, 50),
        "shown": audit.shown,
        "confirm_trigger": {a.id: controls.trigger_notice(ctx, a, admins) for a in line.upcoming},
        "overdue": overview.overdue(ctx, client),
        "notices": {
            m.month: review.approval_notice(ctx, client, m.month)
            for m in line.months
            if m.state in ("pending review", "rejected")
        },
        **extra,
    }


@bp.get("/clients/<int:client_id>")
def client(client_id: int) -> Any:
    return render_template("panel/client.html", **journey_view(client_or_404(client_id)))


def answer(client: Client, message: str, *, undo: dict[str, str] | None = None) -> Any:
    """After a control: the journey part of the page, redrawn, with what happened (HTMX), or
    the whole page (a plain form post)."""
    if htmx:
        return render_template(
            "panel/_journey.html", **journey_view(client, message=message, undo=undo)
        )
    flash(message, "ok")
    return redirect(url_for("panel.client", client_id=client.id))


def failure(client: Client, exc: errors.JourneyError) -> Any:
    code = refused(exc)
    if htmx:
        return render_template(
            "panel/_journey.html", **journey_view(client, error=exc.message)
        ), code
    flash(exc.message, "error")
    return redirect(url_for("panel.client", client_id=client.id)), 303


def control(client_id: int, act: Any) -> Any:
    """Run one control on the client: commit and redraw, saying what the engine did to each
    automation it touched (`outcomes`), or say why not."""
    client = client_or_404(client_id)
    ctx = journey_context()
    try:
        outcome = outcomes.carry_out(ctx, act, client)
        headline, undo = outcome.result
        message = outcome.told(headline)
        ctx.commit()
    except errors.JourneyError as exc:
        return failure(client, exc)
    return answer(client, message, undo=undo)


@bp.post("/clients/<int:client_id>/pause")
def pause(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, dict[str, str]]:
        until = parse_date(request.form.get("until"), "until")
        days = parse_int(request.form.get("days"), "days")
        if until and days:
            raise errors.Invalid("give a number of days or an end date, not both", "until")
        if days is not None:
            if not 1 <= days <= 365:
                raise errors.Invalid("days: 1 to 365", "days")
            until = lookups.local_today(ctx, client) + timedelta(days=days)
        controls.pause(ctx, client, until=until, reason=request.form.get("reason", "").strip())
        if until:
            shift = (until - lookups.local_today(ctx, client)).days
            headline = (
                f"{client.name} is on hold until {emails.day(until, client.timezone)}: "
                f"every pending automation waits, and moves {shift} days later when it ends."
            )
        else:
            headline = (
                f"{client.name} is on hold with no end date: every pending automation waits, "
                "and the dates move when the hold ends."
            )
        return headline, {"action": "resume", "label": "Undo: resume"}

    return control(client_id, act)


@bp.post("/clients/<int:client_id>/resume")
def resume(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, None]:
        hold = controls.resume(ctx, client)
        moved = f": the journey moved {hold.days} days later" if hold.days else ""
        return f"{client.name} is back{moved}.", None

    return control(client_id, act)


@bp.post("/clients/<int:client_id>/adjust/preview")
def adjust_preview(client_id: int) -> Any:
    """The timeline a new start date would give, shown before it is confirmed: the change is
    made in a transaction that is rolled back."""
    client = client_or_404(client_id)
    ctx = journey_context()
    try:
        start = parse_date(request.form.get("start_date"), "start_date")
        if start is None:
            raise errors.Invalid("start_date: required", "start_date")
        before = {m.month: m.date for m in timeline.build(ctx, client, history=0).months}
        controls.adjust(ctx, client, start)
        db.session.flush()
        after = timeline.build(ctx, client, history=0).months
    except errors.JourneyError as exc:
        code = refused(exc)
        return render_template("panel/_adjust_preview.html", error=exc.message), code
    lines = [(m, before[m.month]) for m in after]
    ctx.rollback()
    return render_template("panel/_adjust_preview.html", client=client, lines=lines, start=start)


@bp.post("/clients/<int:client_id>/adjust")
def adjust(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, dict[str, str]]:
        old = client.start_date
        start = parse_date(request.form.get("start_date"), "start_date")
        if start is None:
            raise errors.Invalid("start_date: required", "start_date")
        moved = controls.adjust(ctx, client, start)
        return (
            f"Start date is now {start:%d %b %Y}; {moved} automations were rescheduled.",
            {
                "action": "adjust",
                "label": "Undo: back to " + old.isoformat(),
                "start_date": old.isoformat(),
            },
        )

    return control(client_id, act)


def edit_fields(form: Any, client: Client) -> dict[str, Any]:
    """The edit form's fields as the domain reads them."""
    coach = form.get("coach", "")
    return {
        "name": form.get("name"),
        "email": form.get("email"),
        "timezone": (form.get("timezone") or "").strip() or None,
        "coach_id": parse_int(coach, "coach") if coach else None,
        "onboarding": inputs.parse_answers(form.get("onboarding", "")),
        "business_plan": form.get("business_plan"),
    }


@bp.post("/clients/<int:client_id>/edit/preview")
def edit_preview(client_id: int) -> Any:
    """What saving the edit form would change, before it is saved: each detail's old and new
    value, and every send instant a new time zone moves (made in a transaction that is rolled
    back, as the start date's preview)."""
    client = client_or_404(client_id)
    ctx = journey_context()
    try:
        before = enrollment.details(client) | {
            "timezone": client.timezone,
            "coach": editing.coach_email(ctx, client.coach_id),
        }
        old_zone = client.timezone
        moves = editing.edit(ctx, client, **edit_fields(request.form, client))
        db.session.flush()
        after = enrollment.details(client) | {
            "timezone": client.timezone,
            "coach": editing.coach_email(ctx, client.coach_id),
        }
        changed = [(k, before[k], after[k]) for k in before if before[k] != after[k]]
        lines = [(m.name, m.before, m.after) for m in moves]
        new_zone = client.timezone
    except errors.JourneyError as exc:
        code = refused(exc)
        return render_template("panel/_edit_preview.html", error=exc.message), code
    ctx.rollback()
    return render_template(
        "panel/_edit_preview.html",
        client=client,
        changed=changed,
        lines=lines,
        old_zone=old_zone,
        new_zone=new_zone,
        shown=audit.shown,
    )


@bp.post("/clients/<int:client_id>/edit")
def edit(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, None]:
        moves = editing.edit(ctx, client, **edit_fields(request.form, client))
        moved = f"; {len(moves)} send times moved to {client.timezone}" if moves else ""
        return f"The details of {client.name} are saved{moved}.", None

    return control(client_id, act)


@bp.post("/clients/<int:client_id>/business-plan")
def business_plan(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, None]:
        review.approve_business_plan(ctx, client)
        return "The business plan is approved: month 1 is generated now if it was not.", None

    return control(client_id, act)


@bp.post("/clients/<int:client_id>/offboard")
def offboard(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, None]:
        cancelled = editing.offboard(ctx, client, request.form.get("reason", ""))
        return f"The journey of {client.name} has ended; {cancelled} automations cancelled.", None

    return control(client_id, act)


@bp.get("/clients/<int:client_id>/delete")
def delete_page(client_id: int) -> Any:
    """The erasure's confirmation: what goes, and the email address to type."""
    found = client_or_404(client_id)
    goes = editing.summary(editing.erasure(journey_context(), found))
    return render_template("panel/delete_client.html", client=found, goes=goes)


@bp.post("/clients/<int:client_id>/delete")
def delete_client(client_id: int) -> Any:
    found = client_or_404(client_id)
    ctx = journey_context()
    if request.form.get("confirm", "").strip().lower() != found.email:
        goes = editing.summary(editing.erasure(ctx, found))
        error = f"type {found.email} to confirm the erasure"
        return render_template(
            "panel/delete_client.html", client=found, goes=goes, error=error
        ), 422
    name = found.name
    removed = editing.summary(editing.erase(ctx, found))
    ctx.commit()
    flash(f"{name} is erased: {removed}.", "ok")
    return redirect(url_for("panel.clients"), 303)


@bp.post("/clients/<int:client_id>/skip")
def skip(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, dict[str, str] | None]:
        month = parse_int(request.form.get("month"), "month")
        if month is None:
            raise errors.Invalid("month: required", "month")
        controls.skip_month(ctx, client, month)
        grace = int(ctx.engine.action_email_grace.total_seconds())
        undo = (
            {"action": "unskip", "label": f"Undo: bring M{month} back", "month": str(month)}
            if grace
            else None
        )
        return f"Month {month} is skipped: it counts as done, without celebration.", undo

    return control(client_id, act)


@bp.post("/clients/<int:client_id>/unskip")
def unskip(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, None]:
        month = parse_int(request.form.get("month"), "month")
        if month is None:
            raise errors.Invalid("month: required", "month")
        back = controls.unskip(ctx, client, month)
        return f"Month {month} is back as it was; {back} automations are scheduled again.", None

    return control(client_id, act)


@bp.post("/clients/<int:client_id>/schedule")
def schedule(client_id: int) -> Any:
    def act(ctx: Any, client: Client) -> tuple[str, None]:
        raw = request.form.get("at", "")
        at = inputs.parse_instant(raw, "at", ZoneInfo(client.timezone)) if raw else None
        made = controls.schedule_by_hand(
            ctx,
            client,
            request.form.get("type", ""),
            at=at,
            month=parse_int(request.form.get("month"), "month"),
            template=request.form.get("template") or None,
        )
        name = automation_name(made.type, made.template, made.month)
        return f"{name} is added to the schedule.", None

    return control(client_id, act)


def automation_or_404(automation_id: int) -> Automation:
    try:
        return lookups.find_automation(journey_context(), automation_id)
    except errors.NotFound:
        abort(404)


@bp.post("/automations/<int:automation_id>/trigger")
def trigger(automation_id: int) -> Any:
    automation = automation_or_404(automation_id)

    def act(ctx: Any, client: Client) -> tuple[str, None]:
        controls.trigger_now(ctx, automation)
        name = automation_name(automation.type, automation.template, automation.month)
        return f"{name} runs now.", None

    if request.form.get("from") == "log":
        try:
            controls.trigger_now(journey_context(), automation)
            journey_context().commit()
            name = automation_name(automation.type, automation.template, automation.month)
            flash(f"{name} (automation {automation.id}) runs again now.", "ok")
        except errors.JourneyError as exc:
            refused(exc)
            flash(exc.message, "error")
        return redirect(request.referrer or url_for("panel.log"), 303)
    return control(automation.client_id, act)


@bp.post("/automations/<int:automation_id>/cancel")
def cancel(automation_id: int) -> Any:
    automation = automation_or_404(automation_id)

    def act(ctx: Any, client: Client) -> tuple[str, None]:
        controls.cancel(ctx, automation)
        name = automation_name(automation.type, automation.template, automation.month)
        return f"{name} is cancelled.", None

    return control(automation.client_id, act)


def previewed(client_id: int, template: str) -> tuple[Client, Template, emails.Rendered]:
    """Any template, rendered for this client as it would be sent today (nothing is sent)."""
    found = client_or_404(client_id)
    try:
        chosen = Template(template)
    except ValueError:
        abort(404)
    if chosen is Template.WEEKLY_DIGEST:
        abort(404, description="the weekly digest is for admins: preview it from the CLI")
    try:
        return found, chosen, emails.preview(journey_context(), chosen, found)
    except emails.MissingVariable as exc:
        abort(409, description=str(exc))


@bp.get("/clients/<int:client_id>/emails/<template>/html")
def email_html(client_id: int, template: str) -> Any:
    """The email's HTML alone, for the preview page's sandboxed frame: the email's inline
    styles are allowed here, and nothing else (no script, nothing from outside)."""
    _, _, rendered = previewed(client_id, template)
    return (
        rendered.html,
        200,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": security.EMAIL_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


@bp.get("/clients/<int:client_id>/emails/<template>")
def email_preview(client_id: int, template: str) -> Any:
    found, chosen, rendered = previewed(client_id, template)
    return render_template(
        "panel/email_preview.html",
        client=found,
        template=chosen,
        rendered=rendered,
        templates=[t for t in Template if t is not Template.WEEKLY_DIGEST],
    )


# -- communications --------------------------------------------------------------------------------


def subscription_view(client: Client, **extra: Any) -> dict[str, Any]:
    ctx = journey_context()
    return {
        "client": client,
        "subscription": communications.subscription(client),
        "changes": [c for c in audit.changes(ctx, client) if c.what == "email preferences"],
        "shown": audit.shown,
        "zone": ZoneInfo(client.timezone),
        **extra,
    }


@bp.get("/clients/<int:client_id>/communications", endpoint="communications")
def communications_page(client_id: int) -> Any:
    """Every email the client was sent or will be sent, with what became of each, and their
    subscription (editable)."""
    found = client_or_404(client_id)
    return render_template(
        "panel/communications.html",
        comms=communications.communications(journey_context(), found),
        **subscription_view(found),
    )


@bp.post("/clients/<int:client_id>/preferences")
def preferences(client_id: int) -> Any:
    found = client_or_404(client_id)
    ctx = journey_context()
    form = request.form
    communications.set_subscription(
        ctx,
        found,
        subscribed=form.get("subscribed") == "1",
        reminders=form.get("reminders") == "1",
        celebrations=form.get("celebrations") == "1",
    )
    ctx.commit()
    message = f"The email preferences of {found.name} are saved."
    if htmx:
        return render_template(
            "panel/_subscription.html", message=message, **subscription_view(found)
        )
    flash(message, "ok")
    return redirect(url_for("panel.communications", client_id=found.id), 303)


def sent_or_404(client_id: int, email_id: int) -> tuple[Client, Any]:
    found = client_or_404(client_id)
    try:
        return found, communications.sent_email(journey_context(), found, email_id)
    except errors.NotFound:
        abort(404)


@bp.get("/clients/<int:client_id>/sent/<int:email_id>")
def sent_email(client_id: int, email_id: int) -> Any:
    """An email the client was sent, as it went out (subject, HTML and plain text)."""
    found, row = sent_or_404(client_id, email_id)
    return render_template(
        "panel/sent_email.html", client=found, row=row, zone=ZoneInfo(found.timezone)
    )


@bp.get("/clients/<int:client_id>/sent/<int:email_id>/html")
def sent_email_html(client_id: int, email_id: int) -> Any:
    """The sent email's HTML alone, for its page's sandboxed frame (see `email_html`)."""
    _, row = sent_or_404(client_id, email_id)
    return (
        row.html_body,
        200,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": security.EMAIL_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
        },
    )


# -- review ----------------------------------------------------------------------------------------


@bp.get("/review", endpoint="review")
def review_queue() -> Any:
    ctx = journey_context()
    show = request.args.get("show", "")
    page = overview.review_queue(ctx, parse_int(request.args.get("page"), "page") or 1, show)
    return render_template(
        "panel/review.html",
        page=page,
        show=show,
        program=ctx.program,
        notice=lambda c, m: review.approval_notice(ctx, c, m),
        waited=overview.waited,
    )


def deliverable_or_404(client: Client, month: int) -> Any:
    ctx = journey_context()
    if not 1 <= month <= ctx.program.length:
        abort(404)
    found = lookups.latest_deliverable(ctx, client, month)
    if found is None:
        abort(404)
    return found


@bp.get("/clients/<int:client_id>/months/<int:month>")
def deliverable(client_id: int, month: int) -> Any:
    """A month's latest deliverable as the client reads it, with the reviewer's notes, what an
    admin changed in the generated text, and the review's actions."""
    found = client_or_404(client_id)
    ctx = journey_context()
    d = deliverable_or_404(found, month)
    return render_template(
        "panel/deliverable.html",
        client=found,
        d=d,
        diff=review.changes(d),
        notice=review.approval_notice(ctx, found, month),
        program=ctx.program,
        zone=ZoneInfo(found.timezone),
    )


@bp.get("/clients/<int:client_id>/months/<int:month>/text")
def deliverable_text(client_id: int, month: int) -> Any:
    """A month's latest deliverable as the client reads it, alone: what the review queue shows
    when a reviewer opens one (the queue lists titles, not 50 documents)."""
    d = deliverable_or_404(client_or_404(client_id), month)
    return render_template("panel/_deliverable_text.html", d=d)


@bp.get("/clients/<int:client_id>/months/<int:month>/edit")
def edit_deliverable(client_id: int, month: int) -> Any:
    """Correct the text in the browser, then approve it: the generated text is kept."""
    found = client_or_404(client_id)
    ctx = journey_context()
    d = deliverable_or_404(found, month)
    return render_template(
        "panel/edit_deliverable.html",
        client=found,
        d=d,
        content=d.content,
        notice=review.approval_notice(ctx, found, month),
        program=ctx.program,
    )


@bp.post("/clients/<int:client_id>/months/<int:month>/edit")
def edit_and_approve(client_id: int, month: int) -> Any:
    found = client_or_404(client_id)
    ctx = journey_context()
    content = request.form.get("content", "")
    try:
        outcome = outcomes.carry_out(ctx, review.approve, found, month, content)
        message = outcome.told(f"M{month} of {found.name} is approved with your corrections.")
        ctx.commit()
    except errors.JourneyError as exc:
        code = refused(exc)
        d = deliverable_or_404(found, month)
        return render_template(
            "panel/edit_deliverable.html",
            client=found,
            d=d,
            content=content,
            error=exc.message,
            notice=review.approval_notice(ctx, found, month),
            program=ctx.program,
        ), code
    flash(message, "ok")
    return redirect(url_for("panel.deliverable", client_id=found.id, month=month), 303)


@bp.post("/clients/<int:client_id>/months/<int:month>/generate")
def generate(client_id: int, month: int) -> Any:
    """Generate (or regenerate) a month by hand from the journey page."""

    def act(ctx: Any, client: Client) -> tuple[str, None]:
        notes = request.form.get("notes", "")
        review.generate_by_hand(ctx, client, month, notes)
        return f"M{month} is being generated now.", None

    return control(client_id, act)


@bp.post("/review/<int:client_id>/<int:month>/<verb>")
def decide(client_id: int, month: int, verb: str) -> Any:
    """Approve, reject or regenerate a month, from the review queue (the answer is a message
    in place) or from the journey page (`from=journey`: the journey redrawn)."""
    client = client_or_404(client_id)
    notes = request.form.get("notes", "").strip()
    operations = {
        "approve": (review.approve, (month,), f"M{month} of {client.name} is approved."),
        "reject": (review.reject, (month, notes), f"M{month} of {client.name} is rejected."),
        "regenerate": (
            review.generate_by_hand,
            (month, notes),
            f"M{month} of {client.name} is being generated again.",
        ),
    }
    if verb not in operations:
        abort(404)
    operation, args, headline = operations[verb]
    if request.form.get("from") == "journey":

        def act(ctx: Any, found: Client) -> tuple[str, None]:
            operation(ctx, found, *args)
            return headline, None

        return control(client_id, act)
    ctx = journey_context()
    try:
        outcome = outcomes.carry_out(ctx, operation, client, *args)
        message = outcome.told(headline)
        ctx.commit()
    except errors.JourneyError as exc:
        code = refused(exc)
        if htmx:
            return render_template("panel/_flash.html", error=exc.message), code
        flash(exc.message, "error")
        return redirect(url_for("panel.review"), 303)
    if htmx:
        return render_template("panel/_flash.html", message=message)
    flash(message, "ok")
    return redirect(url_for("panel.review"), 303)


# -- dashboard and log -----------------------------------------------------------------------------


@bp.get("/dashboard")
def dashboard() -> Any:
    board = dashboard_counts.kept(journey_context(), admin_zone())
    db.session.commit()  # numbers counted here are kept for the next pages
    top = max([n for _, n, _ in board.daily] + [1])
    return render_template(
        "panel/dashboard.html", board=board, top=top, every=dashboard_counts.SECONDS
    )


def log_where(args: Any) -> Any:
    """The log page's filters, read from the query string (the page and its CSV export)."""
    return overview.log_filter(
        client=args.get("client", ""),
        type=args.get("type", ""),
        template=args.get("template", ""),
        status=args.get("status", ""),
        start=parse_date(args.get("from"), "from"),
        end=parse_date(args.get("to"), "to"),
        zone=admin_zone(),
        actor=args.get("actor", ""),
    )


@bp.get("/log.csv")
def log_csv() -> Any:
    """The log rows the filters name, newest first, as CSV."""
    where = log_where(request.args)
    return csv_response(imports.log_csv(journey_context(), where), "log.csv")


@bp.get("/log")
def log() -> Any:
    args = request.args
    try:
        where = log_where(args)
        page_number = parse_int(args.get("page"), "page") or 1
        start = cursor(args)
    except errors.JourneyError as exc:
        template = (
            "panel/_log_rows.html" if htmx and htmx.target == "log-rows" else "panel/log.html"
        )
        return render_template(
            template, error=exc.message, page=None, args=args, **log_choices()
        ), 422
    page = overview.logs(journey_context(), where, page_number, **start)
    template = "panel/_log_rows.html" if htmx and htmx.target == "log-rows" else "panel/log.html"
    return render_template(template, page=page, args=args, **log_choices())


def log_choices() -> dict[str, Any]:
    return {
        "types": list(AutomationType),
        "statuses": list(overview.LOG_STATUSES),
        "zone": admin_zone(),
    }


# -- success metrics -------------------------------------------------------------------------------


def metrics_scope() -> Any:
    args = request.args
    return metrics.scope(
        window=args.get("window", ""),
        cohort=args.get("cohort", ""),
        coach=args.get("coach", ""),
        month=args.get("month", ""),
        months=len(journey_context().program.months),
    )


@bp.app_template_filter("metric_value")
def metric_value(tally: metrics.Tally, metric: metrics.Metric) -> float | None:
    return tally.value(metric)


@bp.app_template_filter("combine")
def combine(first: dict[str, str], second: dict[str, str]) -> dict[str, str]:
    return {**first, **second}


@bp.get("/success")
def metrics_page() -> Any:
    """The specification's success metrics, each with its definition, target, trend and rows."""
    ctx = journey_context()
    where = metrics_scope()
    measures = metrics.measure_all(ctx, where)
    db.session.commit()  # what was counted here (spans of the log, states) is kept
    groups: dict[str, list[metrics.Measure]] = {}
    for measure in measures:  # in the specification's order
        groups.setdefault(measure.metric.group, []).append(measure)
    return render_template(
        "panel/metrics.html",
        measures=measures,
        groups=groups,
        where=where,
        coaches=metrics.coach_names(ctx),
        windows=metrics.WINDOWS,
        months=[m.number for m in ctx.program.months],
        fmt=metrics.fmt,
        snapshot_seconds=metrics.SNAPSHOT_SECONDS,
    )


@bp.get("/success/funnel")
def metrics_funnel() -> Any:
    """Each month's funnel: generated, approved, delivered, opened, with the median times."""
    ctx = journey_context()
    where = metrics_scope()
    found = funnel.funnel(ctx, where)
    db.session.commit()  # a funnel counted here is kept for the next pages
    return render_template(
        "panel/metrics_funnel.html",
        funnel=found,
        snapshot_seconds=metrics.SNAPSHOT_SECONDS,
        where=where,
        coaches=metrics.coach_names(ctx),
        windows=metrics.WINDOWS,
        months=[m.number for m in ctx.program.months],
    )


@bp.get("/success/<code>/rows")
def metric_rows(code: str) -> Any:
    """The rows behind one metric's number: the query the number is an aggregate of."""
    ctx = journey_context()
    if code not in metrics.BY_CODE:
        abort(404)
    chosen = metrics.BY_CODE[code]
    where = metrics_scope()
    page = metrics.rows(ctx, chosen, where, parse_int(request.args.get("page"), "page") or 1)
    db.session.commit()  # what was counted here is kept
    return render_template(
        "panel/metric_rows.html",
        metric=chosen,
        page=page,
        where=where,
        coaches=metrics.coach_names(ctx),
        zone=admin_zone(),
    )


# -- clients at risk -------------------------------------------------------------------------------


@bp.get("/risk")
def risk_page() -> Any:
    """The clients-at-risk model: its features and weights, how well it fits, who is at risk."""
    ctx = journey_context()
    kept = risk.latest(ctx)
    return render_template(
        "panel/risk.html",
        kept=kept,
        model=risk.Model.from_dict(kept.body) if kept else None,
        weights=risk.weights(kept) if kept else [],
        clients=risk.at_risk(ctx),
        features=risk.FEATURES,
        checkin_days=ctx.program.schedule.at_risk_checkin_days,
        version=ctx.current_version(),
    )


@bp.post("/risk/train")
def risk_train() -> Any:
    """Fit the model again on the account's history and score every active client."""
    ctx = journey_context()
    try:
        kept = risk.train(ctx, actor=getattr(current_user, "email", "admin"))
        ctx.commit()
    except errors.JourneyError as exc:
        refused(exc)
        flash(exc.message, "error")
        return redirect(url_for("panel.risk_page"), 303)
    at = sum(1 for _ in risk.at_risk(ctx, limit=100_000))
    flash(f"The model is trained on {kept.body['rows']} past months; {at} clients at risk.", "ok")
    return redirect(url_for("panel.risk_page"), 303)


# -- A/B tests of email templates ------------------------------------------------------------------


def ab_list(ctx: Context, form: Any, error: str | None) -> str:
    """Every A/B test with its result, and the form that starts one (as filled in)."""
    return render_template(
        "panel/ab_tests.html",
        results=[abtests.result(ctx, t) for t in abtests.tests(ctx)],
        templates=abtests.TESTABLE,
        goals=abtests.GOALS,
        goal_words=abtests.goal_words,
        form=form,
        error=error,
    )


@bp.get("/ab")
def ab_tests() -> Any:
    """Every A/B test with its result, and the form that starts one."""
    return ab_list(journey_context(), {}, None)


@bp.post("/ab")
def ab_start() -> Any:
    ctx = journey_context()
    form = request.form
    try:
        split = parse_int(form.get("split"), "split")
        goal = parse_int(form.get("goal_days"), "goal_days")
        test = abtests.start(
            ctx,
            template=form.get("template", ""),
            name=form.get("name", ""),
            subject=form.get("subject"),
            text=form.get("text"),
            html=form.get("html"),
            split=50 if split is None else split,
            goal=form.get("goal", "open"),
            goal_days=7 if goal is None else goal,
            actor=getattr(current_user, "email", "admin"),
        )
        ctx.commit()
    except errors.JourneyError as exc:
        code = refused(exc)
        return ab_list(ctx, form, exc.message), code
    flash(f"A/B test {test.id} of {TEMPLATE_NAMES[Template(test.template)]} is running.", "ok")
    return redirect(url_for("panel.ab_test", test_id=test.id), 303)


@bp.get("/ab/<int:test_id>")
def ab_test(test_id: int) -> Any:
    ctx = journey_context()
    try:
        test = abtests.find(ctx, test_id)
    except errors.NotFound:
        abort(404)
    return render_template(
        "panel/ab_test.html", r=abtests.result(ctx, test), goal_words=abtests.goal_words
    )


@bp.post("/ab/<int:test_id>/end")
def ab_end(test_id: int) -> Any:
    """End the test keeping the variant the admin chose."""
    ctx = journey_context()
    try:
        test = abtests.find(ctx, test_id)
    except errors.NotFound:
        abort(404)
    try:
        abtests.end(ctx, test, request.form.get("keep", ""), getattr(current_user, "email", ""))
        ctx.commit()
    except errors.JourneyError as exc:
        refused(exc)
        flash(exc.message, "error")
        return redirect(url_for("panel.ab_test", test_id=test_id), 303)
    flash(f"A/B test {test_id} ended: variant {test.kept} is kept.", "ok")
    return redirect(url_for("panel.ab_test", test_id=test_id), 303)
