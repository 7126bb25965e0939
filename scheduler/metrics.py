"""The program's success metrics (the specification's "Success Metrics"), measured from the log,
the automations and the clients.

Each metric is ONE query of rows (`rows_query`): every row says whether it meets the metric's
definition (`met`) or, for a mean, how many minutes it took (`amount`). The value shown is an
aggregate of exactly those rows, and the rows page lists exactly those rows, so a number and
its rows cannot disagree (the dashboard's rule).

Windowed metrics count log rows by the UTC day they were written. A log row is written once and
never changes, so the numbers of a span of the log that is over never change either: whole past
days and today's past hours are counted once, per cohort, coach and program month, and kept
("kept counts" below says what could still change one and how that is handled). The worker
counts them ahead every minute (`scheduler.precount`); a page only adds kept numbers up and
counts the rows written since the last kept hour. The clients' states (a snapshot of now) are
counted at most SNAPSHOT_SECONDS before they are shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from scheduler import overview
from scheduler.engine import Context
from scheduler.errors import Invalid
from scheduler.models import (
    Admin,
    Automation,
    AutomationLog,
    Client,
    MetricCount,
    MetricPeriod,
)
from scheduler.schedule import bulk_insert
from scheduler.vocab import (
    AutomationType,
    ClientStatus,
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
# A state (the clients' states, a funnel) is shown as counted at most this long ago.
SNAPSHOT_SECONDS = 300


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


def in_cohort(cohort: date) -> list[Any]:
    """SQL: the client started in the month beginning on `cohort`."""
    after = (cohort.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [Client.start_date >= cohort, Client.start_date < after]


def cohort_of(ctx: Context, start_date: Any) -> Any:
    """SQL: the first day of the month of a start date (the client's cohort)."""
    if dialect(ctx) == "sqlite":
        return func.date(start_date, "start of month")
    return cast(func.date_trunc("month", start_date), Date)


def as_date(value: Any) -> date:
    """A date as a database gives it back (SQLite: text)."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date() if isinstance(value, datetime) else value


def _log_rows(ctx: Context, code: str) -> Select[Any]:
    """The log rows of a windowed metric, with `met` (0/1) or `amount` (minutes)."""
    log = AutomationLog
    base = [
        log.id.label("id"),
        log.client_id.label("client_id"),
        Client.name.label("client"),
        Client.coach_id.label("coach_id"),
        Client.start_date.label("start_date"),
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
        Client.start_date.label("start_date"),
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
        query = query.where(*in_cohort(where.cohort))
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


# A span of time: from its start to its end, excluded.
Span = tuple[datetime, datetime]
# A group of rows: their UTC day or hour (None: not by time), their clients' cohort (the first
# day of the start month), coach (0: none) and program month (0: none).
Group = tuple[Span | None, date, int, int]


def utc_hour(ctx: Context, instant: Any) -> Any:
    """SQL: the UTC hour (0-23) of an instant."""
    if dialect(ctx) == "sqlite":
        return func.cast(func.strftime("%H", instant), Integer)
    return func.cast(func.extract("hour", func.timezone("UTC", instant)), Integer)


def _buckets(ctx: Context, instant: Any, bucket: str | None) -> list[Any]:
    """SQL: what to group instants by for `bucket` ("day", "hour" or None)."""
    if bucket is None:
        return []
    day = utc_day(ctx, instant)
    return [day, utc_hour(ctx, instant)] if bucket == "hour" else [day]


def _span(keys: Any) -> Span | None:
    """The day or hour of the values `_buckets` grouped by."""
    if not keys:
        return None
    if len(keys) == 1:
        start = at_start(as_date(keys[0]))
        return start, start + timedelta(days=1)
    start = at_start(as_date(keys[0])) + timedelta(hours=int(keys[1]))
    return start, start + timedelta(hours=1)


def _grouped_all(
    ctx: Context, queries: dict[str, Select[Any]], bucket: str | None = None
) -> dict[str, dict[Group, Tally]]:
    """Each metric's rows (`queries` by code) added up by cohort, coach and month, and by UTC
    day or hour when `bucket` says so; in one statement."""
    parts = []
    for code, query in queries.items():
        rows = query.subquery()
        keys = _buckets(ctx, rows.c.at, bucket)
        groups = [*keys, cohort_of(ctx, rows.c.start_date)]
        groups += [func.coalesce(rows.c.coach_id, 0), func.coalesce(rows.c.month, 0)]
        parts.append(
            select(literal(code), *groups)
            .add_columns(
                func.count(),
                func.coalesce(func.sum(rows.c.met), 0),
                func.coalesce(func.sum(rows.c.amount), 0.0),
            )
            .group_by(*groups)
        )
    found: dict[str, dict[Group, Tally]] = {code: {} for code in queries}
    for code, *when, c, k, mo, n, met, minutes in ctx.session.execute(
        parts[0] if len(parts) == 1 else union_all(*parts)
    ):
        key = (_span(when), as_date(c), int(k), int(mo))
        found[code].setdefault(key, Tally()).add(int(n), int(met), float(minutes))
    return found


def _only(groups: dict[Group, Tally], where: Scope) -> dict[Group, Tally]:
    """The groups within `where`'s cohort, coach and month."""
    return {
        k: t
        for k, t in groups.items()
        if (where.cohort is None or k[1] == where.cohort)
        and (where.coach is None or k[2] == where.coach)
        and (where.month is None or k[3] == where.month)
    }


@dataclass
class Sums:
    """One metric's rows added up three ways: per span of time (UTC days and hours), per
    coach, per program month."""

    by_span: dict[Span, Tally] = field(default_factory=dict)
    by_coach: dict[int, Tally] = field(default_factory=dict)
    by_month: dict[int, Tally] = field(default_factory=dict)

    def put(self, axis: dict[Any, Tally], key: Any, tally: Tally) -> None:
        axis.setdefault(key, Tally()).add(tally.rows, tally.met, tally.minutes)

    def add(self, groups: dict[Group, Tally]) -> None:
        for (span, _, coach, month), tally in groups.items():
            if span is not None:
                self.put(self.by_span, span, tally)
            self.put(self.by_coach, coach, tally)
            self.put(self.by_month, month, tally)

    @property
    def by_day(self) -> dict[date, Tally]:
        days: dict[date, Tally] = {}
        for (start, _), tally in self.by_span.items():
            self.put(days, start.date(), tally)
        return days


# -- kept counts -----------------------------------------------------------------------------------
#
# A log row is written once and never changes, so the numbers of a span of the log that is over
# do not change either: whole past UTC days, and today's hours once they ended SETTLE ago, are
# counted once (by the worker every minute, `scheduler.precount`, or else by the first page that
# needs them) and kept in `metric_periods` / `metric_counts`, per metric, cohort, coach and
# month. A page adds up the kept spans of its scope and counts only the log rows written since
# the last kept hour. What could change a kept span, and how it is handled:
# - a row committed long after the instant it carries (a long transaction: a program published
#   to many clients, a large import): each span records how many log rows it held when counted,
#   read before its numbers; the worker compares that with the log for yesterday and today every
#   minute and counts again the spans that differ (`recheck`);
# - a change to a client that moves their rows to another coach or cohort, or erases them:
#   `forget_client` drops the spans holding their rows, under a lock that no span is being
#   counted under meanwhile (PostgreSQL), so they are counted again from the rows as they are;
# - a program setting the definitions depend on (`basis`): spans kept under another are counted
#   again.

LOG = "log"
CLIENTS = "clients"
# An hour of the log is kept once it ended this long ago (its rows are committed by then; one
# committed later is found by `recheck`).
SETTLE = timedelta(minutes=1)
# A cohort's page counts missing days itself up to this many; beyond (a new installation whose
# history the worker has not counted yet), it counts the cohort's rows directly.
COHORT_FILL_DAYS = 7
# PostgreSQL advisory locks: spans are counted under COUNTING shared, `forget_client` takes it
# exclusively; KEEPING lets one worker at a time count ahead.
COUNTING_LOCK = 0x6A6D6574
KEEPING_LOCK = COUNTING_LOCK + 1


def windowed() -> list[Metric]:
    return [m for m in METRICS if not m.snapshot]


def settled(ctx: Context) -> datetime:
    """The log is kept counted up to this instant (the start of the last hour that ended at
    least SETTLE ago); the rows after it are counted live."""
    instant = ctx.now().astimezone(UTC) - SETTLE
    return instant.replace(minute=0, second=0, microsecond=0)


def basis(ctx: Context) -> str:
    """The program settings the kept numbers depend on."""
    return f"on_time_days={overview.on_time_days(ctx)}"


def first_log_day(ctx: Context) -> date | None:
    first = ctx.session.scalar(select(func.min(AutomationLog.at)))
    return None if first is None else first.astimezone(UTC).date()


def _lock(ctx: Context, how: str) -> bool:
    """A PostgreSQL advisory lock held until the transaction ends (elsewhere: always True)."""
    if dialect(ctx) != "postgresql":
        return True
    name, key = {
        "share": ("pg_advisory_xact_lock_shared", COUNTING_LOCK),
        "exclusive": ("pg_advisory_xact_lock", COUNTING_LOCK),
        "keeper": ("pg_try_advisory_xact_lock", KEEPING_LOCK),
    }[how]
    return ctx.session.scalar(select(getattr(func, name)(key))) is not False


def claim_keeping(ctx: Context) -> bool:
    """Whether this transaction may count ahead (another worker is not doing it)."""
    return _lock(ctx, "keeper")


@dataclass
class Coverage:
    used: list[int] = field(default_factory=list)  # the kept spans that cover it
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)  # what is not kept
    stale: list[int] = field(default_factory=list)  # spans kept under another basis


