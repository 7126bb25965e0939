"""Emails: who receives each template, what it says (Jinja templates under
`templates/email/`), and sending through the outbox so that a retry never sends twice."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from scheduler import rules, timeline, webhook
from scheduler.engine import Context, NotSent, OutgoingMessage
from scheduler.lookups import latest_deliverable, local_today, month_views, open_hold
from scheduler.models import Admin, Automation, Client, Email, Hold
from scheduler.vocab import OPTIONAL_TEMPLATES, TEMPLATE_TYPE, Template, automation_name

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class MissingVariable(ValueError):
    """A template was given no value (or an empty one) for a variable it needs."""


@dataclass(frozen=True)
class Declared:
    required: frozenset[str]
    optional: frozenset[str]


DECLARATION = re.compile(
    r"\{#\s*variables:\s*(?P<required>[^|#]*?)\s*(\|\s*optional:\s*(?P<optional>[^#]*?)\s*)?#\}"
)


@cache
def declared(template: Template) -> Declared:
    """The variables a template declares on its first line:
    `{# variables: a, b | optional: c #}`. Optional ones may be None."""
    env = environment()
    source = env.loader.get_source(env, f"email/{template}.txt")[0]  # type: ignore[union-attr]
    found = DECLARATION.match(source)
    if found is None:
        raise MissingVariable(f"{template}: the template declares no variables")

    def names(text: str | None) -> frozenset[str]:
        return frozenset(n.strip() for n in (text or "").split(",") if n.strip())

    return Declared(names(found["required"]), names(found["optional"]))


def render(template: Template, context: dict[str, Any]) -> Rendered:
    """Render `template`'s subject and plain text (`<id>.txt`, then the common text footer) and
    its HTML (`<id>.html`). A declared variable that is missing or empty fails loudly: no email
    ever says "Hi ,"."""
    wanted = declared(template)
    for name in sorted(wanted.required | wanted.optional):
        if name not in context:
            raise MissingVariable(f"{template}: no value for {name}")
        value = context[name]
        if name in wanted.required and (value is None or value == "" or value == {}):
            raise MissingVariable(f"{template}: {name} is empty")
    env = environment()
    text_template = env.get_template(f"email/{template}.txt")
    blocks = text_template.new_context(context)
    subject = "".join(text_template.blocks["subject"](blocks))
    text = "".join(text_template.blocks["body"](blocks)).strip() + "\n"
    text += env.get_template("email/_footer.txt").render(context)
    html = env.get_template(f"email/{template}.html").render(context)
    # One line, whatever a name contains: no header injection through the subject.
    subject = " ".join(subject.split())
    return Rendered(subject, text, html)


def recipients(ctx: Context, client: Client, template: Template) -> list[str]:
    """The client, or for admin emails the client's coach (every active admin when the client
    has none, or the coach is no longer active)."""
    if not rules.to_admins(template):
        return [client.email]
    coach = ctx.session.get(Admin, client.coach_id) if client.coach_id else None
    if coach is not None and coach.active:
        return [coach.email]
    return list(
        ctx.session.scalars(select(Admin.email).where(Admin.active.is_(True)).order_by(Admin.id))
    )


def preferences(client: Client) -> rules.Preferences:
    return rules.Preferences(
        reminders=client.reminders_enabled,
        celebrations=client.celebrations_enabled,
        unsubscribed=client.unsubscribed_at is not None,
    )


def held_back(
    ctx: Context, automation: Automation, client: Client, template: Template
) -> rules.Verdict | None:
    """A client email the client does not want (skipped), or one over the frequency cap
    (deferred to the next allowed moment); None when it goes now."""
    reason = rules.unwanted(template, preferences(client))
    if reason is not None:
        return rules.skip(reason)
    if template not in OPTIONAL_TEMPLATES:
        return None
    now = ctx.now()
    sent = ctx.session.scalars(
        select(Email.created_at).where(
            Email.client_id == client.id,
            Email.template.in_([str(t) for t in OPTIONAL_TEMPLATES]),
            Email.created_at > now - rules.CAP_WINDOW,
            Email.automation_id != automation.id,
        )
    ).all()
    cap = ctx.engine.frequency_cap
    when = rules.capped_until(template, sent, cap, now)
    if when is None:
        return None
    return rules.Verdict(
        False, f"frequency cap: {cap} optional emails in 24 hours; deferred", defer_until=when
    )


def send_for(
    ctx: Context, automation: Automation, client: Client, template: Template
) -> list[Email]:
    """Send the automation's email to each recipient, once. Returns its outbox rows."""
    rows = []
    addresses = recipients(ctx, client, template)
    if addresses and template in webhook.ALERTS and ctx.engine.alert_webhook_url:
        addresses.append(webhook.ADDRESS)
    for address in addresses:
        key = f"automation:{automation.id}:{address}"
        row = ctx.session.scalar(select(Email).where(Email.key == key))
        if row is None:
            rendered = render(template, context_for(ctx, automation, client, template))
            row = Email(
                key=key,
                automation_id=automation.id,
                client_id=client.id,
                to_address=address,
                template=template,
                month=automation.month,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                status="PENDING",
                message_id=message_id(key, ctx.engine.mail_sender),
                attempts=0,
                created_at=ctx.now(),
            )
            ctx.session.add(row)
        rows.append(row)
    # The outbox rows are committed before anything is sent: after a crash, a re-run sends only
    # what was not sent.
    ctx.commit()
    for row in rows:
        if row.status == "SENT":
            continue
        row.attempts += 1
        deliver(ctx, row)
    return rows


