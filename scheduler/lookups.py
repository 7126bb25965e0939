"""Reading a client's journey from the database: the client, their deliverables, holds and
pending automations, and their local calendar."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import defer

from scheduler import plan, risk, rules
from scheduler.engine import Context
from scheduler.errors import NotFound
from scheduler.inputs import check_month
from scheduler.models import Automation, Client, Deliverable, Hold, fits_id, looks_like_id
from scheduler.vocab import (
    AutomationStatus,
    AutomationType,
    DeliverableStatus,
    Template,
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
    return plan.send_instant(day, client_zone(client), ctx.send_hour_of(client))


def latest_deliverable(ctx: Context, client: Client, month: int) -> Deliverable | None:
    return ctx.session.scalar(
        select(Deliverable)
        .where(Deliverable.client_id == client.id, Deliverable.month == month)
        .order_by(Deliverable.version.desc())
        .limit(1)
    )


def require_deliverable(ctx: Context, client: Client, month: int) -> Deliverable:
    deliverable = latest_deliverable(ctx, client, check_month(ctx, month, client))
    if deliverable is None:
        raise NotFound(f"M{month} of {client.name} has no deliverable yet", "month")
    return deliverable


def month_views(ctx: Context, client: Client) -> dict[int, rules.MonthView]:
    """Each month's newest deliverable, as the rules see it."""
    rows = ctx.session.execute(
        select(Deliverable.month, Deliverable.status, Deliverable.opened_at)
        .where(Deliverable.client_id == client.id)
        .order_by(Deliverable.month, Deliverable.version)
    )
    return views_of(rows)


def views_of(rows: Iterable[Any]) -> dict[int, rules.MonthView]:
    """(month, status, opened_at) rows in month and version order, as the rules see them."""
    views: dict[int, rules.MonthView] = {}
    for month, status, opened_at in rows:
        views[month] = rules.MonthView(DeliverableStatus(status), opened_at is not None)
    return views


@dataclass
class Journey:
    """What the rules, the dates' projection and the emails read of one client's journey,
    loaded for many clients at a time (`journeys`)."""

    client: Client
    deliverables: list[Deliverable] = field(default_factory=list)  # month, version order
    holds: list[Hold] = field(default_factory=list)  # oldest first
    # The plan's generation of each month: (month, trigger_at, status).
    generations: list[tuple[int, datetime, str]] = field(default_factory=list)
    # The client's kept risk score (`risk.kept_scores`), when their program plans at-risk check-ins.
    risk: rules.Risk | None = None

    @property
    def views(self) -> dict[int, rules.MonthView]:
        return views_of((d.month, d.status, d.opened_at) for d in self.deliverables)

    def latest(self, month: int) -> Deliverable | None:
        found = [d for d in self.deliverables if d.month == month]
        return found[-1] if found else None

    @property
    def open_hold(self) -> Hold | None:
        return next((h for h in self.holds if h.ended_at is None), None)


def journeys(
    ctx: Context,
    clients: Sequence[Client],
    *,
    scored: Collection[int] | None = None,
    deliverables: bool = True,
) -> dict[int, Journey]:
    """The journeys of these clients, in three queries however many they are; and, for those
    whose program plans at-risk check-ins (among `scored`, when given: the clients whose
    check-in is being judged), their kept risk score, in two more. Without `deliverables`,
    what dates need only (the holds and the planned generations)."""
    found = {c.id: Journey(c) for c in clients}
    ids = list(found)
    judged = [
        c.id
        for c in clients
        if ctx.program_of(c).schedule.at_risk_checkin_days and (scored is None or c.id in scored)
    ]
    # Exact keys, so that the (client_id, key) index finds each row directly.
    generations = [
        plan.step_key(AutomationType.GENERATE_DELIVERABLE, m)
        for m in range(1, max((ctx.program_of(c).length for c in clients), default=0) + 1)
    ]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for d in (
            ctx.session.scalars(
                select(Deliverable)
                .where(Deliverable.client_id.in_(chunk))
                # What the rules and emails read of them: not their texts (read when used).
                .options(defer(Deliverable.content), defer(Deliverable.generated_content))
                .order_by(Deliverable.client_id, Deliverable.month, Deliverable.version)
            )
            if deliverables
            else ()
        ):
            found[d.client_id].deliverables.append(d)
        for h in ctx.session.scalars(
            select(Hold).where(Hold.client_id.in_(chunk)).order_by(Hold.started_at, Hold.id)
        ):
            found[h.client_id].holds.append(h)
        for client_id, month, at, status in ctx.session.execute(
            select(
                Automation.client_id, Automation.month, Automation.trigger_at, Automation.status
            ).where(
                Automation.client_id.in_(chunk),
                Automation.key.in_(generations),
            )
        ):
            found[client_id].generations.append((month, at, status))
    if judged:
        trained = risk.latest(ctx) is not None
        scores = risk.kept_scores(ctx, judged) if trained else {}
        for client_id in judged:
            found[client_id].risk = scores.get(client_id, rules.Risk(None, unscored=trained))
    return found


def journey(ctx: Context, client: Client) -> Journey:
    return journeys(ctx, [client])[client.id]


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


def verdict(automation: Automation, journey: Journey) -> rules.Verdict:
    """Whether the automation has a reason to act, as the journey stands (`rules.decide`): what
    the engine decides when it runs it, and what the pages foretell."""
    views = journey.views
    month = automation.month
    this = views.get(month, rules.MonthView()) if month else rules.MonthView()
    previous = views.get(month - 1, rules.MonthView()) if month and month > 1 else None
    hold = journey.open_hold
    return rules.decide(
        AutomationType(automation.type),
        Template(automation.template) if automation.template else None,
        month,
        this,
        previous,
        hold_active=hold is not None and automation.hold_id == hold.id,
        risk=journey.risk,
    )
