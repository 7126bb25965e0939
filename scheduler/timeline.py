"""A client's journey as a person reads it: each month's date and state, what comes next,
and what happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from scheduler import plan, rules
from scheduler.engine import Context
from scheduler.lookups import client_zone, month_views
from scheduler.models import Automation, AutomationLog, Client, Hold
from scheduler.vocab import AutomationStatus, AutomationType, DeliverableStatus


@dataclass(frozen=True)
class MonthLine:
    month: int
    title: str
    date: date
    state: str
    opened: bool


@dataclass(frozen=True)
class Timeline:
    client: Client
    done: int
    current: int
    percent: int
    months: list[MonthLine]
    upcoming: list[Automation]
    holds: list[Hold]
    history: list[AutomationLog]


STATE = {
    None: "scheduled",
    DeliverableStatus.GENERATING: "generating",
    DeliverableStatus.PENDING_REVIEW: "pending review",
    DeliverableStatus.DELIVERED: "delivered",
    DeliverableStatus.REJECTED: "rejected",
    DeliverableStatus.SKIPPED: "skipped",
}


def month_dates(ctx: Context, client: Client) -> dict[int, date]:
    """Each month's milestone as it stands now (after holds and adjustments): the local date of
    its planned generation."""
    tz = client_zone(client)
    dates = {
        step.month: plan.step_date(client.start_date, step, ctx.program, client.held_days)
        for step in plan.journey_steps(ctx.program)
        if step.type is AutomationType.GENERATE_DELIVERABLE
    }
    rows = ctx.session.execute(
        select(Automation.month, Automation.trigger_at).where(
            Automation.client_id == client.id,
            Automation.key.like("plan:GENERATE_DELIVERABLE:%"),
        )
    )
    for month, trigger_at in rows:
        dates[month] = plan.local_date(trigger_at, tz)
    return dates


def build(ctx: Context, client: Client, *, days_ahead: int = 30, history: int = 50) -> Timeline:
    views = month_views(ctx, client)
    done, current, percent = rules.progress(views, ctx.program)
    dates = month_dates(ctx, client)
    paused = client.paused_at is not None
    lines = []
    for month in ctx.program.months:
        view = views.get(month.number, rules.MonthView())
        state = STATE[view.status]
        if paused and view.status is None:
            state = "on hold"
        lines.append(MonthLine(month.number, month.title, dates[month.number], state, view.opened))
    horizon: datetime = ctx.now() + timedelta(days=days_ahead)
    upcoming = list(
        ctx.session.scalars(
            select(Automation)
            .where(
                Automation.client_id == client.id,
                Automation.status == AutomationStatus.SCHEDULED,
                Automation.trigger_at <= horizon,
            )
            .order_by(Automation.trigger_at, Automation.id)
        )
    )
    logs = list(
        ctx.session.scalars(
            select(AutomationLog)
            .where(AutomationLog.client_id == client.id)
            .order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
            .limit(history)
        )
    )
    holds = list(
        ctx.session.scalars(
            select(Hold).where(Hold.client_id == client.id).order_by(Hold.started_at)
        )
    )
    return Timeline(client, done, current, percent, lines, upcoming, holds, logs)