def coverage(ctx: Context, since: datetime, until: datetime) -> Coverage:
    """Which kept spans cover the log from `since` (a day's start) to `until` (an hour's
    start), and the gaps between them. A day kept whole and as hours is read whole."""
    found = Coverage()
    current = basis(ctx)
    cursor = since
    P = MetricPeriod
    for period_id, start, end, kept_basis in ctx.session.execute(
        select(P.id, P.starts_at, P.ends_at, P.basis)
        .where(P.kind == LOG, P.ends_at > since, P.starts_at < until)
        .order_by(P.starts_at, P.ends_at.desc())
    ):
        if end > until or start < cursor:
            continue  # beyond the span asked for, or within what is covered already
        if kept_basis != current:
            found.stale.append(period_id)
            continue
        if start > cursor:
            found.gaps.append((cursor, start))
        found.used.append(period_id)
        cursor = end
    if cursor < until:
        found.gaps.append((cursor, until))
    return found


def pieces(since: datetime, until: datetime) -> list[tuple[datetime, datetime, str]]:
    """[since, until) (whole hours) cut into runs of whole UTC days and runs of hours."""
    found = []
    cursor = since
    while cursor < until:
        midnight = at_start(cursor.date())
        if cursor == midnight and midnight + timedelta(days=1) <= until:
            end = at_start(until.date())
            found.append((cursor, end, "day"))
        else:
            end = min(midnight + timedelta(days=1), until)
            found.append((cursor, end, "hour"))
        cursor = end
    return found