def deliver(ctx: Context, row: Email) -> None:
    """Hand one outbox row to the mail server (or the alert webhook) and record it as sent.
    The row says SENDING, committed, before the transmission begins: a re-run that finds it so
    knows the first transmission may have reached the server, and sends it again with the same
    Message-ID (recorded as possibly sent twice). On failure record the error and raise: a
    refusal (nothing was accepted) makes the row PENDING again, anything else leaves it
    SENDING."""
    begin(ctx, row)
    began = time.perf_counter()
    try:
        if row.to_address == webhook.ADDRESS:
            url = ctx.engine.alert_webhook_url
            assert url is not None
            webhook.post(url, row.subject, row.text_body, row.key)
        else:
            ctx.engine.mailer.send(
                OutgoingMessage(
                    to=row.to_address,
                    subject=row.subject,
                    text=row.text_body,
                    html=row.html_body,
                    message_id=row.message_id,
                    headers=headers_for(ctx, row),
                    template=row.template,
                    link=reader_link(ctx, row),
                )
            )
    except Exception as exc:
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if isinstance(exc, NotSent):
            row.status = "PENDING"
        ctx.commit()
        raise
    ctx.engine.observer.timed("email", time.perf_counter() - began)
    record_sent(ctx, row.id, row.attempts)


def begin(ctx: Context, row: Email) -> None:
    """Mark the row as being sent now (committed before the transmission starts)."""
    now = ctx.now()
    if row.status == "SENDING" and row.uncertain_at is None:
        # An earlier transmission began and was never confirmed: it may have arrived.
        row.uncertain_at = row.sending_at or now
        log.warning(
            "email %s to %s: an earlier transmission may have reached the server; sending "
            "again with the same Message-ID",
            row.key,
            row.to_address,
        )
    row.status = "SENDING"
    row.sending_at = now
    ctx.commit()


def uncertain(rows: list[Email]) -> str:
    """What the log says of emails possibly sent twice (both transmissions' times)."""
    return "; ".join(
        f"possibly sent twice to {r.to_address} "
        f"(at {r.uncertain_at:%Y-%m-%d %H:%M:%S} and {r.sent_at or r.sending_at:%H:%M:%S} UTC)"
        for r in rows
        if r.uncertain_at is not None
    )


def reader_link(ctx: Context, row: Email) -> str:
    """Where the email points its reader: the client's portal, or the client's page in the
    panel for an admin email."""
    if row.client_id is None:
        return ctx.engine.base_url.rstrip("/") + "/"
    if rules.to_admins(Template(row.template)):
        return f"{ctx.engine.base_url.rstrip('/')}/clients/{row.client_id}"
    return ctx.engine.links.portal(row.client_id)


