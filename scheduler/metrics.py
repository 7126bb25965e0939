"""The program's success metrics (the specification's "Success Metrics"), measured from the log,
the automations and the clients.

Each metric is ONE query of rows (`rows_query`): every row says whether it meets the metric's
definition (`met`) or, for a mean, how many minutes it took (`amount`). The value shown is an
aggregate of exactly those rows, and the rows page lists exactly those rows, so a number and
its rows cannot disagree (the dashboard's rule).

Windowed metrics count log rows by the UTC day they were written. A log row is written once and
never changes, so the aggregate of a whole past day never changes either: it is kept in
`metric_days` the first time it is asked for (per coach and program month), and only today is
counted live. That keeps the page fast with a year of history."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from scheduler import overview
from scheduler.engine import Context
from scheduler.errors import Invalid
from scheduler.models import Admin, Automation, AutomationLog, Client, Deliverable, MetricDay
from scheduler.vocab import (
    AutomationType,
    ClientStatus,
    DeliverableStatus,
    LogStatus,
    Source,
    Template,
)

WINDOWS = (7, 30, 90)
# A planned generation is on schedule when it is done within this long of its due moment.
ON_SCHEDULE_MINUTES = 60
PER_PAGE = 50
NO_AMOUNT = cast(None, Float)
NO_MET = cast(None, Integer)
# A state of the clients (a snapshot metric) is counted again after this long.
SNAPSHOT_SECONDS = 300
# The marker row saying a day's aggregate is complete (a day may have no rows at all).
DONE = -1


@dataclass(frozen=True)
class Metric:
    code: str
    group: str
    name: str
    definition: str
    target: float  # a share (0-1) or minutes
    higher_is_better: bool
    mean: bool = False  # an average of minutes, not a share
    snapshot: bool = False  # a state of the clients now, not a count over a window

    @property
    def target_text(self) -> str:
        sign = "≥" if self.higher_is_better else "<"
        return f"{sign} {fmt(self, self.target)}"

    def meets(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.target if self.higher_is_better else value < self.target


def fmt(metric: Metric, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric.mean:
        return f"{value:.0f} min"
    return f"{100 * value:.1f}%"


METRICS = (
    Metric(
        "execution_success",
        "Automation reliability",
        "Successful executions",
        "Of the attempts to carry out an automation written to the log in the window (done, "
        "skipped by its rule, retrying, failed for good), the share that succeeded: done or "
        "skipped.",
        0.99,
        True,
    ),
    Metric(
        "automation_failures",
        "Automation reliability",
        "Automation failures",
        "Of the automations that ended in the window (done, skipped or failed for good), the "
        "share that failed for good after all their retries.",
        0.01,
        False,
    ),
    Metric(
        "retry_resolution",
        "Automation reliability",
        "Retry resolution time",
        "For the automations done in the window after at least one retry: the average time "
        "from their first failed attempt to the attempt that succeeded, in minutes.",
        60,
        False,
        mean=True,
    ),
    Metric(
        "generated_on_schedule",
        "On-time delivery",
        "Deliverables generated on schedule",
        "Of the planned generations that ended in the window (done or failed for good), the "
        f"share done within {ON_SCHEDULE_MINUTES} minutes of their due moment (a hold moves "
        "that moment, and so does a retry).",
        0.95,
        True,
    ),
    Metric(
        "months_on_time",
        "On-time delivery",
        "Months delivered on time",
        "Of the months delivered in the window (deliverable-ready email sent), the share "
        "delivered within the program's on-time days of the month's milestone (the moment its "
        "planned generation was due, moved by holds).",
        0.90,
        True,
    ),
    Metric(
        "overdue_clients",
        "On-time delivery",
        "Clients overdue by more than 7 days",
        "Of the active clients (on track or overdue: not on hold, not completed), the share "
        "whose month in progress is more than 7 days past its milestone, now.",
        0.05,
        False,
        snapshot=True,
    ),
    Metric(
        "automations_off",
        "Client satisfaction",
        "Clients who turned automations off",
        "Of all clients, the share who turned reminders or celebrations off, or unsubscribed "
        "from every optional email, now.",
        0.10,
        False,
        snapshot=True,
    ),
)
BY_CODE = {m.code: m for m in METRICS}


def metric(code: str) -> Metric:
    if code not in BY_CODE:
        raise Invalid(f"metric: unknown metric {code!r} (one of {', '.join(BY_CODE)})", "metric")
    return BY_CODE[code]


# -- which rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which rows: a window of whole UTC days ending today, or a cohort (clients who started in
    one month, all their history); optionally one coach (0: clients without one) and one month
    of the program."""

    days: int = 30
    cohort: date | None = None  # the first day of a start month
    coach: int | None = None
    month: int | None = None

    def link(self) -> dict[str, str]:
        args = {"window": str(self.days)} if self.cohort is None else {}
        if self.cohort is not None:
            args["cohort"] = f"{self.cohort:%Y-%m}"
        if self.coach is not None:
            args["coach"] = str(self.coach)
        if self.month is not None:
            args["month"] = str(self.month)
        return args


