"""The weekly digest: every Monday at 08:00 in each admin's own time zone, what fired in the
week before (counts and the rows behind them) and what is coming in the next seven days.

The sweep calls `send_due` every minute. An outbox row keyed by admin and week is the claim
(its unique key lets one sweeper in); a send that failed is tried again by a later sweep, a
few minutes apart, up to three times."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from scheduler import emails, overview
from scheduler.engine import Context
from scheduler.models import Admin, Email
from scheduler.vocab import (
    LOG_STATUS_LABELS,
    TYPE_NAMES,
    AutomationStatus,
    AutomationType,
    LogStatus,
    Template,
    automation_name,
)

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


def context(ctx: Context, admin: Admin, today: date) -> dict[str, Any]:
    """What the digest tells, in the admin's zone: the seven days before `today`, and `today`
    with the six days after it. Counted and listed by the log's own query, as the dashboard
    counts (the rows behind each count are the log page's rows for the same filter)."""
    zone = admin.timezone
    fired = overview.LogFilter(
        start=today - timedelta(days=7), end=today - timedelta(days=1), zone=zone
    )
    coming = overview.LogFilter(
        status=AutomationStatus.SCHEDULED.value,
        start=today,
        end=today + timedelta(days=6),
        zone=zone,
    )
    tz = ZoneInfo(zone)

    def line(at: datetime, name: str, row: Any, status: str) -> dict[str, str]:
        return {
            "at": at.astimezone(tz).strftime("%a %d %b %H:%M"),
            "client": name,
            "what": automation_name(row.type, row.template, row.month),
            "status": LOG_STATUS_LABELS.get(status, status.lower()),
        }

    fired_rows = overview.logs(ctx, fired, 1).rows[:LIST_LIMIT]
    coming_rows = overview.logs(ctx, coming, 1).rows[:LIST_LIMIT]
    fired_counts = overview.tally(ctx, fired, "status")
    coming_counts = overview.tally(ctx, coming, "type")
    base = ctx.engine.base_url.rstrip("/")
    return {
        "audience": "admins",
        "preferences_url": None,  # admins have no client preferences
        "unsubscribe_url": None,
        "admin": {"name": admin.name or admin.email.split("@")[0], "email": admin.email},
        "program": ctx.program.name,
        "zone": zone,
        "week": {
            "start": emails.day(today - timedelta(days=7), zone),
            "end": emails.day(today - timedelta(days=1), zone),
        },
        "fired_counts": [(LOG_STATUS_LABELS.get(s, s), n) for s, n in fired_counts],
        "fired_total": sum(n for _, n in fired_counts),
        "fired": [line(r.at, name, r, r.status) for r, name in fired_rows],
        "failures": dict(fired_counts).get(LogStatus.FAILED.value, 0),
        "coming_counts": [(TYPE_NAMES[AutomationType(t)], n) for t, n in coming_counts],
        "coming_total": sum(n for _, n in coming_counts),
        "coming": [line(a.trigger_at, name, a, "SCHEDULED") for a, name in coming_rows],
        "list_limit": LIST_LIMIT,
        "panel_url": base + "/",
        "fired_url": f"{base}/log?{urlencode(fired.link())}",
        "coming_url": f"{base}/log?{urlencode(coming.link())}",
    }


def render_for(ctx: Context, admin: Admin, today: date) -> emails.Rendered:
    return emails.render(
        Template.WEEKLY_DIGEST,
        context(ctx, admin, today),
        ctx.engine.version(ctx.session, ctx.current_version()),
    )


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
            rendered = render_for(ctx, admin, monday)
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
