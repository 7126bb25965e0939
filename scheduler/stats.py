"""The API's automation statistics: what ran today and in the last 7 days, what comes in the
next 7, and where clients and automations stand. Counted with the dashboard's own functions
(`scheduler.overview`), in whole UTC days: each number is the count of the log's rows for the
same filter, and on-time delivery has the dashboard's definition."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select

from scheduler import overview
from scheduler.engine import Context
from scheduler.models import Automation
from scheduler.overview import LogFilter
from scheduler.vocab import AutomationStatus, AutomationType, ClientStatus, LogStatus

KINDS = {
    AutomationType.GENERATE_DELIVERABLE: "generated",
    AutomationType.SEND_REMINDER: "reminders",
    AutomationType.SEND_NOTIFICATION: "notifications",
    AutomationType.SEND_CELEBRATION: "celebrations",
    AutomationType.ESCALATE_TO_ADMIN: "escalations",
}


@dataclass(frozen=True)
class Stats:
    at: datetime
    today: dict[str, int]
    week: dict[str, int]
    months_completed: int
    on_time_rate: float | None
    upcoming: dict[str, int]
    clients: dict[str, int]
    automations: dict[str, int]


def activity(ctx: Context, where: LogFilter) -> dict[str, int]:
    """Automations carried out (and failed for good) among the rows `where` names, by kind."""
    counts = dict.fromkeys([*KINDS.values(), "failed"], 0)
    done = replace(where, status=LogStatus.COMPLETED.value)
    for type_, n in overview.tally(ctx, done, "type"):
        kind = KINDS.get(AutomationType(type_))
        if kind:
            counts[kind] += n
    counts["failed"] = overview.exact(ctx, replace(where, status=LogStatus.FAILED.value))
    return counts


def automation_stats(ctx: Context) -> Stats:
    now = ctx.now()
    today = overview.local_today(ctx, "UTC")
    week_start = today - timedelta(days=6)
    delivered = LogFilter(
        template="DELIVERABLE_READY",
        status=LogStatus.COMPLETED.value,
        start=week_start,
        end=today,
    )
    timely, total = overview.on_time(ctx, delivered)
    upcoming = {name if name != "generated" else "generations": 0 for name in KINDS.values()}
    coming = LogFilter(
        status=AutomationStatus.SCHEDULED.value, start=today, end=today + timedelta(days=6)
    )
    for type_, n in overview.tally(ctx, coming, "type"):
        name = KINDS.get(AutomationType(type_))
        if name:
            upcoming["generations" if name == "generated" else name] += n
    state = overview.status_sql(ctx.session.get_bind().dialect.name, now.date())
    clients = {s.value: 0 for s in ClientStatus}
    for code, n in ctx.session.execute(select(state, func.count()).group_by(state)):
        clients[str(code)] += n
    clients["active"] = clients[ClientStatus.ON_TRACK] + clients[ClientStatus.OVERDUE]
    states = dict(
        ctx.session.execute(
            select(Automation.status, func.count())
            .where(
                Automation.status.in_(
                    [AutomationStatus.SCHEDULED, AutomationStatus.RUNNING, AutomationStatus.FAILED]
                )
            )
            .group_by(Automation.status)
        ).all()
    )
    return Stats(
        at=now,
        today=activity(ctx, LogFilter(start=today, end=today)),
        week=activity(ctx, LogFilter(start=week_start, end=today)),
        months_completed=total,
        on_time_rate=round(timely / total, 4) if total else None,
        upcoming=upcoming,
        clients=clients,
        automations={
            "scheduled": states.get(AutomationStatus.SCHEDULED, 0),
            "running": states.get(AutomationStatus.RUNNING, 0),
            "failed": states.get(AutomationStatus.FAILED, 0),
        },
    )