def scope(
    *, window: str = "", cohort: str = "", coach: str = "", month: str = "", months: int = 8
) -> Scope:
    """A scope as a person wrote it (query string, CLI option), refused with a message when it
    cannot mean anything."""
    days = 30
    if window:
        if window not in {str(w) for w in WINDOWS}:
            raise Invalid(f"window: one of {', '.join(map(str, WINDOWS))} days", "window")
        days = int(window)
    start = None
    if cohort:
        try:
            start = datetime.strptime(cohort, "%Y-%m").date()
        except ValueError:
            raise Invalid("cohort: a start month, YYYY-MM", "cohort") from None
        if not 1900 <= start.year <= 2999:
            raise Invalid("cohort: a start month, YYYY-MM", "cohort")
    who = None
    if coach:
        if not coach.isascii() or not coach.isdigit() or len(coach) > 18:
            raise Invalid("coach: an admin's id (0: clients without a coach)", "coach")
        who = int(coach)
    which = None
    if month:
        if not month.isascii() or not month.isdigit() or not 1 <= int(month) <= months:
            raise Invalid(f"month: 1 to {months}", "month")
        which = int(month)
    return Scope(days, start, who, which)


def dialect(ctx: Context) -> str:
    return ctx.session.get_bind().dialect.name


def minutes_between(ctx: Context, first: Any, last: Any) -> Any:
    """SQL: minutes from the instant `first` to the instant `last`."""
    if dialect(ctx) == "sqlite":
        return (func.julianday(last) - func.julianday(first)) * 1440.0
    return func.extract("epoch", last - first) / 60.0


def utc_day(ctx: Context, instant: Any) -> Any:
    """SQL: the UTC date of an instant."""
    if dialect(ctx) == "sqlite":
        return func.date(instant)
    return func.date(func.timezone("UTC", instant))


def window_start(ctx: Context, where: Scope) -> date:
    return ctx.now().astimezone(UTC).date() - timedelta(days=where.days - 1)


