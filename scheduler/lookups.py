"""Reading a client's journey from the database: the client, their deliverables, holds and
pending automations, and their local calendar."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from scheduler import plan, rules
from scheduler.engine import Context
from scheduler.errors import NotFound
from scheduler.inputs import check_month
from scheduler.models import Automation, Client, Deliverable, Hold, fits_id, looks_like_id
from scheduler.vocab import (
    AutomationStatus,
    DeliverableStatus,
)


def find_client(ctx: Context, ref: str | int) -> Client:
    """A client by id or email."""
    client: Client | None
    text = str(ref).strip()
    if looks_like_id(text):
        client = ctx.session.get(Client, int(text)) if fits_id(int(text)) else None
    else:
        client = ctx.session.scalar(select(Client).where(Client.email == text.lower()))
    if client is None:
        raise NotFound(f"no client {text!r} (give an id or an email)", "client")
    return client


def find_automation(ctx: Context, automation_id: int) -> Automation:
    automation = ctx.session.get(Automation, automation_id) if fits_id(automation_id) else None
    if automation is None:
        raise NotFound(f"no automation {automation_id}", "automation")
    return automation


def client_zone(client: Client) -> ZoneInfo:
    return plan.zone(client.timezone)


def local_today(ctx: Context, client: Client) -> date:
    return plan.local_date(ctx.now(), client_zone(client))


def at_send_hour(ctx: Context, client: Client, day: date) -> datetime:
    return plan.send_instant(day, client_zone(client), ctx.engine.send_hour)


def latest_deliverable(ctx: Context, client: Client, month: int) -> Deliverable | None:
    return ctx.session.scalar(
        select(Deliverable)
        .where(Deliverable.client_id == client.id, Deliverable.month == month)
        .order_by(Deliverable.version.desc())
        .limit(1)
    )


def require_deliverable(ctx: Context, client: Client, month: int) -> Deliverable:
    deliverable = latest_deliverable(ctx, client, check_month(ctx, month))
    if deliverable is None:
        raise NotFound(f"M{month} of {client.name} has no deliverable yet", "month")
    return deliverable


def month_views(ctx: Context, client: Client) -> dict[int, rules.MonthView]:
    """Each month's newest deliverable, as the rules see it."""
    views: dict[int, rules.MonthView] = {}
    rows = ctx.session.execute(
        select(Deliverable.month, Deliverable.status, Deliverable.opened_at)
        .where(Deliverable.client_id == client.id)
        .order_by(Deliverable.month, Deliverable.version)
    )
    for month, status, opened_at in rows:
        views[month] = rules.MonthView(DeliverableStatus(status), opened_at is not None)
    return views


def open_hold(ctx: Context, client: Client) -> Hold | None:
    return ctx.session.scalar(
        select(Hold).where(Hold.client_id == client.id, Hold.ended_at.is_(None)).limit(1)
    )


def pending(ctx: Context, client: Client, **where: Any) -> list[Automation]:
    query = select(Automation).where(
        Automation.client_id == client.id, Automation.status == AutomationStatus.SCHEDULED
    )
    for name, value in where.items():
        query = query.where(getattr(Automation, name) == value)
    return list(ctx.session.scalars(query.order_by(Automation.trigger_at, Automation.id)))
