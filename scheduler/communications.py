"""What a client was sent and will be sent: every email automation of the client's, with what
became of it (sent, pending, held by the hold, deferred by the frequency cap, skipped and why,
cancelled, failed) and the email as it went out; and the client's subscription, which an
admin may change (the change is recorded, with who made it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from scheduler import audit, emails, lookups, outcomes, portal
from scheduler.engine import Context
from scheduler.errors import NotFound
from scheduler.models import Automation, AutomationLog, Client, Email, fits_id
from scheduler.vocab import (
    ADMIN_TEMPLATES,
    AutomationStatus,
    LogStatus,
    Template,
    automation_name,
)

# The states a person reads, from an automation's status and what `outcomes.expect` foretells.
FORETOLD = {
    "now": "pending",
    "grace": "pending",
    "scheduled": "pending",
    "running": "pending",
    "held": "held",
    "waiting": "held",
    "deferred": "deferred",
    "skipped": "skipped",
}


@dataclass(frozen=True)
class Communication:
    automation_id: int
    name: str  # "Upcoming reminder to client (M2)"
    template: str
    month: int | None
    # sent, sending, pending, held, deferred, skipped, cancelled, failed
    state: str
    at: datetime | None  # when it went, or is expected to
    text: str  # what became of it, or will, in plain words
    email_id: int | None = None  # the outbox row, once written
    subject: str = ""
    clicked_at: datetime | None = None  # the client's first click on a portal link in it


def communications(ctx: Context, client: Client, limit: int = 500) -> list[Communication]:
    """Every email meant for the client, the latest first: one line per message sent, and one
    per email still to come or that will not go (with why)."""
    client_templates = [str(t) for t in Template if t not in ADMIN_TEMPLATES]
    automations = list(
        ctx.session.scalars(
            select(Automation)
            .where(
                Automation.client_id == client.id,
                Automation.template.in_(client_templates),
            )
            .order_by(Automation.trigger_at.desc(), Automation.id.desc())
            .limit(limit)
        )
    )
    ids = [a.id for a in automations]
    rows: dict[int, list[Email]] = {}
    deferred: set[int] = set()
    if ids:
        for row in ctx.session.scalars(
            select(Email)
            .where(Email.automation_id.in_(ids), Email.to_address == client.email)
            .order_by(Email.id)
        ):
            rows.setdefault(row.automation_id or 0, []).append(row)
        deferred = set(
            ctx.session.scalars(
                select(AutomationLog.automation_id).where(
                    AutomationLog.automation_id.in_(ids),
                    AutomationLog.status == LogStatus.DEFERRED,
                )
            )
        )
    journey = lookups.journey(ctx, client)
    hold = journey.open_hold if client.paused_at else None
    out: list[Communication] = []
    for a in automations:
        name = automation_name(a.type, a.template, a.month)

        def line(
            state: str, at: datetime | None, text: str, a: Automation = a, name: str = name
        ) -> Communication:
            return Communication(a.id, name, a.template or "", a.month, state, at, text)

        if a.status == AutomationStatus.COMPLETED and rows.get(a.id):
            for row in rows[a.id]:
                sent = row.status == "SENT"
                out.append(
                    Communication(
                        a.id,
                        name,
                        row.template,
                        row.month,
                        "sent" if sent else "sending",
                        row.sent_at if sent else row.created_at,
                        f"sent to {row.to_address}" if sent else "being sent",
                        row.id,
                        row.subject,
                        row.clicked_at,
                    )
                )
        elif a.status == AutomationStatus.COMPLETED:
            out.append(line("sent", a.executed_at, a.detail or "done"))
        elif a.status == AutomationStatus.SKIPPED:
            out.append(
                line("skipped", a.executed_at or a.trigger_at, f"skipped because {a.detail}")
            )
        elif a.status == AutomationStatus.CANCELLED:
            out.append(line("cancelled", a.updated_at, f"cancelled: {a.detail}"))
        elif a.status == AutomationStatus.FAILED:
            out.append(line("failed", a.executed_at, f"failed: {a.error or a.detail}"))
        else:
            e = outcomes.expect(ctx, a, client, hold, journey)
            state = FORETOLD.get(e.state, "pending")
            text = e.text
            if state == "pending" and a.id in deferred and a.status == AutomationStatus.SCHEDULED:
                state = "deferred"
                until = outcomes.local(ctx, client, a.trigger_at)
                text = f"deferred by the frequency cap until {until}"
            out.append(line(state, e.at or a.trigger_at, text))
    return out


def sent_email(ctx: Context, client: Client, email_id: int) -> Email:
    """One email the client was sent, as it went out."""
    row = ctx.session.get(Email, email_id) if fits_id(email_id) else None
    if row is None or row.client_id != client.id or row.to_address != client.email:
        raise NotFound(f"no email {email_id} to {client.name}", "email_id")
    return row


def subscription(client: Client) -> dict[str, bool]:
    """What the client receives, as their preferences page shows it."""
    chosen = portal.choices(client)
    return {
        "subscribed": chosen.subscribed,
        "reminders": chosen.reminders,
        "celebrations": chosen.celebrations,
    }


def set_subscription(
    ctx: Context, client: Client, *, subscribed: bool, reminders: bool, celebrations: bool
) -> dict[str, bool]:
    """An admin changes the client's email preferences (the same rule as the client's own
    preferences page); the change is recorded with who made it."""
    before = settings(client)
    portal.set_preferences(
        ctx, client, reminders=reminders, celebrations=celebrations, subscribed=subscribed
    )
    audit.record(ctx, client, "email preferences", before, settings(client))
    return subscription(client)


def settings(client: Client) -> dict[str, object]:
    return {
        "unsubscribed": emails.preferences(client).unsubscribed,
        "reminders_enabled": client.reminders_enabled,
        "celebrations_enabled": client.celebrations_enabled,
    }