def at_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _log_rows(ctx: Context, code: str) -> Select[Any]:
    """The log rows of a windowed metric, with `met` (0/1) or `amount` (minutes)."""
    log = AutomationLog
    base = [
        log.id.label("id"),
        log.client_id.label("client_id"),
        Client.name.label("client"),
        Client.coach_id.label("coach_id"),
        log.month.label("month"),
        log.at.label("at"),
        log.type.label("type"),
        log.template.label("template"),
        log.status.label("status"),
        log.automation_id.label("automation_id"),
    ]
    done = [LogStatus.COMPLETED.value, LogStatus.SKIPPED.value]
    if code == "execution_success":
        tried = [*done, LogStatus.RETRYING.value, LogStatus.FAILED.value]
        met = case((log.status.in_(done), 1), else_=0)
        return (
            select(*base, met.label("met"), NO_AMOUNT.label("amount"))
            .join(Client, Client.id == log.client_id)
            .where(log.status.in_(tried))
        )
    if code == "automation_failures":
        ended = [*done, LogStatus.FAILED.value]
        met = case((log.status == LogStatus.FAILED, 1), else_=0)
        return (
            select(*base, met.label("met"), NO_AMOUNT.label("amount"))
            .join(Client, Client.id == log.client_id)
            .where(log.status.in_(ended))
        )
    if code == "retry_resolution":
        first = aliased(AutomationLog)
        first_failure = (
            select(func.min(first.at))
            .where(first.automation_id == log.automation_id, first.status == LogStatus.RETRYING)
            .scalar_subquery()
        )
        return (
            select(
                *base,
                NO_MET.label("met"),
                minutes_between(ctx, first_failure, log.at).label("amount"),
            )
            .join(Client, Client.id == log.client_id)
            .where(log.status == LogStatus.COMPLETED, log.attempt > 1)
        )
    if code == "generated_on_schedule":
        late = minutes_between(ctx, Automation.trigger_at, log.at)
        met = case(
            (and_(log.status == LogStatus.COMPLETED, late <= ON_SCHEDULE_MINUTES), 1), else_=0
        )
        return (
            select(*base, met.label("met"), NO_AMOUNT.label("amount"))
            .join(Client, Client.id == log.client_id)
            .join(Automation, Automation.id == log.automation_id)
            .where(
                log.type == AutomationType.GENERATE_DELIVERABLE,
                log.status.in_([LogStatus.COMPLETED.value, LogStatus.FAILED.value]),
                Automation.source == Source.PLAN,
            )
        )
    if code == "months_on_time":
        planned = aliased(Automation)
        days = ctx.program.schedule.on_time_days
        late = minutes_between(ctx, planned.trigger_at, log.at)
        met = case((late <= days * 1440, 1), else_=0)
        return (
            select(*base, met.label("met"), NO_AMOUNT.label("amount"))
            .join(Client, Client.id == log.client_id)
            .join(
                planned,
                and_(
                    planned.client_id == log.client_id,
                    planned.type == AutomationType.GENERATE_DELIVERABLE,
                    planned.month == log.month,
                    planned.source == Source.PLAN,
                ),
            )
            .where(log.template == Template.DELIVERABLE_READY, log.status == LogStatus.COMPLETED)
        )
    raise AssertionError(code)


def _client_rows(ctx: Context, code: str) -> Select[Any]:
    """The client rows of a snapshot metric, with `met` (0/1)."""
    state = overview.status_sql(dialect(ctx), ctx.now().date())
    base = [
        Client.id.label("id"),
        Client.id.label("client_id"),
        Client.name.label("client"),
        Client.coach_id.label("coach_id"),
        Client.current_month.label("month"),
        Client.updated_at.label("at"),
        literal(None).label("type"),
        literal(None).label("template"),
        state.label("status"),
        literal(None).label("automation_id"),
    ]
    if code == "overdue_clients":
        # Only a client whose current month is past its milestone + 7 days can be overdue: a
        # cheap test on the row first, so that the status rule runs for those alone.
        days = Client.held_days + 30 * (Client.current_month - 1) + overview.OVERDUE_AFTER_DAYS + 1
        today = ctx.now().date()
        if dialect(ctx) == "sqlite":
            due = func.date(Client.start_date, func.printf("+%d days", days)) <= today.isoformat()
        else:
            due = Client.start_date + days <= today
        met = case((due, case((state == ClientStatus.OVERDUE.value, 1), else_=0)), else_=0)
        return select(*base, met.label("met"), NO_AMOUNT.label("amount")).where(
            Client.completed_at.is_(None), Client.paused_at.is_(None)
        )
    if code == "automations_off":
        off = or_(
            Client.reminders_enabled.is_(False),
            Client.celebrations_enabled.is_(False),
            Client.unsubscribed_at.is_not(None),
        )
        met = case((off, 1), else_=0)
        return select(*base, met.label("met"), NO_AMOUNT.label("amount"))
    raise AssertionError(code)