def headers_for(ctx: Context, row: Email) -> dict[str, str]:
    """A client's optional emails carry one-click unsubscribe (RFC 8058); every email an
    idempotency key, so that any system downstream can tell a resend from a new message."""
    headers = {"X-Journey-Key": row.key}
    if row.client_id is not None and Template(row.template) in OPTIONAL_TEMPLATES:
        headers["List-Unsubscribe"] = f"<{ctx.engine.links.unsubscribe(row.client_id)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def record_sent(ctx: Context, email_id: int, attempts: int) -> None:
    """The server has the message: write that down, holding on through a database blip (a
    re-run would send it again) for up to half the automation's lease."""
    deadline = time.monotonic() + ctx.engine.lease.total_seconds() / 2
    pause = 0.1
    while True:
        try:
            ctx.session.execute(
                update(Email)
                .where(Email.id == email_id)
                .values(status="SENT", sent_at=ctx.now(), attempts=attempts, last_error=None)
                .execution_options(synchronize_session=False)
            )
            ctx.commit()
            return
        except (OperationalError, InterfaceError):
            ctx.rollback()
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def message_id(key: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    return f"<journey.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


# -- what each template is told ----------------------------------------------------------------


def day(value: date, zone: str = "UTC") -> str:
    """A local date the way the client's part of the world writes it: month first in the
    Americas ("Monday, January 5, 2026"), day first elsewhere ("Monday 5 January 2026")."""
    if zone.startswith(("America/", "US/", "Canada/")):
        return f"{value:%A}, {value:%B} {value.day}, {value:%Y}"
    return f"{value:%A} {value.day} {value:%B} {value:%Y}"


HOLD_TEMPLATES = (Template.PAUSE_CONFIRMATION, Template.RESUME_REMINDER, Template.WELCOME_BACK)


def context_for(
    ctx: Context,
    automation: Automation,
    client: Client,
    template: Template,
    example_hold: Hold | None = None,
) -> dict[str, Any]:
    program = ctx.program
    views = month_views(ctx, client)
    done, current, percent = rules.progress(views, program)
    hold = hold_for(ctx, automation, client, example_hold) if template in HOLD_TEMPLATES else None
    # The one projection of the timeline (with the hold the email is about, or the open one).
    dates = timeline.projected_dates(ctx, client, hold)
    month = automation.month
    base = ctx.engine.base_url.rstrip("/")
    links = ctx.engine.links

    def when(m: int) -> dict[str, Any]:
        return {"date": day(dates[m].date, client.timezone), "note": dates[m].note}

    info = program.month(month) if month else None
    deliverable = latest_deliverable(ctx, client, month) if month else None
    nxt = month + 1 if month and month < program.length else None
    remaining = [
        {"month": m.number, "title": m.title, **when(m.number)}
        for m in program.months
        if not views.get(m.number, rules.MonthView()).done
    ]
    context: dict[str, Any] = {
        "template": str(template),
        "audience": "admins" if rules.to_admins(template) else "client",
        "program": program.name,
        "program_length": program.length,
        "client": {
            "name": client.name,
            "first_name": client.name.split()[0],
            "email": client.email,
            "timezone": client.timezone,
        },
        "month": month,
        "month_title": info.title if info else "",
        "summary": info.summary.replace("{business}", business(client)) if info else "",
        "deliverables": list(info.deliverables) if info else [],
        "achievements": list(info.achievements) if info else [],
        "prepare": list(info.prepare) if info else [],
        "due_date": day(dates[month].date, client.timezone) if month else "",
        "due_note": dates[month].note if month else "",
        "progress": {"done": done, "current": current, "percent": percent},
        "next": ({"month": nxt, "title": program.month(nxt).title, **when(nxt)} if nxt else None),
        "timeline": remaining,
        "deliverable": (
            {
                "title": deliverable.title,
                "status": deliverable.status,
                "version": deliverable.version,
                "notes": deliverable.reviewer_notes,
            }
            if deliverable
            else None
        ),
        "reason": str(automation.payload.get("reason") or ""),
        "portal_url": links.portal(client.id),
        "deliverable_url": links.portal(client.id, f"months/{month}") if month else "",
        "preferences_url": links.portal(client.id, "preferences"),
        "unsubscribe_url": links.unsubscribe(client.id),
        "client_url": f"{base}/clients/{client.id}",
        "hold": None,
        "failure": None,
    }
    if hold is not None:
        context["hold"] = hold_context(hold, client, remaining)
    if template is Template.AUTOMATION_FAILURE:
        failed_id = automation.payload.get("automation_id")
        failed = ctx.session.get(Automation, failed_id) if failed_id else None
        context["failure"] = {
            "id": failed.id if failed else None,
            "type": failed.type if failed else "",
            "name": automation_name(failed.type, failed.template, failed.month) if failed else "",
            "template": (failed.template or "") if failed else "",
            "month": failed.month if failed else None,
            "retries": failed.retry_count if failed else 0,
            "error": str(automation.payload.get("error") or ""),
        }
    return context


def hold_for(
    ctx: Context, automation: Automation, client: Client, example: Hold | None = None
) -> Hold:
    """The hold a hold email is about: the automation's own, the open one, the latest (welcome
    back after it ended), or, in a preview, an example."""
    hold = ctx.session.get(Hold, automation.hold_id) if automation.hold_id else None
    hold = hold or open_hold(ctx, client)
    if hold is None and example is None:
        hold = ctx.session.scalar(
            select(Hold)
            .where(Hold.client_id == client.id)
            .order_by(Hold.started_at.desc())
            .limit(1)
        )
    hold = hold or example
    if hold is None:
        raise MissingVariable(f"{automation.template}: {client.name} has no hold to tell about")
    return hold


def hold_context(hold: Hold, client: Client, remaining: list[dict[str, Any]]) -> dict[str, Any]:
    """The hold the email is about, and the timeline it leaves (the projection: a hold with an
    end date moves the months still to come by its length)."""
    resume = hold.end_date or hold.until
    shift = timeline.hold_shift(hold)
    return {
        "start": day(hold.start_date, client.timezone),
        "until": day(hold.until, client.timezone) if hold.until else None,
        "resume": day(resume, client.timezone) if resume else None,
        "reason": hold.reason,
        "days": hold.days if hold.days is not None else (shift or 0),
        "timeline": remaining,
        "zone": client.timezone,
    }


def business(client: Client) -> str:
    onboarding = client.onboarding or {}
    return str(onboarding.get("business") or onboarding.get("business_name") or "your business")


# -- previews ------------------------------------------------------------------------------------


def preview(ctx: Context, template: Template, client: Client) -> Rendered:
    """How `template` reads for `client` today, about the client's current month (the month a
    celebration is for), with the client's hold, or an example one, where the email needs one.
    Nothing is saved or sent."""
    if template is Template.WEEKLY_DIGEST:
        raise MissingVariable("WEEKLY_DIGEST is for an admin: preview it with the admin's email")
    month: int | None = client.current_month
    if template is Template.HALFWAY:
        month = ctx.program.schedule.halfway_month
    elif template is Template.PROGRAM_COMPLETE:
        month = ctx.program.length
    elif template in HOLD_TEMPLATES:
        month = None
    today = local_today(ctx, client)
    example_hold = Hold(
        client_id=client.id,
        reason="Family leave (example)",
        started_at=ctx.now(),
        start_date=today,
        until=today + timedelta(days=14),
    )
    automation = Automation(
        id=0,
        client_id=client.id,
        type=TEMPLATE_TYPE[template],
        month=month,
        template=template,
        payload={},
        retry_count=0,
    )
    context = context_for(ctx, automation, client, template, example_hold)
    if context["deliverable"] is None and template in (
        Template.REVIEW_NEEDED,
        Template.REVISION_REMINDER,
    ):
        context["deliverable"] = {
            "title": f"{context['month_title']} for {client.name} (example)",
            "status": "PENDING_REVIEW" if template is Template.REVIEW_NEEDED else "REJECTED",
            "version": 1,
            "notes": "Make the pricing section concrete (example notes)",
        }
    if template is Template.AUTOMATION_FAILURE:
        context["failure"] = {
            "id": 0,
            "type": "GENERATE_DELIVERABLE",
            "name": automation_name("GENERATE_DELIVERABLE", None, client.current_month),
            "template": "",
            "month": client.current_month,
            "retries": 3,
            "error": "TimeoutError: the generator did not answer (example)",
        }
    return render(template, context)