def _log_counts(ctx: Context, since: datetime, until: datetime, bucket: str) -> dict[datetime, int]:
    """How many log rows (of any status) each UTC day or hour from `since` to `until` holds:
    what a kept span is checked against."""
    keys = _buckets(ctx, AutomationLog.at, bucket)
    query = (
        select(*keys, func.count())
        .where(AutomationLog.at >= since, AutomationLog.at < until)
        .group_by(*keys)
    )
    found = {}
    for *keys, n in ctx.session.execute(query):
        span = _span(keys)
        if span is not None:
            found[span[0]] = int(n)
    return found


def drop(ctx: Context, period_ids: list[int]) -> None:
    """Forget kept spans or states (they are counted again when needed)."""
    for i in range(0, len(period_ids), 1000):
        chunk = period_ids[i : i + 1000]
        ctx.session.execute(delete(MetricCount).where(MetricCount.period_id.in_(chunk)))
        ctx.session.execute(delete(MetricPeriod).where(MetricPeriod.id.in_(chunk)))


def keep_spans(
    ctx: Context, gaps: list[tuple[datetime, datetime]], stale: list[int] | None = None
) -> dict[str, dict[Group, Tally]]:
    """Count every windowed metric over the log's `gaps` (whole hours) and keep the numbers:
    whole UTC days as days, the rest hour by hour. Returns what was counted, per metric."""
    _lock(ctx, "share")
    if stale:
        drop(ctx, stale)
    now, kept_basis = ctx.now(), basis(ctx)
    found: dict[str, dict[Group, Tally]] = {m.code: {} for m in windowed()}
    for since, until in gaps:
        for lo, hi, bucket in pieces(since, until):
            # The rows' number first: a row committed while the numbers are counted makes it
            # differ from the log's later, and `recheck` counts the span again.
            held = _log_counts(ctx, lo, hi, bucket)
            within = [AutomationLog.at >= lo, AutomationLog.at < hi]
            numbers = _grouped_all(
                ctx, {m.code: _log_rows(ctx, m.code).where(*within) for m in windowed()}, bucket
            )
            step = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
            starts = [lo + i * step for i in range((hi - lo) // step)]
            periods = [
                {
                    "kind": LOG, "starts_at": s, "ends_at": s + step, "counted_at": now,
                    "basis": kept_basis, "log_rows": held.get(s, 0), "body": None,
                }
                for s in starts
            ]  # fmt: skip
            _store(ctx, periods, numbers)
            for code, groups in numbers.items():
                found[code].update(groups)
    return found


def _store(
    ctx: Context, periods: list[dict[str, Any]], numbers: dict[str, dict[Group, Tally]]
) -> None:
    """Insert kept spans and their numbers; the spans' unique key lets one process in."""
    P = MetricPeriod
    try:
        with ctx.session.begin_nested():
            inserted = ctx.session.execute(
                insert(P).returning(P.starts_at, P.id, sort_by_parameter_order=True), periods
            )
            ids = dict(inserted.all())
            counts = [
                {
                    "period_id": ids[start], "metric": code, "cohort": cohort, "coach_id": coach,
                    "month": month, "rows": t.rows, "met": t.met, "minutes": t.minutes,
                }
                for code, groups in numbers.items()
                for ((start, _), cohort, coach, month), t in groups.items()
            ]  # fmt: skip
            if counts:
                bulk_insert(ctx, MetricCount.__table__, counts)
    except IntegrityError:
        pass  # another process kept the same spans at the same time: the same numbers


def keep_range(ctx: Context, since: datetime, until: datetime) -> int:
    """Keep the log counted from `since` to `until`; returns how many spans were counted."""
    found = coverage(ctx, since, until)
    if found.gaps:
        keep_spans(ctx, found.gaps, found.stale)
    return sum(
        (hi - lo) // (timedelta(days=1) if bucket == "day" else timedelta(hours=1))
        for gap in found.gaps
        for lo, hi, bucket in pieces(*gap)
    )


def recheck(ctx: Context, since: datetime, until: datetime) -> int:
    """Drop the spans kept between `since` and `until` whose log no longer holds the number of
    rows it held when they were counted (a row committed late, rows erased), so that they are
    counted again. Returns how many were dropped."""
    held = _log_counts(ctx, since, until, "hour")
    P = MetricPeriod
    changed = [
        period_id
        for period_id, start, end, rows in ctx.session.execute(
            select(P.id, P.starts_at, P.ends_at, P.log_rows).where(
                P.kind == LOG, P.starts_at >= since, P.ends_at <= until
            )
        )
        if sum(n for hour, n in held.items() if start <= hour < end) != rows
    ]
    drop(ctx, changed)
    return len(changed)


def drop_past_hours(ctx: Context, before: datetime) -> None:
    """Hours kept of days that ended by `before` are dropped: those days are counted whole."""
    P = MetricPeriod
    spans = ctx.session.execute(
        select(P.id, P.starts_at, P.ends_at).where(P.kind == LOG, P.ends_at <= before)
    )
    drop(ctx, [i for i, start, end in spans if end - start < timedelta(days=1)])


def forget_client(ctx: Context, client_id: int) -> None:
    """Before a change that moves a client's log rows to another coach or cohort, or erases
    them: the kept spans holding their rows are dropped, to be counted again from the rows as
    they will be."""
    _lock(ctx, "exclusive")
    days = {
        as_date(d)
        for d in ctx.session.scalars(
            select(utc_day(ctx, AutomationLog.at))
            .where(AutomationLog.client_id == client_id)
            .distinct()
        )
    }
    if not days:
        return
    P = MetricPeriod
    spans = ctx.session.execute(
        select(P.id, P.starts_at).where(P.kind == LOG, P.starts_at >= at_start(min(days)))
    )
    drop(ctx, [period_id for period_id, start in spans if start.date() in days])


def _kept_sums(
    ctx: Context, period_ids: list[int], codes: list[str], where: Scope
) -> dict[str, Sums]:
    """The kept numbers of `period_ids` within `where`, added up per span, coach and month by
    the database (a 90-day window is some 20,000 kept rows at 100,000 clients)."""
    found = {code: Sums() for code in codes}
    if not period_ids:
        return found
    C, P = MetricCount, MetricPeriod
    filters = [C.period_id.in_(period_ids)]
    if set(codes) != {m.code for m in windowed()}:
        filters.append(C.metric.in_(codes))
    if where.cohort is not None:
        filters.append(C.cohort == where.cohort)
    if where.coach is not None:
        filters.append(C.coach_id == where.coach)
    if where.month is not None:
        filters.append(C.month == where.month)
    sums = [func.sum(C.rows), func.sum(C.met), func.sum(C.minutes)]
    if dialect(ctx) == "postgresql":  # one scan: grouping sets
        axis = case(
            (func.grouping(C.coach_id) == 0, "coach"),
            (func.grouping(C.month) == 0, "month"),
            else_="span",
        )
        query: Any = (
            select(axis, C.metric, P.starts_at, P.ends_at, func.coalesce(C.coach_id, C.month, 0))
            .add_columns(*sums)
            .join(P, P.id == C.period_id)
            .where(*filters)
            .group_by(
                func.grouping_sets(
                    tuple_(C.metric, C.coach_id),
                    tuple_(C.metric, C.month),
                    tuple_(C.metric, P.starts_at, P.ends_at),
                )
            )
        )
    else:
        query = union_all(
            select(literal_column("'span'"), C.metric, P.starts_at, P.ends_at, literal_column("0"))
            .add_columns(*sums)
            .join(P, P.id == C.period_id)
            .where(*filters)
            .group_by(C.metric, P.starts_at, P.ends_at),
            select(literal_column("'coach'"), C.metric, null(), null(), C.coach_id)
            .add_columns(*sums)
            .where(*filters)
            .group_by(C.metric, C.coach_id),
            select(literal_column("'month'"), C.metric, null(), null(), C.month)
            .add_columns(*sums)
            .where(*filters)
            .group_by(C.metric, C.month),
        )
    for axis, code, start, end, key, n, met, minutes in ctx.session.execute(query):
        sums_of, tally = found[code], Tally(int(n), int(met), float(minutes or 0.0))
        if axis == "span":
            sums_of.put(sums_of.by_span, (start, end), tally)
        else:
            sums_of.put(sums_of.by_coach if axis == "coach" else sums_of.by_month, int(key), tally)
    return found


def _windowed(ctx: Context, chosen: list[Metric], where: Scope) -> dict[str, Sums]:
    """The windowed metrics' rows within `where`: the kept spans (those missing counted and
    kept now), and the rows written since the last kept hour."""
    if not chosen:
        return {}
    until = settled(ctx)
    first = first_log_day(ctx)  # no day before it has rows to count
    since = until if first is None else at_start(first)
    if where.cohort is None:
        since = max(since, at_start(window_start(ctx, where)))
    found = coverage(ctx, min(since, until), until)
    missing = sum((hi - lo for lo, hi in found.gaps), timedelta())
    if where.cohort is not None and missing > timedelta(days=COHORT_FILL_DAYS):
        # The history is not counted yet: the cohort's rows, counted now.
        result = {m.code: Sums() for m in chosen}
        counted = _grouped_all(ctx, {m.code: rows_query(ctx, m, where) for m in chosen})
        for code, groups in counted.items():
            result[code].add(groups)
        return result
    fresh = keep_spans(ctx, found.gaps, found.stale) if found.gaps else {}
    result = _kept_sums(ctx, found.used, [m.code for m in chosen], where)
    since_kept = AutomationLog.at >= until
    live = {m.code: rows_query(ctx, m, where).where(since_kept) for m in chosen}
    for code, groups in _grouped_all(ctx, live, "hour").items():
        result[code].add(_only(fresh.get(code, {}), where))
        result[code].add(groups)
    return result


# -- states counted at an instant ------------------------------------------------------------------


def latest_state(ctx: Context, *kinds: str) -> MetricPeriod | None:
    """The state of one of `kinds` counted last."""
    P = MetricPeriod
    return ctx.session.scalars(
        select(P).where(P.kind.in_(kinds)).order_by(P.counted_at.desc(), P.id.desc()).limit(1)
    ).first()


def is_fresh(ctx: Context, state: MetricPeriod | None, seconds: float = SNAPSHOT_SECONDS) -> bool:
    return state is not None and ctx.now() - state.counted_at < timedelta(seconds=seconds)


def keep_state(ctx: Context, kind: str, body: dict[str, Any]) -> datetime:
    """Keep a state counted now (replacing the earlier ones of its kind); returns when."""
    now = ctx.now()
    try:
        with ctx.session.begin_nested():
            ctx.session.execute(delete(MetricPeriod).where(MetricPeriod.kind == kind))
            ctx.session.add(
                MetricPeriod(
                    kind=kind, starts_at=now, ends_at=now, counted_at=now, basis=basis(ctx),
                    body=body,
                )
            )  # fmt: skip
            ctx.session.flush()
    except IntegrityError:
        pass  # another process counted it at the same instant
    return now


def keep_states(ctx: Context) -> tuple[dict[str, dict[Group, Tally]], datetime]:
    """Count the clients' states now (the status rule over every active client: the page's one
    costly query) and keep them."""
    found = _grouped_all(ctx, {m.code: _client_rows(ctx, m.code) for m in METRICS if m.snapshot})
    body = {
        "counts": [
            [code, cohort.isoformat(), coach, month, t.rows, t.met]
            for code, groups in found.items()
            for (_, cohort, coach, month), t in groups.items()
        ]
    }
    return found, keep_state(ctx, CLIENTS, body)


def _states(ctx: Context) -> tuple[dict[str, dict[Group, Tally]], datetime]:
    """The clients' states as counted at most SNAPSHOT_SECONDS ago, and when."""
    kept = latest_state(ctx, CLIENTS)
    if kept is None or not is_fresh(ctx, kept) or kept.body is None:
        return keep_states(ctx)
    found: dict[str, dict[Group, Tally]] = {}
    for code, cohort, coach, month, n, met in kept.body["counts"]:
        key = (None, date.fromisoformat(cohort), coach, month)
        found.setdefault(code, {})[key] = Tally(n, met)
    return found, kept.counted_at


# -- the measures ----------------------------------------------------------------------------------


def quiet(ctx: Context) -> None:
    """PostgreSQL: no JIT compilation for this transaction's queries. Their plans look costly
    (a subquery per client) but run in a few hundred ms; compiling them took longer."""
    if dialect(ctx) == "postgresql":
        ctx.session.execute(text("SET LOCAL jit = off"))


def measures(ctx: Context, chosen: list[Metric], where: Scope) -> list[Measure]:
    """Metrics `chosen` over `where`: each one's value, trend, and per coach and program
    month."""
    quiet(ctx)
    sums = _windowed(ctx, [m for m in chosen if not m.snapshot], where)
    counted_at = None
    if any(m.snapshot for m in chosen):
        states, counted_at = _states(ctx)
        for code, groups in states.items():
            sums[code] = Sums()
            sums[code].add(_only(groups, where))
    found = []
    for m in chosen:
        got = sums.get(m.code, Sums())
        result = Measure(
            m, where, Tally(), by_coach=got.by_coach, by_month=got.by_month,
            counted_at=counted_at if m.snapshot else None,
        )  # fmt: skip
        for tally in got.by_month.values():
            result.total.add(tally.rows, tally.met, tally.minutes)
        if not m.snapshot and where.cohort is None:
            result.trend = _trend(ctx, where, got.by_day)
        found.append(result)
    return found


def _trend(ctx: Context, where: Scope, by_day: dict[date, Tally]) -> list[Point]:
    """One point a day (a week for windows over 30 days)."""
    start = window_start(ctx, where)
    step = 7 if where.days > 30 else 1
    points = []
    for i in range(-(-where.days // step)):
        lo = start + timedelta(days=i * step)
        hi = min(lo + timedelta(days=step - 1), start + timedelta(days=where.days - 1))
        tally = Tally()
        for offset in range((hi - lo).days + 1):
            t = by_day.get(lo + timedelta(days=offset))
            if t is not None:
                tally.add(t.rows, t.met, t.minutes)
        points.append(Point(lo, hi, tally))
    return points


def measure(ctx: Context, m: Metric, where: Scope) -> Measure:
    """Metric `m` over `where`: its value, its trend, and per coach and per program month."""
    return measures(ctx, [m], where)[0]


def measure_all(ctx: Context, where: Scope) -> list[Measure]:
    return measures(ctx, list(METRICS), where)


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
    overrides `page` (the panel's). For a windowed metric the counts are the page's number
    itself (kept spans and the rows since), so that its rows are not counted again."""
    quiet(ctx)
    query = rows_query(ctx, m, where)
    spans: dict[Span, Tally] = {}
    if m.snapshot:
        total, met = count_rows(ctx, m, where)
    else:
        sums = _windowed(ctx, [m], where)[m.code]
        total = sum(t.rows for t in sums.by_month.values())
        met = sum(t.met for t in sums.by_month.values())
        spans = sums.by_span
    pages = max(1, -(-int(total) // limit))
    page = min(max(page, 1), pages)
    skip = (page - 1) * limit if offset is None else offset
    if m.snapshot:
        query = query.order_by(Client.name, Client.id)
    else:
        query = query.order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
        if spans:  # the kept numbers say which spans of time hold the rows of this page
            query, skip = _within(query, spans, skip, limit)
    found = ctx.session.execute(query.offset(skip).limit(limit)).all()
    return RowsPage(list(found), int(total), int(met), page, pages)


def _within(query: Select[Any], spans: dict[Span, Tally], skip: int, limit: int) -> Any:
    """Narrow a page of rows (newest first, after `skip` rows) to the spans of time that hold
    it, from how many rows each span holds: the database reads those spans only, however few
    of their rows are in the scope. Returns the query and the rows to skip within it."""
    seen, newest, oldest, inner = 0, None, None, skip
    for (start, end), tally in sorted(spans.items(), reverse=True):
        if not tally.rows:
            continue
        if newest is None and seen + tally.rows > skip:
            newest, inner = end, skip - seen
        seen += tally.rows
        if newest is not None:
            oldest = start
            if seen >= skip + limit:
                break
    if newest is None or oldest is None:
        return query.where(false()), 0  # past the last row
    return query.where(AutomationLog.at >= oldest, AutomationLog.at < newest), inner


def count_rows(ctx: Context, m: Metric, where: Scope) -> tuple[int, int]:
    """How many rows `rows_query` gives, and how many of them meet the definition, counted
    now (the kept numbers are checked against this)."""
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