def rows_query(ctx: Context, m: Metric, where: Scope) -> Select[Any]:
    """THE rows behind metric `m` for `where`: every number of the metric is an aggregate of
    these rows, and its rows page lists them."""
    query = _client_rows(ctx, m.code) if m.snapshot else _log_rows(ctx, m.code)
    if where.cohort is not None:
        after = (where.cohort.replace(day=28) + timedelta(days=4)).replace(day=1)
        query = query.where(Client.start_date >= where.cohort, Client.start_date < after)
    elif not m.snapshot:
        query = query.where(AutomationLog.at >= at_start(window_start(ctx, where)))
    if where.coach is not None:
        query = query.where(
            Client.coach_id.is_(None) if where.coach == 0 else Client.coach_id == where.coach
        )
    if where.month is not None:
        month = Client.current_month if m.snapshot else AutomationLog.month
        query = query.where(month == where.month)
    return query


# -- the numbers ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """Rows counted: how many, how many meet the definition, and the minutes they add up to."""

    rows: int = 0
    met: int = 0
    minutes: float = 0.0

    def add(self, rows: int, met: int, minutes: float) -> None:
        self.rows += rows
        self.met += met
        self.minutes += minutes

    def value(self, m: Metric) -> float | None:
        if not self.rows:
            return None
        return self.minutes / self.rows if m.mean else self.met / self.rows


@dataclass(frozen=True)
class Point:
    start: date
    end: date
    tally: Tally


@dataclass
class Measure:
    metric: Metric
    scope: Scope
    total: Tally
    trend: list[Point] = field(default_factory=list)
    by_coach: dict[int, Tally] = field(default_factory=dict)  # 0: no coach
    by_month: dict[int, Tally] = field(default_factory=dict)
    counted_at: datetime | None = None  # a state of the clients: when it was counted

    @property
    def value(self) -> float | None:
        return self.total.value(self.metric)

    @property
    def shown(self) -> str:
        return fmt(self.metric, self.value)

    @property
    def meets(self) -> bool | None:
        return self.metric.meets(self.value)

    @property
    def bars(self) -> list[Bar]:
        """The trend as SVG bars (percent of the chart; the target is a line at `target_y`)."""
        values = [p.tally.value(self.metric) for p in self.trend]
        top = max([v for v in values if v is not None] + [self.metric.target, 0.0001])
        width = 100 / len(values) if values else 100
        found = []
        for i, (point, value) in enumerate(zip(self.trend, values, strict=True)):
            height = None if value is None else max(100 * value / top, 2)
            found.append(Bar(point, value, round(i * width, 2), round(width, 2), height))
        return found

    @property
    def target_y(self) -> float:
        values = [p.tally.value(self.metric) for p in self.trend]
        top = max([v for v in values if v is not None] + [self.metric.target, 0.0001])
        return round(100 - 100 * self.metric.target / top, 2)


@dataclass(frozen=True)
class Bar:
    point: Point
    value: float | None
    x: float
    width: float
    height: float | None  # None: no rows that day


Group = tuple[date | None, int, int]  # (UTC day, coach id or 0, month or 0)


def _grouped(ctx: Context, query: Select[Any], by_day: bool) -> dict[Group, Tally]:
    """The rows of `query` added up by (day, coach, month)."""
    rows = query.subquery()
    day = utc_day(ctx, rows.c.at) if by_day else literal(None)
    coach = func.coalesce(rows.c.coach_id, 0)
    month = func.coalesce(rows.c.month, 0)
    found: dict[Group, Tally] = {}
    for d, c, mo, n, met, minutes in ctx.session.execute(
        select(
            day,
            coach,
            month,
            func.count(),
            func.coalesce(func.sum(rows.c.met), 0),
            func.coalesce(func.sum(rows.c.amount), 0.0),
        ).group_by(day, coach, month)
    ):
        when = date.fromisoformat(d) if isinstance(d, str) else d
        found.setdefault((when, int(c), int(mo)), Tally()).add(int(n), int(met), float(minutes))
    return found


