"""Emails: who receives each template, what it says (Jinja templates under
`templates/email/`), and sending through the outbox so that a retry never sends twice."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from scheduler import abtests, lookups, rules, timeline, webhook
from scheduler.engine import Context, NotSent, OutgoingMessage, Version
from scheduler.lookups import Journey, local_today
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
def shipped_source(name: str) -> str | None:
    """The shipped file `templates/email/<name>`, if there is one."""
    path = TEMPLATES / "email" / name
    if "/" in name or "\\" in name or not path.is_file():
        return None
    return path.read_text(encoding="utf-8")


def template_source(version: Version | None, name: str) -> str | None:
    """THE source of email template file `name` ("REMINDER_UPCOMING.txt", "_footer.txt") as of
    program version `version`: the version's own text, else the shipped file (None: neither)."""
    if version is not None and name in version.templates:
        return str(version.templates[name])
    return shipped_source(name)


class VersionLoader(BaseLoader):
    """Loads "email/<name>" as `template_source` says for one version."""

    def __init__(self, version: Version | None) -> None:
        self.version = version

    def get_source(self, environment: Environment, template: str) -> tuple[str, None, Any]:
        source = None
        if template.startswith("email/"):
            source = template_source(self.version, template.removeprefix("email/"))
        if source is None:
            raise TemplateNotFound(template)
        return source, None, lambda: True


