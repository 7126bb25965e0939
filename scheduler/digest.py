"""The weekly digest: every Monday at 08:00 in each admin's own time zone, what fired in the
week before (counts and the rows behind them) and what is coming in the next seven days.

The sweep calls `send_due` every minute. An outbox row keyed by admin and week is the claim
(its unique key lets one sweeper in); a send that failed is tried again by a later sweep, a
few minutes apart, up to three times."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from scheduler import emails
from scheduler.engine import Context
from scheduler.models import Admin, Automation, AutomationLog, Client, Email
from scheduler.vocab import AutomationStatus, LogStatus, Template

log = logging.getLogger(__name__)

SEND_AT = time(8, 0)
LIST_LIMIT = 50  # rows listed under each heading (the counts cover everything)
ATTEMPTS = 3
RETRY_AFTER = timedelta(minutes=5)


def week_of(now: datetime, zone: str) -> tuple[date, datetime]:
    """The Monday of `now`'s week in `zone`, and the instant of 08:00 that Monday."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    return monday, datetime.combine(monday, SEND_AT, tz)


def context(ctx: Context, admin: Admin, until: datetime) -> dict[str, Any]:
    """What the digest tells: the week up to `until`, and the seven days after it."""
    since = until - timedelta(days=7)
    ahead = until + timedelta(days=7)
    fired = ctx.session.execute(
        select(AutomationLog, Client.name)
        .join(Client, Client.id == AutomationLog.client_id)
        .where(AutomationLog.at >= since, AutomationLog.at < until)
        .where(AutomationLog.status != LogStatus.RETRYING)
        .order_by(AutomationLog.at)
    ).all()
    coming = ctx.session.execute(
        select(Automation, Client.name)
        .join(Client, Client.id == Automation.client_id)
        .where(
            Automation.status == AutomationStatus.SCHEDULED,
            Automation.trigger_at >= until,
            Automation.trigger_at < ahead,
            Client.paused_at.is_(None),
        )
        .order_by(Automation.trigger_at)
    ).all()
    zone = ZoneInfo(admin.timezone)

    def line(
        at: datetime, name: str, type_: str, template: str | None, month: int | None, status: str
    ) -> dict[str, str]:
        what = (template or type_).replace("_", " ").lower()
        return {
            "at": at.astimezone(zone).strftime("%a %d %b %H:%M"),
            "client": name,
            "what": f"{what} (M{month})" if month else what,
            "status": status,
        }

    failures = [row for row, _ in fired if row.status == LogStatus.FAILED]
    return {
        "audience": "admins",
        "preferences_url": None,  # admins have no client preferences
        "unsubscribe_url": None,
        "admin": {"name": admin.name or admin.email.split("@")[0], "email": admin.email},
        "program": ctx.program.name,
        "week": {
            "start": emails.day(since.astimezone(zone).date(), admin.timezone),
            "end": emails.day((until - timedelta(days=1)).astimezone(zone).date(), admin.timezone),
        },
        "fired_counts": sorted(Counter(row.status for row, _ in fired).items()),
        "fired_total": len(fired),
        "fired": [
            line(r.at, name, r.type, r.template, r.month, r.status)
            for r, name in fired[:LIST_LIMIT]
        ],
        "failures": len(failures),
        "coming_counts": sorted(Counter(a.type for a, _ in coming).items()),
        "coming_total": len(coming),
        "coming": [
            line(a.trigger_at, name, a.type, a.template, a.month, "scheduled")
            for a, name in coming[:LIST_LIMIT]
        ],
        "list_limit": LIST_LIMIT,
        "panel_url": ctx.engine.base_url.rstrip("/") + "/",
    }


def render_for(ctx: Context, admin: Admin, until: datetime) -> emails.Rendered:
    return emails.render(Template.WEEKLY_DIGEST, context(ctx, admin, until))


def send_due(ctx: Context) -> int:
    """Send each active admin's digest for this week once its Monday 08:00 has come (not
    later than that Monday: a digest is not sent days late). Returns how many were sent."""
    now = ctx.now()
    sent = 0
    for admin in ctx.session.scalars(select(Admin).where(Admin.active.is_(True))):
        monday, due = week_of(now, admin.timezone)
        if not due <= now < due + timedelta(days=1):
            continue
        key = f"digest:{admin.id}:{monday.isoformat()}"
        row = ctx.session.scalar(select(Email).where(Email.key == key))
        if row is None:
            rendered = render_for(ctx, admin, due)
            row = Email(
                key=key,
                to_address=admin.email,
                template=Template.WEEKLY_DIGEST,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                status="PENDING",
                message_id=emails.message_id(key, ctx.engine.mail_sender),
                attempts=0,
                created_at=now,
            )
            try:
                with ctx.session.begin_nested():
                    ctx.session.add(row)
            except IntegrityError:  # another sweeper made it first: it sends it
                continue
        elif (
            row.status == "SENT"
            or row.attempts >= ATTEMPTS
            or now - row.created_at < RETRY_AFTER * row.attempts
        ):
            continue
        # Claim this attempt: only the sweeper whose update matches sends.
        claimed = ctx.session.execute(
            update(Email)
            .where(
                Email.id == row.id,
                Email.status.in_(["PENDING", "SENDING"]),
                Email.attempts == row.attempts,
            )
            .values(attempts=row.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        ctx.commit()
        if not claimed:
            continue
        ctx.session.refresh(row)
        try:
            emails.deliver(ctx, row)
        except Exception as exc:
            log.warning("weekly digest for %s failed: %s", admin.email, exc)
            continue
        sent += 1
    return sent