def _cached_days(ctx: Context, m: Metric, first: date, last: date) -> dict[Group, Tally]:
    """The whole-day aggregates from `first` to `last` (past days), from `metric_days`, filling
    the days not yet kept with one query."""
    kept = ctx.session.execute(
        select(
            MetricDay.day, MetricDay.coach_id, MetricDay.month, MetricDay.rows, MetricDay.met,
            MetricDay.minutes,
        ).where(MetricDay.metric == m.code, MetricDay.day >= first, MetricDay.day <= last)
    )  # fmt: skip
    found: dict[Group, Tally] = {}
    have: set[date] = set()
    for day, coach, month, n, met, minutes in kept:
        if coach == DONE:
            have.add(day)
        else:
            found.setdefault((day, coach, month), Tally()).add(n, met, minutes)
    missing = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    missing = [d for d in missing if d not in have]
    if not missing:
        return found
    lo, hi = missing[0], missing[-1]
    query = _log_rows(ctx, m.code).where(
        AutomationLog.at >= at_start(lo), AutomationLog.at < at_start(hi + timedelta(days=1))
    )
    fresh = {k: t for k, t in _grouped(ctx, query, by_day=True).items() if k[0] in missing}
    for key, tally in fresh.items():
        found.setdefault(key, Tally()).add(tally.rows, tally.met, tally.minutes)
    now = ctx.now()
    rows = [
        MetricDay(
            metric=m.code,
            day=d,
            coach_id=c,
            month=mo,
            rows=t.rows,
            met=t.met,
            minutes=t.minutes,
            computed_at=now,
        )
        for (d, c, mo), t in fresh.items()
        if d is not None
    ]
    rows += [
        MetricDay(
            metric=m.code,
            day=d,
            coach_id=DONE,
            month=DONE,
            rows=0,
            met=0,
            minutes=0.0,
            computed_at=now,
        )
        for d in missing
    ]
    try:
        with ctx.session.begin_nested():
            ctx.session.add_all(rows)
    except IntegrityError:
        pass  # another reader kept the same days at the same time: the same numbers
    return found


def utc_hour(ctx: Context, instant: Any) -> Any:
    """SQL: the UTC hour (0-23) of an instant."""
    if dialect(ctx) == "sqlite":
        return func.cast(func.strftime("%H", instant), Integer)
    return func.cast(func.extract("hour", func.timezone("UTC", instant)), Integer)


def _cached_hours(ctx: Context, m: Metric, today: date, hours: int) -> dict[Group, Tally]:
    """Today's complete hours (0 to `hours` - 1), kept like whole days under the metric's code
    with the hour (`execution_success@09`), so that only the current hour is counted live."""
    if hours <= 0:
        return {}
    codes = {f"{m.code}@{h:02d}": h for h in range(hours)}
    kept = ctx.session.execute(
        select(
            MetricDay.metric, MetricDay.coach_id, MetricDay.month, MetricDay.rows, MetricDay.met,
            MetricDay.minutes,
        ).where(MetricDay.metric.in_(list(codes)), MetricDay.day == today)
    )  # fmt: skip
    found: dict[Group, Tally] = {}
    have: set[int] = set()
    for code, coach, month, n, met, minutes in kept:
        if coach == DONE:
            have.add(codes[code])
        else:
            found.setdefault((today, coach, month), Tally()).add(n, met, minutes)
    missing = [h for h in range(hours) if h not in have]
    if not missing:
        return found
    lo = at_start(today) + timedelta(hours=missing[0])
    hi = at_start(today) + timedelta(hours=missing[-1] + 1)
    rows = _log_rows(ctx, m.code).where(AutomationLog.at >= lo, AutomationLog.at < hi).subquery()
    hour = utc_hour(ctx, rows.c.at)
    coach = func.coalesce(rows.c.coach_id, 0)
    month = func.coalesce(rows.c.month, 0)
    now = ctx.now()
    fresh = []
    for h, c, mo, n, met, minutes in ctx.session.execute(
        select(
            hour,
            coach,
            month,
            func.count(),
            func.coalesce(func.sum(rows.c.met), 0),
            func.coalesce(func.sum(rows.c.amount), 0.0),
        ).group_by(hour, coach, month)
    ):
        if int(h) not in missing:
            continue
        found.setdefault((today, int(c), int(mo)), Tally()).add(int(n), int(met), float(minutes))
        fresh.append(
            MetricDay(
                metric=f"{m.code}@{int(h):02d}", day=today, coach_id=int(c), month=int(mo),
                rows=int(n), met=int(met), minutes=float(minutes), computed_at=now,
            )
        )  # fmt: skip
    fresh += [
        MetricDay(
            metric=f"{m.code}@{h:02d}", day=today, coach_id=DONE, month=DONE, rows=0, met=0,
            minutes=0.0, computed_at=now,
        )
        for h in missing
    ]  # fmt: skip
    try:
        with ctx.session.begin_nested():
            ctx.session.add_all(fresh)
    except IntegrityError:
        pass  # another reader kept the same hours at the same time: the same numbers
    return found


