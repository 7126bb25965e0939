"""What the admin panel shows, as plain queries: the clients with their status, the
automation health dashboard, and the automation log with its filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, case, false, func, or_, select

from scheduler.engine import Context
from scheduler.models import (
    Automation,
    AutomationLog,
    Client,
    Deliverable,
    fits_id,
    looks_like_id,
)
from scheduler.vocab import AutomationStatus, AutomationType, DeliverableStatus, LogStatus

PER_PAGE = 50
LOG_COUNT_CAP = 10_000
STATUSES = ("on track", "overdue", "paused", "completed")
SORTS = ("name", "start", "month", "status")
# A month is overdue once its escalation point has passed and it is still not done.
OVERDUE_AFTER_DAYS = 7


@dataclass(frozen=True)
class ClientRow:
    id: int
    name: str
    email: str
    start_date: date
    current_month: int
    status: str
    next_at: datetime | None = None
    next_what: str = ""


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    total: int
    page: int
    pages: int


def current_month_done() -> Any:
    """SQL: the client's current month is delivered or skipped."""
    return (
        select(Deliverable.id)
        .where(
            Deliverable.client_id == Client.id,
            Deliverable.month == Client.current_month,
            Deliverable.status.in_([DeliverableStatus.DELIVERED, DeliverableStatus.SKIPPED]),
        )
        .exists()
    )


def overdue_from(dialect: str) -> Any:
    """SQL for the first day a client counts as overdue: the month being worked on (the current
    one, or the next when the current is done) is OVERDUE_AFTER_DAYS past its milestone (start +
    held days + 30 per month)."""
    month = Client.current_month + case((current_month_done(), 1), else_=0)
    days = Client.held_days + 30 * (month - 1) + OVERDUE_AFTER_DAYS + 1
    if dialect == "sqlite":  # dates are ISO text there
        return func.date(Client.start_date, func.printf("+%d days", days))
    return Client.start_date + days  # PostgreSQL: date + integer is a date


def status_sql(dialect: str, today: date) -> Any:
    limit = today.isoformat() if dialect == "sqlite" else today
    return case(
        (Client.completed_at.is_not(None), "completed"),
        (Client.paused_at.is_not(None), "paused"),
        (overdue_from(dialect) <= limit, "overdue"),
        else_="on track",
    )


def clients(
    ctx: Context, *, q: str = "", status: str = "", sort: str = "name", page: int = 1
) -> Page:
    """Clients matching `q` (name or email) and `status`, sorted, one page of them, each with
    its next automation. Filtering, sorting and paging happen in the database."""
    dialect = ctx.session.get_bind().dialect.name
    today = ctx.now().date()  # a day's precision is what the status needs
    state = status_sql(dialect, today)
    where = []
    if q.strip():
        like = f"%{q.strip().lower()}%"
        where.append(or_(func.lower(Client.name).like(like), Client.email.like(like)))
    if status in STATUSES:
        where.append(state == status)
    total = int(ctx.session.scalar(select(func.count()).select_from(Client).where(*where)) or 0)
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(page, 1), pages)
    rank = case({s: i for i, s in enumerate(STATUSES)}, value=state)
    order = {
        "name": (func.lower(Client.name), Client.id),
        "start": (Client.start_date, Client.id),
        "month": (Client.current_month, func.lower(Client.name)),
        "status": (rank, func.lower(Client.name)),
    }[sort if sort in SORTS else "name"]
    found = ctx.session.execute(
        select(Client.id, Client.name, Client.email, Client.start_date, Client.current_month, state)
        .where(*where)
        .order_by(*order)
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    ).all()
    nexts = next_automations(ctx, [r[0] for r in found])
    rows = [
        ClientRow(id, name, email, start, month, str(label), *nexts.get(id, (None, "")))
        for id, name, email, start, month, label in found
    ]
    return Page(rows, total, page, pages)


def next_automations(ctx: Context, ids: list[int]) -> dict[int, tuple[datetime, str]]:
    if not ids:
        return {}
    found: dict[int, tuple[datetime, str]] = {}
    for client_id, at, type_, template, month in ctx.session.execute(
        select(
            Automation.client_id,
            Automation.trigger_at,
            Automation.type,
            Automation.template,
            Automation.month,
        )
        .where(Automation.client_id.in_(ids), Automation.status == AutomationStatus.SCHEDULED)
        .order_by(Automation.client_id, Automation.trigger_at)
    ):
        if client_id not in found:
            what = (template or type_).replace("_", " ").lower()
            found[client_id] = (at, f"{what} M{month}" if month else what)
    return found


def review_queue(ctx: Context, page: int = 1) -> Page:
    """Deliverables waiting for an admin, oldest first, one page of them with their clients."""
    waiting = Deliverable.status == DeliverableStatus.PENDING_REVIEW
    total = int(
        ctx.session.scalar(select(func.count()).select_from(Deliverable).where(waiting)) or 0
    )
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(page, 1), pages)
    rows = ctx.session.execute(
        select(Deliverable, Client)
        .join(Client, Client.id == Deliverable.client_id)
        .where(waiting)
        .order_by(Deliverable.generated_at, Deliverable.id)
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    ).all()
    return Page(rows, total, page, pages)


# -- the dashboard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    label: str
    value: int | str
    link: dict[str, str] = field(default_factory=dict)  # the log or client filter behind it