@lru_cache(maxsize=64)
def environment(version: Version | None = None) -> Environment:
    """The Jinja environment emails of `version` render in. Sandboxed: admins edit these
    templates in the panel, and a template must not reach Python objects (no attribute starting
    with an underscore, no method that changes data)."""
    return ImmutableSandboxedEnvironment(
        loader=VersionLoader(version),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates change with a deploy, which restarts every process: no stat() per render.
        auto_reload=False,
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


@lru_cache(maxsize=256)
def declared(template: Template, version: Version | None = None) -> Declared:
    """The variables a template declares on its first line:
    `{# variables: a, b | optional: c #}`. Optional ones may be None."""
    source = template_source(version, f"{template}.txt") or ""
    found = DECLARATION.match(source)
    if found is None:
        raise MissingVariable(f"{template}: the template declares no variables")

    def names(text: str | None) -> frozenset[str]:
        return frozenset(n.strip() for n in (text or "").split(",") if n.strip())

    return Declared(names(found["required"]), names(found["optional"]))


def render(template: Template, context: dict[str, Any], version: Version | None = None) -> Rendered:
    """Render `template`'s subject and plain text (`<id>.txt`, then the common text footer) and
    its HTML (`<id>.html`). A declared variable that is missing or empty fails loudly: no email
    ever says "Hi ,"."""
    wanted = declared(template, version)
    for name in sorted(wanted.required | wanted.optional):
        if name not in context:
            raise MissingVariable(f"{template}: no value for {name}")
        value = context[name]
        if name in wanted.required and (value is None or value == "" or value == {}):
            raise MissingVariable(f"{template}: {name} is empty")
    env = environment(version)
    text_template = env.get_template(f"email/{template}.txt")
    blocks = text_template.new_context(context)
    subject = "".join(text_template.blocks["subject"](blocks))
    text = "".join(text_template.blocks["body"](blocks)).strip() + "\n"
    text += render_footer(context, version)
    html = env.get_template(f"email/{template}.html").render(context)
    # One line, whatever a name contains: no header injection through the subject.
    subject = " ".join(subject.split())
    return Rendered(subject, text, html)


def active_admins(ctx: Context) -> list[Admin]:
    return list(ctx.session.scalars(select(Admin).where(Admin.active.is_(True)).order_by(Admin.id)))


def recipients(client: Client, template: Template, admins: Sequence[Admin]) -> list[str]:
    """The client, or for admin emails the client's coach (every active admin when the client
    has none, or the coach is no longer active); `admins` are the active admins."""
    if not rules.to_admins(template):
        return [client.email]
    coach = next((a for a in admins if a.id == client.coach_id), None)
    if coach is not None:
        return [coach.email]
    return [a.email for a in admins]


def preferences(client: Client) -> rules.Preferences:
    return rules.Preferences(
        reminders=client.reminders_enabled,
        celebrations=client.celebrations_enabled,
        unsubscribed=client.unsubscribed_at is not None,
    )


def held_back(
    ctx: Context, client: Client, template: Template, sent: Sequence[datetime]
) -> rules.Verdict | None:
    """A client email the client does not want (skipped), or one over the frequency cap
    given when the client's other optional emails of the last 24 hours went (deferred to the
    next allowed moment); None when it goes now."""
    reason = rules.unwanted(template, preferences(client))
    if reason is not None:
        return rules.skip(reason)
    cap = ctx.frequency_cap_of(client)
    when = rules.capped_until(template, sent, cap, ctx.now())
    if when is None:
        return None
    return rules.Verdict(
        False, f"frequency cap: {cap} optional emails in 24 hours; deferred", defer_until=when
    )


def recent_optional(
    ctx: Context, client_ids: Sequence[int], besides: Sequence[int]
) -> dict[int, list[datetime]]:
    """When each client's optional emails of the last 24 hours were made (the frequency cap's
    count), leaving out the emails of the automations `besides` (a re-run's own)."""
    found: dict[int, list[datetime]] = {c: [] for c in client_ids}
    since = ctx.now() - rules.CAP_WINDOW
    for client_id, at in ctx.session.execute(
        select(Email.client_id, Email.created_at).where(
            Email.client_id.in_(list(client_ids)),
            Email.template.in_([str(t) for t in OPTIONAL_TEMPLATES]),
            Email.created_at > since,
            Email.automation_id.not_in(list(besides)),
        )
    ):
        found[client_id].append(at)
    return found


def outbox_row(
    ctx: Context,
    automation: Automation,
    client: Client,
    template: Template,
    address: str,
    journey: Journey,
) -> Email:
    """The automation's email to `address`, rendered now, ready for the outbox."""
    key = f"automation:{automation.id}:{address}"
    variables = context_for(ctx, automation, client, template, journey=journey)
    version = ctx.version_of(client)
    rendered = render(template, variables, version)
    # An A/B test of this template gives the client their variant (the one point it applies).
    chosen = (
        abtests.variant_for(ctx, template, client.id, variables)
        if address == client.email
        else None
    )
    if chosen is not None and chosen.variant == "B":
        rendered = Rendered(
            chosen.subject or rendered.subject,
            (chosen.text.strip() + "\n" + render_footer(variables, version))
            if chosen.text
            else rendered.text,
            chosen.html or rendered.html,
        )
    return Email(
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
        ab_test_id=chosen.test_id if chosen else None,
        variant=chosen.variant if chosen else None,
    )


def render_footer(context: dict[str, Any], version: Version | None = None) -> str:
    """The common text footer every client email ends with."""
    return environment(version).get_template("email/_footer.txt").render(context)


def transmit(ctx: Context, row: Email) -> None:
    """Hand one outbox row to the mail server (or the alert webhook). Raises NotSent when it
    certainly did not arrive; anything else raised means it may have."""
    if row.to_address == webhook.ADDRESS:
        url = ctx.engine.alert_webhook_url
        assert url is not None
        webhook.post(url, row.subject, row.text_body, row.key)
        return
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


def deliver(ctx: Context, row: Email) -> None:
    """Send one outbox row and record it as sent (the weekly digest's way; automations send
    theirs many at a time, the same way, in `scheduler.sending`). The row says SENDING,
    committed, before the transmission begins: a re-run that finds it so knows the first
    transmission may have reached the server, and sends it again with the same Message-ID
    (recorded as possibly sent twice). On failure record the error and raise: a refusal
    (nothing was accepted) makes the row PENDING again, anything else leaves it SENDING."""
    begin(ctx, [row])
    ctx.commit()
    began = time.perf_counter()
    try:
        transmit(ctx, row)
    except Exception as exc:
        failed_send(row, exc)
        ctx.commit()
        raise
    ctx.engine.observer.timed("email", time.perf_counter() - began)
    record_sent(ctx, [row])


def begin(ctx: Context, rows: Sequence[Email]) -> None:
    """Mark the rows as being sent now (the caller counts the attempt, and commits before any
    transmission starts).
    A row already SENDING had a transmission begin that was never confirmed: it may have
    arrived, so the row is marked as possibly sent twice."""
    now = ctx.now()
    for row in rows:
        if row.status == "SENDING" and row.uncertain_at is None:
            row.uncertain_at = row.sending_at or now
            log.warning(
                "email %s to %s: an earlier transmission may have reached the server; sending "
                "again with the same Message-ID",
                row.key,
                row.to_address,
            )
        row.status = "SENDING"
        row.sending_at = now


def failed_send(row: Email, exc: BaseException) -> None:
    """A transmission failed: a refusal makes the row PENDING again (nothing arrived), any
    other failure leaves it SENDING (it may have)."""
    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if isinstance(exc, NotSent):
        row.status = "PENDING"


def uncertain(rows: Sequence[Email]) -> str:
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
    return ctx.engine.links.portal(row.client_id, email=row.automation_id)


def headers_for(ctx: Context, row: Email) -> dict[str, str]:
    """A client's optional emails carry one-click unsubscribe (RFC 8058); every email an
    idempotency key, so that any system downstream can tell a resend from a new message."""
    headers = {"X-Journey-Key": row.key}
    if row.client_id is not None and Template(row.template) in OPTIONAL_TEMPLATES:
        headers["List-Unsubscribe"] = f"<{ctx.engine.links.unsubscribe(row.client_id)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def record_sent(ctx: Context, rows: Sequence[Email]) -> None:
    """The server has these: write that down (one statement), holding on through a database
    blip (a re-run would send them again) for up to half the automations' lease."""
    deadline = time.monotonic() + ctx.engine.lease.total_seconds() / 2
    pause = 0.1
    now = ctx.now()
    while True:
        try:
            ctx.session.execute(
                update(Email)
                .where(Email.id.in_([row.id for row in rows]))
                .values(status="SENT", sent_at=now, last_error=None)
                .execution_options(synchronize_session=False)
            )
            ctx.commit()
            break
        except (OperationalError, InterfaceError):
            ctx.rollback()
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
    for row in rows:
        set_committed_value(row, "status", "SENT")
        set_committed_value(row, "sent_at", now)
        set_committed_value(row, "last_error", None)


def message_id(key: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    return f"<journey.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


# -- what each template is told ----------------------------------------------------------------


@lru_cache(maxsize=8192)
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
    journey: Journey | None = None,
    version: Version | None = None,
) -> dict[str, Any]:
    """What `template` is told, for `automation` (its client's `journey` read once for many
    emails, when the caller has it), as the client's program version (or `version`) says."""
    program = version.program if version is not None else ctx.program_of(client)
    journey = journey or lookups.journey(ctx, client)
    views = journey.views
    done, current, percent = rules.progress(views, program)
    hold = (
        hold_for(automation, client, journey, example_hold) if template in HOLD_TEMPLATES else None
    )
    # The one projection of the timeline (with the hold the email is about, or the open one).
    dates = timeline.projected_dates(ctx, client, hold, journey)
    month = automation.month
    base = ctx.engine.base_url.rstrip("/")
    links = ctx.engine.links
    # A client email's portal links carry its id, so that a click can be recorded (not in a
    # preview, whose automation is not saved).
    tag = automation.id if automation.id and not rules.to_admins(template) else None

    def when(m: int) -> dict[str, Any]:
        if m not in dates:  # a version with more months than the client's journey has
            raise MissingVariable(f"M{m} is not in the journey of {client.name}")
        return {"date": day(dates[m].date, client.timezone), "note": dates[m].note}

    info = program.month(month) if month else None
    deliverable = journey.latest(month) if month else None
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
        "due_date": when(month)["date"] if month else "",
        "due_note": when(month)["note"] if month else "",
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
        "portal_url": links.portal(client.id, email=tag),
        "deliverable_url": links.portal(client.id, f"months/{month}", tag) if month else "",
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
    automation: Automation, client: Client, journey: Journey, example: Hold | None = None
) -> Hold:
    """The hold a hold email is about: the automation's own, the open one, the latest (welcome
    back after it ended), or, in a preview, an example."""
    hold = next((h for h in journey.holds if h.id == automation.hold_id), None)
    hold = hold or journey.open_hold
    if hold is None and example is None and journey.holds:
        hold = journey.holds[-1]
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


def preview(
    ctx: Context, template: Template, client: Client, version: Version | None = None
) -> Rendered:
    """How `template` reads for `client` today, about the client's current month (the month a
    celebration is for, the next one for a check-in), with the client's hold, or an example
    one, where the email needs one. Nothing is saved or sent."""
    if template is Template.WEEKLY_DIGEST:
        raise MissingVariable("WEEKLY_DIGEST is for an admin: preview it with the admin's email")
    program = version.program if version is not None else ctx.program_of(client)
    month: int | None = min(client.current_month, program.length)
    if template is Template.AT_RISK_CHECKIN:  # it comes before the next month's milestone
        month = min(max(client.current_month + 1, 2), program.length)
    elif template is Template.HALFWAY:
        month = program.schedule.halfway_month
    elif template is Template.PROGRAM_COMPLETE:
        month = program.length
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
    context = context_for(ctx, automation, client, template, example_hold, version=version)
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
    return render(template, context, version or ctx.version_of(client))
