"""The automation dashboard's numbers: what ran today and this week, what comes in the next
seven days, and where clients and automations stand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select

from scheduler.engine import Context
from scheduler.models import Automation, AutomationLog, Client, Deliverable
from scheduler.vocab import AutomationStatus, AutomationType, DeliverableStatus, LogStatus

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


def activity(ctx: Context, since: datetime) -> dict[str, int]:
    """Automations carried out (and failed for good) since `since`, by kind."""
    counts = dict.fromkeys([*KINDS.values(), "failed"], 0)
    rows = ctx.session.execute(
        select(AutomationLog.type, AutomationLog.status, func.count())
        .where(
            AutomationLog.at >= since,
            AutomationLog.status.in_([LogStatus.COMPLETED, LogStatus.FAILED]),
        )
        .group_by(AutomationLog.type, AutomationLog.status)
    )
    for type_, status, n in rows:
        if status == LogStatus.FAILED:
            counts["failed"] += n
        elif type_ in KINDS:
            counts[KINDS[AutomationType(type_)]] += n
    return counts


def automation_stats(ctx: Context) -> Stats:
    now = ctx.now()
    midnight = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    week_ago = now - timedelta(days=7)
    delivered = ctx.session.execute(
        select(Deliverable.delivered_at, Deliverable.generated_at).where(
            Deliverable.status == DeliverableStatus.DELIVERED, Deliverable.delivered_at >= week_ago
        )
    ).all()
    # On time: delivered within the escalation delay of its generation.
    limit = timedelta(days=ctx.program.schedule.escalation_days_after)
    on_time = sum(1 for d, g in delivered if g is None or d - g <= limit)
    upcoming = {name if name != "generated" else "generations": 0 for name in KINDS.values()}
    for type_, n in ctx.session.execute(
        select(Automation.type, func.count())
        .where(
            Automation.status == AutomationStatus.SCHEDULED,
            Automation.trigger_at >= now,
            Automation.trigger_at < now + timedelta(days=7),
        )
        .group_by(Automation.type)
    ):
        name = KINDS.get(AutomationType(type_))
        if name:
            upcoming["generations" if name == "generated" else name] += n
    clients = {"active": 0, "on_hold": 0, "completed": 0}
    for paused, completed, n in ctx.session.execute(
        select(
            Client.paused_at.is_not(None), Client.completed_at.is_not(None), func.count()
        ).group_by(Client.paused_at.is_not(None), Client.completed_at.is_not(None))
    ):
        clients["completed" if completed else "on_hold" if paused else "active"] += n
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
        today=activity(ctx, midnight),
        week=activity(ctx, week_ago),
        months_completed=len(delivered),
        on_time_rate=round(on_time / len(delivered), 4) if delivered else None,
        upcoming=upcoming,
        clients=clients,
        automations={
            "scheduled": states.get(AutomationStatus.SCHEDULED, 0),
            "running": states.get(AutomationStatus.RUNNING, 0),
            "failed": states.get(AutomationStatus.FAILED, 0),
        },
    )