def _days(ctx: Context, m: Metric, where: Scope) -> dict[Group, Tally]:
    """A windowed metric's aggregates by day, coach and month: past days and today's past
    hours kept, the current hour counted live."""
    now = ctx.now().astimezone(UTC)
    today = now.date()
    start = window_start(ctx, where)
    found = _cached_days(ctx, m, start, today - timedelta(days=1))
    # An hour is kept once it ended a minute ago (a row written at 09:59:59.9 is committed).
    settled = now - timedelta(minutes=1)
    hours = settled.hour if settled.date() == today else 0
    for key, tally in _cached_hours(ctx, m, today, hours).items():
        found.setdefault(key, Tally()).add(tally.rows, tally.met, tally.minutes)
    live = _log_rows(ctx, m.code).where(
        AutomationLog.at >= at_start(today) + timedelta(hours=hours)
    )
    for key, tally in _grouped(ctx, live, by_day=True).items():
        found.setdefault(key, Tally()).add(tally.rows, tally.met, tally.minutes)
    return _only(found, where)


def _snapshot(ctx: Context, m: Metric, where: Scope) -> tuple[dict[Group, Tally], datetime]:
    """A state of the clients, by coach and month, as counted at most SNAPSHOT_SECONDS ago
    (kept under today's date; the status rule over every active client is the page's one
    costly query). Returns the groups and when they were counted."""
    now = ctx.now()
    today = now.astimezone(UTC).date()
    kept = list(
        ctx.session.execute(
            select(
                MetricDay.coach_id, MetricDay.month, MetricDay.rows, MetricDay.met,
                MetricDay.computed_at,
            ).where(MetricDay.metric == m.code, MetricDay.day == today)
        )
    )  # fmt: skip
    marker = next((r for r in kept if r[0] == DONE), None)
    if marker is not None and now - marker[4] < timedelta(seconds=SNAPSHOT_SECONDS):
        found: dict[Group, Tally] = {}
        for coach, month, n, met, _ in kept:
            if coach != DONE:
                found.setdefault((None, coach, month), Tally()).add(n, met, 0.0)
        return _only(found, where), marker[4]
    found = _grouped(ctx, _client_rows(ctx, m.code), by_day=False)
    rows = [
        MetricDay(
            metric=m.code, day=today, coach_id=c, month=mo, rows=t.rows, met=t.met, minutes=0.0,
            computed_at=now,
        )
        for (_, c, mo), t in found.items()
    ]  # fmt: skip
    rows.append(
        MetricDay(
            metric=m.code, day=today, coach_id=DONE, month=DONE, rows=0, met=0, minutes=0.0,
            computed_at=now,
        )
    )  # fmt: skip
    try:
        with ctx.session.begin_nested():
            ctx.session.execute(
                delete(MetricDay).where(MetricDay.metric == m.code, MetricDay.day == today)
            )
            ctx.session.add_all(rows)
    except IntegrityError:
        pass  # another reader counted at the same time
    return _only(found, where), now


def _only(groups: dict[Group, Tally], where: Scope) -> dict[Group, Tally]:
    return {
        k: t
        for k, t in groups.items()
        if (where.coach is None or k[1] == where.coach)
        and (where.month is None or k[2] == where.month)
    }


def quiet(ctx: Context) -> None:
    """PostgreSQL: no JIT compilation for this transaction's queries. Their plans look costly
    (a subquery per client) but run in a few hundred ms; compiling them took longer."""
    if dialect(ctx) == "postgresql":
        ctx.session.execute(text("SET LOCAL jit = off"))