@dataclass(frozen=True)
class Dashboard:
    today: list[Count]
    week: list[Count]
    ahead: list[Count]
    daily: list[tuple[date, dict[str, int]]]  # the last 14 days, completed automations by type


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def dashboard(ctx: Context) -> Dashboard:
    now = ctx.now()
    today = now.date()
    midnight = day_start(today)
    week_ago = now - timedelta(days=7)
    ahead = now + timedelta(days=7)

    def logged(since: datetime, *where: Any) -> int:
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(AutomationLog)
                .where(AutomationLog.at >= since, *where)
            )
            or 0
        )

    def scheduled(*where: Any) -> int:
        return int(
            ctx.session.scalar(
                select(func.count())
                .select_from(Automation)
                .where(
                    Automation.status == AutomationStatus.SCHEDULED,
                    Automation.trigger_at >= now,
                    Automation.trigger_at < ahead,
                    *where,
                )
            )
            or 0
        )

    done = AutomationLog.status == LogStatus.COMPLETED
    day = {"from": today.isoformat()}
    today_counts = [
        Count(
            "generated",
            logged(midnight, done, AutomationLog.type == AutomationType.GENERATE_DELIVERABLE),
            day | {"type": "GENERATE_DELIVERABLE", "status": "COMPLETED"},
        ),
        Count(
            "reminders sent",
            logged(midnight, done, AutomationLog.type == AutomationType.SEND_REMINDER),
            day | {"type": "SEND_REMINDER", "status": "COMPLETED"},
        ),
        Count(
            "escalations",
            logged(midnight, done, AutomationLog.type == AutomationType.ESCALATE_TO_ADMIN),
            day | {"type": "ESCALATE_TO_ADMIN", "status": "COMPLETED"},
        ),
        Count(
            "failures",
            logged(midnight, AutomationLog.status == LogStatus.FAILED),
            day | {"status": "FAILED"},
        ),
    ]
    delivered = ctx.session.execute(
        select(Deliverable.generated_at, Deliverable.delivered_at).where(
            Deliverable.status == DeliverableStatus.DELIVERED, Deliverable.delivered_at >= week_ago
        )
    ).all()
    on_time = sum(
        1 for g, d in delivered if g is not None and d is not None and d - g <= timedelta(days=3)
    )
    rate = f"{round(100 * on_time / len(delivered))}%" if delivered else "n/a"
    overdue = clients(ctx, status="overdue").total
    week = {"from": week_ago.date().isoformat()}
    week_counts = [
        Count(
            "on-time delivery", rate, week | {"type": "SEND_NOTIFICATION", "status": "COMPLETED"}
        ),
        Count("clients overdue", overdue, {"status": "overdue", "view": "clients"}),
        Count(
            "months completed",
            len(delivered),
            week | {"type": "SEND_CELEBRATION", "status": "COMPLETED"},
        ),
    ]
    upcoming = {"from": today.isoformat(), "to": ahead.date().isoformat(), "status": "SCHEDULED"}
    ahead_counts = [
        Count(
            "to generate",
            scheduled(Automation.type == AutomationType.GENERATE_DELIVERABLE),
            upcoming | {"type": "GENERATE_DELIVERABLE"},
        ),
        Count(
            "reminders",
            scheduled(Automation.type == AutomationType.SEND_REMINDER),
            upcoming | {"type": "SEND_REMINDER"},
        ),
        Count(
            "celebrations",
            scheduled(Automation.type == AutomationType.SEND_CELEBRATION),
            upcoming | {"type": "SEND_CELEBRATION"},
        ),
    ]
    first = today - timedelta(days=13)
    series: dict[date, dict[str, int]] = {first + timedelta(days=i): {} for i in range(14)}
    for on, type_, n in ctx.session.execute(
        select(func.date(AutomationLog.at), AutomationLog.type, func.count())
        .where(AutomationLog.at >= day_start(first), done)
        .group_by(func.date(AutomationLog.at), AutomationLog.type)
    ):
        key = on if isinstance(on, date) else date.fromisoformat(str(on))
        if key in series:
            series[key][type_] = int(n)
    return Dashboard(today_counts, week_counts, ahead_counts, sorted(series.items()))


# -- the log ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    client: str = ""  # id, email or part of a name
    type: str = ""
    status: str = ""
    start: date | None = None
    end: date | None = None  # inclusive


def logs(ctx: Context, where: LogFilter, page: int = 1) -> Page:
    """Automation log rows (or, for status SCHEDULED, pending automations) matching the filter,
    newest first, one page."""
    pending = where.status == AutomationStatus.SCHEDULED
    table: Any = Automation if pending else AutomationLog
    when = Automation.trigger_at if pending else AutomationLog.at
    query: Select[Any] = select(table, Client.name).join(Client, Client.id == table.client_id)
    if where.client.strip():
        text = where.client.strip()
        if looks_like_id(text):
            query = query.where(Client.id == int(text) if fits_id(int(text)) else false())
        else:
            like = f"%{text.lower()}%"
            query = query.where(or_(Client.email.like(like), func.lower(Client.name).like(like)))
    if where.type:
        query = query.where(table.type == where.type)
    if where.status:
        query = query.where(table.status == where.status)
    if where.start:
        query = query.where(when >= day_start(where.start))
    if where.end:
        query = query.where(when < day_start(where.end + timedelta(days=1)))
    # Counted up to LOG_COUNT_CAP: past that, "10,000+" says enough, and costs no full scan.
    total = int(
        ctx.session.scalar(
            select(func.count()).select_from(query.limit(LOG_COUNT_CAP + 1).subquery())
        )
        or 0
    )
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(page, 1), pages)
    order = (when.asc(), table.id.asc()) if pending else (when.desc(), table.id.desc())
    rows = ctx.session.execute(
        query.order_by(*order).offset((page - 1) * PER_PAGE).limit(PER_PAGE)
    ).all()
    return Page(rows, total, page, pages)


def failed_automation(row: Any) -> bool:
    return isinstance(row, AutomationLog) and row.status == LogStatus.FAILED