def measure(ctx: Context, m: Metric, where: Scope) -> Measure:
    """Metric `m` over `where`: its value, its trend, and per coach and per program month."""
    counted_at = None
    if m.snapshot and where.cohort is None:
        groups, counted_at = _snapshot(ctx, m, where)
    elif m.snapshot or where.cohort is not None:
        groups = _grouped(ctx, rows_query(ctx, m, where), by_day=False)
    else:
        groups = _days(ctx, m, where)
    result = Measure(m, where, Tally(), counted_at=counted_at)
    for (_, coach, month), tally in groups.items():
        result.total.add(tally.rows, tally.met, tally.minutes)
        result.by_coach.setdefault(coach, Tally()).add(tally.rows, tally.met, tally.minutes)
        result.by_month.setdefault(month, Tally()).add(tally.rows, tally.met, tally.minutes)
    if not m.snapshot and where.cohort is None:
        start = window_start(ctx, where)
        step = 7 if where.days > 30 else 1
        buckets = -(-where.days // step)
        by_day: dict[date, Tally] = {}
        for (day, _, _), t in groups.items():
            if day is not None:
                by_day.setdefault(day, Tally()).add(t.rows, t.met, t.minutes)
        for i in range(buckets):
            lo = start + timedelta(days=i * step)
            hi = min(lo + timedelta(days=step - 1), start + timedelta(days=where.days - 1))
            tally = Tally()
            for offset in range((hi - lo).days + 1):
                t = by_day.get(lo + timedelta(days=offset))
                if t is not None:
                    tally.add(t.rows, t.met, t.minutes)
            result.trend.append(Point(lo, hi, tally))
    return result


def measure_all(ctx: Context, where: Scope) -> list[Measure]:
    quiet(ctx)
    return [measure(ctx, m, where) for m in METRICS]


@dataclass(frozen=True)
class RowsPage:
    rows: list[Any]
    total: int
    met: int
    page: int
    pages: int


def rows(
    ctx: Context,
    m: Metric,
    where: Scope,
    page: int = 1,
    *,
    limit: int = PER_PAGE,
    offset: int | None = None,
) -> RowsPage:
    """One page of the rows behind metric `m` (newest first), with how many there are and how
    many meet the definition: the same query the number comes from. `offset` (the API's)
    overrides `page` (the panel's). For a window, the counts are the kept days' (the page's
    number itself), so that the window's rows are not counted again."""
    quiet(ctx)
    query = rows_query(ctx, m, where)
    if m.snapshot or where.cohort is not None:
        total, met = count_rows(ctx, m, where)
    else:
        kept = Tally()
        for tally in _days(ctx, m, where).values():
            kept.add(tally.rows, tally.met, tally.minutes)
        total, met = kept.rows, kept.met
    pages = max(1, -(-int(total) // limit))
    page = min(max(page, 1), pages)
    skip = (page - 1) * limit if offset is None else offset
    ordered = (
        query.order_by(Client.name, Client.id)
        if m.snapshot
        else query.order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
    )
    found = ctx.session.execute(ordered.offset(skip).limit(limit)).all()
    return RowsPage(list(found), int(total), int(met), page, pages)


def count_rows(ctx: Context, m: Metric, where: Scope) -> tuple[int, int]:
    """How many rows `rows_query` gives, and how many of them meet the definition, counted
    now (the kept days are checked against this)."""
    sub = rows_query(ctx, m, where).subquery()
    total, met = ctx.session.execute(
        select(func.count(), func.coalesce(func.sum(sub.c.met), 0))
    ).one()
    return int(total), int(met)


def coach_names(ctx: Context) -> dict[int, str]:
    names = {0: "no coach"}
    for admin_id, name, email in ctx.session.execute(select(Admin.id, Admin.name, Admin.email)):
        names[admin_id] = name or email
    return names


# -- the monthly funnel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    count: int
    median_hours: float | None  # from the stage before


@dataclass(frozen=True)
class FunnelMonth:
    month: int
    generated: Stage
    approved: Stage
    delivered: Stage
    opened: Stage


def funnel(ctx: Context, where: Scope) -> list[FunnelMonth]:
    """For the deliverables generated in the window (or of the cohort's clients), per month of
    the program: how many were generated, approved, delivered (deliverable-ready email sent) and
    opened, with the median time from each stage to the next."""
    quiet(ctx)
    first_sent = (
        select(
            AutomationLog.client_id,
            AutomationLog.month,
            func.min(AutomationLog.at).label("at"),
        )
        .where(
            AutomationLog.template == Template.DELIVERABLE_READY,
            AutomationLog.status == LogStatus.COMPLETED,
        )
        .group_by(AutomationLog.client_id, AutomationLog.month)
    )
    if where.cohort is None:
        first_sent = first_sent.where(AutomationLog.at >= at_start(window_start(ctx, where)))
    sent_at = first_sent.subquery()
    approved = case(
        (Deliverable.status == DeliverableStatus.DELIVERED, Deliverable.reviewed_at), else_=None
    )
    query = (
        select(
            Deliverable.month.label("month"),
            Deliverable.generated_at.label("generated"),
            approved.label("approved"),
            sent_at.c.at.label("sent"),
            Deliverable.opened_at.label("opened"),
        )
        .join(Client, Client.id == Deliverable.client_id)
        .outerjoin(
            sent_at,
            and_(
                sent_at.c.client_id == Deliverable.client_id,
                sent_at.c.month == Deliverable.month,
                Deliverable.status == DeliverableStatus.DELIVERED,
            ),
        )
        .where(Deliverable.generated_at.is_not(None))
    )
    if where.cohort is not None:
        after = (where.cohort.replace(day=28) + timedelta(days=4)).replace(day=1)
        query = query.where(Client.start_date >= where.cohort, Client.start_date < after)
    else:
        query = query.where(Deliverable.generated_at >= at_start(window_start(ctx, where)))
    if where.coach is not None:
        query = query.where(
            Client.coach_id.is_(None) if where.coach == 0 else Client.coach_id == where.coach
        )
    if where.month is not None:
        query = query.where(Deliverable.month == where.month)
    sub = query.subquery()
    steps = [
        ("approved", sub.c.generated, sub.c.approved),
        ("sent", sub.c.approved, sub.c.sent),
        ("opened", sub.c.sent, sub.c.opened),
    ]
    months: dict[int, dict[str, Any]] = {}
    if dialect(ctx) == "postgresql":
        columns: list[Any] = [sub.c.month, func.count()]
        for name, _, _ in steps:
            columns.append(func.count(sub.c[name]))
        for _, first, last in steps:
            columns.append(
                func.percentile_cont(0.5).within_group(minutes_between(ctx, first, last) / 60.0)
            )
        for month, n, a, s, o, ma, ms, mo in ctx.session.execute(
            select(*columns).group_by(sub.c.month).order_by(sub.c.month)
        ):
            months[int(month)] = {"n": n, "counts": (a, s, o), "medians": (ma, ms, mo)}
    else:
        gathered: dict[int, list[Any]] = {}
        for month, generated, approved_at, sent_at, opened in ctx.session.execute(select(sub)):
            gathered.setdefault(int(month), []).append((generated, approved_at, sent_at, opened))
        for month, items in sorted(gathered.items()):
            counts = tuple(sum(1 for it in items if it[i] is not None) for i in (1, 2, 3))
            medians = []
            for i in (1, 2, 3):
                spans = [
                    (_aware(it[i]) - _aware(it[i - 1])).total_seconds() / 3600
                    for it in items
                    if it[i] is not None and it[i - 1] is not None
                ]
                medians.append(statistics.median(spans) if spans else None)
            months[month] = {"n": len(items), "counts": counts, "medians": tuple(medians)}
    result = []
    for month, found in sorted(months.items()):
        (a, s, o), (ma, ms, mo) = found["counts"], found["medians"]

        def hours(value: Any) -> float | None:
            return None if value is None else round(float(value), 1)

        result.append(
            FunnelMonth(
                month,
                Stage(int(found["n"]), None),
                Stage(int(a), hours(ma)),
                Stage(int(s), hours(ms)),
                Stage(int(o), hours(mo)),
            )
        )
    return result


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
