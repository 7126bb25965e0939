"""What the admin panel shows, as plain queries: the clients with their status, the
automation health dashboard, and the automation log with its filters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, false, func, or_, select, tuple_
from sqlalchemy.orm import aliased, defer

from scheduler import lookups, outcomes, plan, rules
from scheduler.engine import Context
from scheduler.errors import Invalid
from scheduler.models import (
    OVERDUE_AFTER_DAYS,
    Automation,
    AutomationLog,
    Client,
    Deliverable,
    Hold,
    active_client,
    fits_id,
    looks_like_id,
    overdue_days,
)
from scheduler.outcomes import Expected
from scheduler.timeline import MonthDate, hold_shift, projected, projected_dates
from scheduler.vocab import (
    AutomationStatus,
    AutomationType,
    ClientStatus,
    DeliverableStatus,
    LogStatus,
    Template,
)

PER_PAGE = 50
LOG_COUNT_CAP = 10_000
STATUSES = tuple(ClientStatus)
SORTS = ("name", "start", "month", "status")


@dataclass(frozen=True)
class ClientRow:
    id: int
    name: str
    email: str
    start_date: date
    current_month: int
    status: ClientStatus
    next: Expected | None = None


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


def overdue_from(dialect: str, done: Any = None) -> Any:
    """SQL for the first day a client counts as overdue (`models.overdue_days` after the start
    date), the current month being done when `done` is 1 (by default as the row says: the
    expression `ix_clients_overdue_from` indexes on PostgreSQL)."""
    days = overdue_days(done)
    if dialect == "sqlite":  # dates are ISO text there
        return func.date(Client.start_date, func.printf("+%d days", days))
    return Client.start_date + days  # PostgreSQL: date + integer is a date


def status_is(dialect: str, today: date, status: ClientStatus) -> Any:
    """SQL: the client's status is `status`, by the rule below, written so that an index finds
    the clients. Whether the current month is done is read from its deliverables; the row's
    `current_month_done` (set only once it is) finds the candidates through the index: a
    client the rule finds overdue is overdue by the row's account too."""
    limit = today.isoformat() if dialect == "sqlite" else today
    maybe = overdue_from(dialect) <= limit
    due = overdue_from(dialect, case((current_month_done(), 1), else_=0)) <= limit
    return {
        ClientStatus.COMPLETED: Client.completed_at.is_not(None),
        ClientStatus.ON_HOLD: and_(Client.completed_at.is_(None), Client.paused_at.is_not(None)),
        ClientStatus.OVERDUE: and_(active_client(), maybe, due),
        ClientStatus.ON_TRACK: and_(active_client(), or_(~maybe, ~due)),
    }[status]


def status_sql(dialect: str, today: date) -> Any:
    """THE client-status rule (a `ClientStatus` code), for lists and for one client alike:
    completed, else on hold, else overdue once `overdue_from` has come, else on track."""
    return case(
        *[(status_is(dialect, today, s), s.value) for s in STATUS_ORDER],
        else_=ClientStatus.ON_TRACK.value,
    )


# The order the rule tries them in (the first that holds is the client's status).
STATUS_ORDER = (ClientStatus.COMPLETED, ClientStatus.ON_HOLD, ClientStatus.OVERDUE)


def matches(text: str) -> Any:
    """SQL: the client's name or email contains `text`, in any case, matched as typed (% and _
    are plain characters, not wildcards). Emails are kept in lower case (`inputs.clean_email`):
    lowering each one again cost as much as the rest of a search of every client."""
    like = "%" + re.sub(r"([!%_])", r"!\1", text.lower()) + "%"
    return or_(func.lower(Client.name).like(like, escape="!"), Client.email.like(like, escape="!"))


def statuses(ctx: Context, ids: list[int]) -> dict[int, ClientStatus]:
    """The status of each client in `ids`, by the one rule (`status_sql`)."""
    state = status_sql(ctx.session.get_bind().dialect.name, ctx.now().date())
    found: dict[int, ClientStatus] = {}
    for i in range(0, len(ids), 1000):
        rows = ctx.session.execute(
            select(Client.id, state).where(Client.id.in_(ids[i : i + 1000]))
        ).all()
        found |= {client_id: ClientStatus(code) for client_id, code in rows}
    return found


def client_status(ctx: Context, client: Client) -> ClientStatus:
    ctx.session.flush()
    return statuses(ctx, [client.id])[client.id]


OVERDUE_STATE = {
    None: "not generated yet",
    DeliverableStatus.GENERATING: "being generated",
    DeliverableStatus.PENDING_REVIEW: "waiting in review",
    DeliverableStatus.REJECTED: "rejected, waiting for a revision",
}


def overdue(ctx: Context, client: Client) -> str:
    """What is overdue and since when, for a client whose status is overdue ("" otherwise):
    the month being worked on (the current one, or the next when the current is done, as
    `overdue_from` reads it), its state, and the day it became overdue."""
    if client_status(ctx, client) is not ClientStatus.OVERDUE:
        return ""
    views = lookups.month_views(ctx, client)
    program = ctx.program_of(client)
    month = client.current_month
    if views.get(month, rules.MonthView()).done and month < program.length:
        month += 1
    # The same arithmetic as `overdue_from`, so the note and the status never disagree.
    milestone = client.start_date + timedelta(days=client.held_days + 30 * (month - 1))
    since = milestone + timedelta(days=OVERDUE_AFTER_DAYS + 1)
    state = OVERDUE_STATE.get(views.get(month, rules.MonthView()).status, "not delivered")
    title = program.month(month).title
    return (
        f"M{month} {title} is overdue since {since:%d %b %Y}: its milestone was "
        f"{milestone:%d %b %Y} and it is {state}."
    )


def client_filters(
    ctx: Context, q: str, status: str, sort: str, only: Any = None
) -> tuple[Any, list[Any], Any]:
    """The clients list's status column, filters and order (the page and the CSV export);
    `only`: a subquery of client ids (the clients at risk)."""
    dialect = ctx.session.get_bind().dialect.name
    today = ctx.now().date()  # a day's precision is what the status needs
    state = status_sql(dialect, today)
    where = []
    if q.strip():
        where.append(matches(q.strip()))
    if status in STATUSES:
        where.append(status_is(dialect, today, ClientStatus(status)))
    if only is not None:
        where.append(Client.id.in_(only))
    rank = case({s: i for i, s in enumerate(STATUSES)}, value=state)
    name = func.lower(Client.name)
    order = {
        "name": (name, Client.id),
        "start": (Client.start_date, Client.id),
        "month": (Client.current_month, name, Client.id),
        "status": (rank, name, Client.id),
    }[sort if sort in SORTS else "name"]
    return state, where, order


def client_query(
    ctx: Context, *, q: str = "", status: str = "", sort: str = "name", only: Any = None
) -> Select[Any]:
    """Every client of the list with these filters, in its order, with their status."""
    state, where, order = client_filters(ctx, q, status, sort, only)
    return select(Client, state).where(*where).order_by(*order)


def clients(
    ctx: Context,
    *,
    q: str = "",
    status: str = "",
    sort: str = "name",
    page: int = 1,
    only: Any = None,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    """Clients matching `q` (name or email) and `status` (and in `only`, a subquery of ids),
    sorted, one page of them, each with its next automation. Filtering, sorting and paging
    happen in the database: the page after client `after` (or before client `before`) is
    read from the list's order onwards, however deep it is (`page` then only numbers it)."""
    state, where, order = client_filters(ctx, q, status, sort, only)
    query = select(
        Client.id, Client.name, Client.email, Client.start_date, Client.current_month, state
    ).where(*where)
    count = select(func.count()).select_from(Client).where(*where)
    found, total, page = paged(
        ctx, query, order, count, Client.id, page=page, after=after, before=before
    )
    nexts = next_automations(ctx, [r[0] for r in found])
    rows = [
        ClientRow(id, name, email, start, month, ClientStatus(label), nexts.get(id))
        for id, name, email, start, month, label in found
    ]
    return Page(rows, total, page, max(1, -(-total // PER_PAGE)))


def paged(
    ctx: Context,
    query: Select[Any],
    order: Sequence[Any],
    count: Select[Any],
    row_id: Any,
    *,
    page: int = 1,
    after: int | None = None,
    before: int | None = None,
    descending: bool = False,
) -> tuple[list[Any], int, int]:
    """One page of a long list: `query`'s rows in `order` (unique; every key descending with
    `descending`), how many rows there are (`count`, not run when the first page holds them
    all) and the page's number. The page after the row whose id (`row_id`) is `after`, or
    before the row `before`, is read by comparing the keys with that row's, so an index in the
    list's order reads that page alone however deep it is (`page` then only numbers it);
    without one, or if that row is gone, page `page` is read by offset (the last page past
    the end)."""
    cursor = after if after is not None else before
    keys = None
    if cursor is not None:
        keys = ctx.session.execute(select(*order).where(row_id == cursor)).first()
    if keys is not None:
        forward = after is not None
        up = forward != descending  # the keys grow along the rows read
        beyond = tuple_(*order) > tuple_(*keys) if up else tuple_(*order) < tuple_(*keys)
        sort = [k.asc() if up else k.desc() for k in order]
        found = list(ctx.session.execute(query.where(beyond).order_by(*sort).limit(PER_PAGE)))
        if not forward:
            found.reverse()
        return found, int(ctx.session.scalar(count) or 0), max(page, 1)
    sort = [k.desc() if descending else k.asc() for k in order]
    page = max(page, 1)
    found = list(
        ctx.session.execute(query.order_by(*sort).offset((page - 1) * PER_PAGE).limit(PER_PAGE))
    )
    if page == 1 and len(found) < PER_PAGE:
        return found, len(found), 1  # the first page holds them all: nothing to count
    total = int(ctx.session.scalar(count) or 0)
    last = max(1, -(-total // PER_PAGE))
    if page > last:  # past the end: the last page
        return paged(ctx, query, order, count, row_id, page=last, descending=descending)
    return found, total, page


def next_automations(ctx: Context, ids: list[int]) -> dict[int, Expected]:
    """What comes next for each client (`outcomes.next_for`): the first automations that may
    act (not those a hold keeps back), or what the hold waits for."""
    if not ids:
        return {}
    clients = {c.id: c for c in ctx.session.scalars(select(Client).where(Client.id.in_(ids)))}
    # Each client's pending automations through the (client_id, key) index, the first three
    # that may act picked here (a window over the join made PostgreSQL read the whole due index).
    first: dict[int, list[int]] = {}
    for automation_id, client_id, hold_id in ctx.session.execute(
        select(Automation.id, Automation.client_id, Automation.hold_id)
        .where(Automation.client_id.in_(ids), Automation.status == AutomationStatus.SCHEDULED)
        .order_by(Automation.client_id, Automation.trigger_at, Automation.id)
    ):
        chosen = first.setdefault(client_id, [])
        may_run = clients[client_id].paused_at is None or hold_id is not None
        if may_run and len(chosen) < 3:
            chosen.append(automation_id)
    wanted = [i for chosen in first.values() for i in chosen]
    rows = ctx.session.scalars(
        select(Automation)
        .where(Automation.id.in_(wanted))
        .order_by(Automation.client_id, Automation.trigger_at, Automation.id)
    ).all()
    by_client: dict[int, list[Automation]] = {}
    for automation in rows:
        by_client.setdefault(automation.client_id, []).append(automation)
    checkins = {a.client_id for a in rows if a.template == Template.AT_RISK_CHECKIN}
    journeys = lookups.journeys(ctx, list(clients.values()), scored=checkins)
    found: dict[int, Expected] = {}
    for client_id, client in clients.items():
        nxt = outcomes.next_for(ctx, client, by_client.get(client_id, []), journeys[client_id])
        if nxt is None and client.paused_at is not None:
            nxt = Expected(0, "Hold", "waiting", None, "on hold: waits for the hold to end")
        if nxt is not None:
            found[client_id] = nxt
    return found


REVIEW_FILTERS = ("", "review", "rejected")


@dataclass(frozen=True)
class ReviewItem:
    """One month waiting for an admin: in review (since it was generated) or rejected and
    waiting for its revision (since it was rejected)."""

    deliverable: Deliverable
    client: Client
    since: datetime
    waited: timedelta
    milestone: MonthDate
    regenerating: bool  # a new version is queued or being written


def review_queue(ctx: Context, page: int = 1, show: str = "") -> Page:
    """Deliverables waiting for an admin, the longest waiting first, one page of them with
    their clients: in review, and (the latest version of a month only) rejected ones waiting
    for a revision. `show`: "review" or "rejected" for one kind only. The page lists titles:
    a text is read when a reviewer opens it."""
    page = max(page, 1)
    items, total = review_items(ctx, show, (page - 1) * PER_PAGE, PER_PAGE, texts=False)
    pages = max(1, -(-total // PER_PAGE))
    if page > pages:  # past the end: the last page
        page = pages
        items, total = review_items(ctx, show, (page - 1) * PER_PAGE, PER_PAGE, texts=False)
    return Page(items, total, page, pages)


def review_items(
    ctx: Context, show: str, offset: int, limit: int, *, texts: bool = True
) -> tuple[list[ReviewItem], int]:
    """`limit` items of the review queue from `offset`, and how many there are in all (their
    deliverables without their texts unless `texts`)."""
    if show not in REVIEW_FILTERS:
        raise Invalid(f"show: one of review, rejected, not {show[:40]!r}", "show")
    kinds = {
        "": [DeliverableStatus.PENDING_REVIEW, DeliverableStatus.REJECTED],
        "review": [DeliverableStatus.PENDING_REVIEW],
        "rejected": [DeliverableStatus.REJECTED],
    }[show]
    newer = aliased(Deliverable)
    waiting = (
        Deliverable.status.in_(kinds),
        ~select(newer.id)
        .where(
            newer.client_id == Deliverable.client_id,
            newer.month == Deliverable.month,
            newer.version > Deliverable.version,
        )
        .exists(),
    )
    since = case(
        (
            Deliverable.status == DeliverableStatus.REJECTED,
            func.coalesce(Deliverable.reviewed_at, Deliverable.created_at),
        ),
        else_=func.coalesce(Deliverable.generated_at, Deliverable.created_at),
    )
    # The page's rows are chosen on the deliverables alone, counting them all on the way, then
    # read with their clients.
    chosen = (
        select(Deliverable.id, func.count().over().label("total"))
        .where(*waiting)
        .order_by(since, Deliverable.id)
        .offset(offset)
        .limit(limit)
        .subquery()
    )
    rows = ctx.session.execute(
        select(Deliverable, Client, chosen.c.total)
        .join(Client, Client.id == Deliverable.client_id)
        .join(chosen, chosen.c.id == Deliverable.id)
        .options(
            *([] if texts else [defer(Deliverable.content), defer(Deliverable.generated_content)])
        )
        .order_by(since, Deliverable.id)
    ).all()
    if rows:
        total = int(rows[0].total)
    else:  # past the end (or no page asked for): counted
        total = int(
            ctx.session.scalar(select(func.count()).select_from(Deliverable).where(*waiting)) or 0
        )
    if not rows:
        return [], total
    clients = list({c.id: c for _, c, _ in rows}.values())
    journeys = lookups.journeys(ctx, clients, scored=(), deliverables=False)  # dates only
    dates = {c.id: projected_dates(ctx, c, journey=journeys[c.id]) for c in clients}
    busy = (
        set(
            ctx.session.execute(
                select(Automation.client_id, Automation.month).where(
                    Automation.client_id.in_([c.id for c in clients]),
                    Automation.type == AutomationType.GENERATE_DELIVERABLE,
                    Automation.status.in_([AutomationStatus.SCHEDULED, AutomationStatus.RUNNING]),
                )
            ).all()
        )
        if clients
        else set()
    )
    now = ctx.now()
    items = []
    for d, c, _ in rows:
        at = (
            d.reviewed_at if d.status == DeliverableStatus.REJECTED else d.generated_at
        ) or d.created_at
        items.append(
            ReviewItem(
                d,
                c,
                at,
                now - at,
                dates[c.id][d.month],
                d.status == DeliverableStatus.REJECTED and (c.id, d.month) in busy,
            )
        )
    return items, total


def waited(span: timedelta) -> str:
    """How long something has waited, as a person says it ("3 days", "5 hours", "12 min")."""
    seconds = max(0, int(span.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 7200:
        return f"{seconds // 3600} hours"
    if seconds >= 3600:
        return "1 hour"
    return f"{max(1, seconds // 60)} min"


# -- the log: one query behind the log page, the dashboard's numbers and the weekly digest --


@dataclass(frozen=True)
class LogFilter:
    """Which rows: log rows (what happened), or, with status SCHEDULED, pending automations that
    may run (not those a hold keeps back). Dates are whole days in `zone` (the reader's)."""

    client: str = ""  # id, email or part of a name
    type: str = ""
    template: str = ""
    status: str = ""
    start: date | None = None
    end: date | None = None  # inclusive
    zone: str = "UTC"
    actor: str = ""  # who acted (part of their email); "engine" for what nobody did by hand

    def link(self) -> dict[str, str]:
        """The log page's query string for these rows."""
        args = {
            "client": self.client,
            "type": self.type,
            "template": self.template,
            "status": self.status,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            "actor": self.actor,
        }
        return {k: v for k, v in args.items() if v}


LOG_STATUSES = (*[s.value for s in LogStatus], AutomationStatus.SCHEDULED.value)


def log_filter(
    *,
    client: str = "",
    type: str = "",
    template: str = "",
    status: str = "",
    start: date | None = None,
    end: date | None = None,
    zone: str = "UTC",
    actor: str = "",
) -> LogFilter:
    """A log filter as a person typed it, refused with a message when it cannot mean anything."""
    if type and type not in AutomationType.__members__:
        names = ", ".join(AutomationType)
        raise Invalid(f"type: unknown automation type {type!r} (one of {names})", "type")
    if template and template not in Template.__members__:
        raise Invalid(f"template: unknown template {template!r}", "template")
    if status and status not in LOG_STATUSES:
        names = ", ".join(LOG_STATUSES)
        raise Invalid(f"status: unknown status {status!r} (one of {names})", "status")
    if start and end and start > end:
        raise Invalid(f"from: {start} is after to ({end})", "from")
    if actor and status == AutomationStatus.SCHEDULED:
        raise Invalid("actor: pending automations have no actor yet; filter the log rows", "actor")
    return LogFilter(client.strip(), type, template, status, start, end, zone, actor.strip())


def day_start(day: date, zone: str = "UTC") -> datetime:
    """The first instant of `day` in `zone`, in UTC."""
    return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)


# A client filter naming up to this many clients lists their ids to the database (which then
# reads each one's rows through the (client_id, at) index); more, and the names are matched.
NAMED_CLIENTS = 5_000


def log_query(ctx: Context, where: LogFilter) -> tuple[Select[Any], Any, Any]:
    """The rows `where` names (log rows, or with status SCHEDULED pending automations), the
    table and its time column. Their clients' names are read for a page of them (`named`)."""
    pending = where.status == AutomationStatus.SCHEDULED
    table: Any = Automation if pending else AutomationLog
    when = Automation.trigger_at if pending else AutomationLog.at
    conditions: list[Any] = []
    if pending:  # not those a hold keeps back (the clients on hold are few: `ix_clients_paused`)
        on_hold = select(Client.id).where(Client.paused_at.is_not(None))
        conditions.append(
            or_(Automation.hold_id.is_not(None), Automation.client_id.not_in(on_hold))
        )
    named: list[int] | None = None
    if where.client:
        text = where.client
        if looks_like_id(text):
            conditions.append(table.client_id == int(text) if fits_id(int(text)) else false())
        else:
            found = ctx.session.scalars(
                select(Client.id).where(matches(text)).limit(NAMED_CLIENTS + 1)
            )
            named = list(found)
            if len(named) > NAMED_CLIENTS:
                named = None
                conditions.append(matches(text))
            else:
                conditions.append(table.client_id.in_(named))
    if where.type:
        conditions.append(table.type == where.type)
    if where.template:
        conditions.append(table.template == where.template)
    if where.status:
        conditions.append(table.status == where.status)
    if where.start:
        conditions.append(when >= day_start(where.start, where.zone))
    if where.end:
        conditions.append(when < day_start(where.end + timedelta(days=1), where.zone))
    if where.actor and not pending:
        if where.actor.lower() == "engine":
            conditions.append(AutomationLog.actor.is_(None))
        else:  # a person's rows: through the index of the rows with an actor
            like = "%" + re.sub(r"([!%_])", r"!\1", where.actor.lower()) + "%"
            conditions.append(AutomationLog.actor.is_not(None))
            conditions.append(func.lower(AutomationLog.actor).like(like, escape="!"))
    if named is not None and not pending:
        # The named clients' rows are read client by client (the (client_id, at) index), then
        # put in order: walking the log in time order for them takes seconds when they acted
        # long ago (OFFSET 0 keeps PostgreSQL from merging the two steps). What is to come is
        # spread over the months ahead: found soon in time order.
        rows = aliased(table, select(table).where(*conditions).offset(0).subquery())
        return select(rows), rows, rows.at
    query = select(table)
    if where.client and named is None and not looks_like_id(where.client):
        query = query.join(Client, Client.id == table.client_id)  # matched by name
    return query.where(*conditions), table, when


def named(ctx: Context, rows: Sequence[Any]) -> list[tuple[Any, str]]:
    """Log rows (or automations) with their clients' names, read for these rows alone."""
    ids = {row.client_id for row in rows}
    found = ctx.session.execute(select(Client.id, Client.name).where(Client.id.in_(ids)))
    names = dict(found.all())
    return [(row, names.get(row.client_id, "")) for row in rows]


def count(ctx: Context, where: LogFilter) -> int:
    """How many rows the log shows for `where` (up to LOG_COUNT_CAP + 1)."""
    query, _, _ = log_query(ctx, where)
    return int(ctx.session.scalar(capped(query)) or 0)


def capped(query: Select[Any]) -> Select[Any]:
    """SQL: how many rows `query` names, up to LOG_COUNT_CAP + 1."""
    return select(func.count()).select_from(query.limit(LOG_COUNT_CAP + 1).subquery())


def tally(ctx: Context, where: LogFilter, by: str) -> list[tuple[str, int]]:
    """The rows `where` names, counted by one of their columns (`status`, `type`)."""
    query, _, _ = log_query(ctx, where)
    rows = query.subquery()
    column = rows.c[by]
    found = ctx.session.execute(select(column, func.count()).group_by(column).order_by(column))
    return [(str(value), int(n)) for value, n in found]


def logs(
    ctx: Context,
    where: LogFilter,
    page: int = 1,
    *,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    """Automation log rows (or, for status SCHEDULED, pending automations) matching the filter,
    newest first (pending ones soonest first), one page: page `page`, or the page after the
    row `after` (before the row `before`), read from there on (`paged`)."""
    query, table, when = log_query(ctx, where)
    pending = where.status == AutomationStatus.SCHEDULED
    # Counted up to LOG_COUNT_CAP: past that, "10,000+" says enough, and costs no full scan.
    rows, total, page = paged(
        ctx,
        query,
        (when, table.id),
        capped(query),
        table.id,
        page=page,
        after=after,
        before=before,
        descending=not pending,
    )
    return Page(named(ctx, [r[0] for r in rows]), total, page, max(1, -(-total // PER_PAGE)))


# -- the dashboard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """One number of the dashboard and the rows behind it: the number IS the count of those
    rows (the log's own query), so following its link lists exactly that many."""

    label: str
    value: int | str
    rows: LogFilter | None = None  # the log rows behind it
    clients: str = ""  # or: the client list with this status
    hint: str = ""  # what the number means, shown on hover

    @property
    def link(self) -> dict[str, str]:
        if self.rows is not None:
            return self.rows.link()
        return {"status": self.clients, "view": "clients"}


@dataclass(frozen=True)
class Dashboard:
    today: list[Count]
    week: list[Count]
    ahead: list[Count]
    daily: list[tuple[date, int, LogFilter]]  # the last 14 days: automations completed
    zone: str
    counted_at: datetime  # when the numbers were counted
    numbers: dict[str, Any]  # as counted (JSON), what `dashboard` shows again without counting


def local_today(ctx: Context, zone: str) -> date:
    return ctx.now().astimezone(ZoneInfo(zone)).date()


def on_time_days(ctx: Context) -> int:
    return ctx.program.schedule.on_time_days


def on_time(ctx: Context, where: LogFilter) -> tuple[int, int]:
    """Of the deliveries `where` names (DELIVERABLE_READY emails sent), how many reached the
    client by their month's milestone + the program's `on_time_days`, in the client's zone.
    The milestone is `projected_dates`': the local date of the month's planned generation
    (moved by an open hold while it is still to come), read for every delivery in one query;
    a month with no planned generation is projected from its client's journey."""
    query, _, _ = log_query(ctx, where)
    sent = query.subquery()
    planned = aliased(Automation)
    key = case(
        {
            m: plan.step_key(AutomationType.GENERATE_DELIVERABLE, m)
            for m in range(1, max(ctx.program.length, 12) + 1)
        },
        value=sent.c.month,
    )
    rows = ctx.session.execute(
        select(
            sent.c.client_id, sent.c.month, sent.c.at, Client.timezone, Client.paused_at,
            planned.trigger_at, planned.status,
        )
        .join(Client, Client.id == sent.c.client_id)
        .outerjoin(planned, and_(planned.client_id == sent.c.client_id, planned.key == key))
    ).all()  # fmt: skip
    paused = {r.client_id for r in rows if r.paused_at is not None}
    shifts = {
        h.client_id: hold_shift(h)
        for h in ctx.session.scalars(
            select(Hold).where(Hold.client_id.in_(paused), Hold.ended_at.is_(None))
        )
    }
    unplanned = {r.client_id for r in rows if r.trigger_at is None}
    journeys = {
        c.id: projected_dates(ctx, c)
        for c in ctx.session.scalars(select(Client).where(Client.id.in_(unplanned)))
    }
    late = timedelta(days=on_time_days(ctx))
    timely = 0
    for client_id, month, at, zone, _, trigger_at, status in rows:
        tz = plan.zone(zone)
        if trigger_at is None:
            milestone = journeys[client_id][month]
        else:
            milestone = projected(plan.local_date(trigger_at, tz), status, shifts.get(client_id, 0))
        if plan.local_date(at, tz) <= milestone.date + late:
            timely += 1
    return timely, len(rows)


def exact(ctx: Context, where: LogFilter) -> int:
    """How many rows the log shows for `where`, every one counted (a dashboard's number)."""
    query, _, _ = log_query(ctx, where)
    return int(ctx.session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def dashboard(ctx: Context, zone: str = "UTC", kept: dict[str, Any] | None = None) -> Dashboard:
    """Today, the last 7 days and the next 7 (whole days in the reader's `zone`): each number
    counted now, or, given `kept` (a dashboard's `numbers`), as counted then. A number is the
    count of the rows its link lists (`exact`, or `tally` for several kinds of the same rows)."""
    today = date.fromisoformat(kept["day"]) if kept else local_today(ctx, zone)
    week_start = today - timedelta(days=6)
    ahead_end = today + timedelta(days=6)

    def rows(start: date, end: date, **what: str) -> LogFilter:
        return LogFilter(start=start, end=end, zone=zone, **what)

    done = LogStatus.COMPLETED.value
    scheduled = AutomationStatus.SCHEDULED.value
    # The numbers that count one kind of the day's completed, or the week's pending, rows.
    done_kinds = {
        "generated": "GENERATE_DELIVERABLE",
        "reminders sent": "SEND_REMINDER",
        "escalations": "ESCALATE_TO_ADMIN",
    }
    coming_kinds = {
        "to generate": "GENERATE_DELIVERABLE",
        "reminders": "SEND_REMINDER",
        "celebrations": "SEND_CELEBRATION",
    }
    kinds = done_kinds | coming_kinds
    failures = rows(today, today, status=LogStatus.FAILED.value)
    delivered = rows(week_start, today, template="DELIVERABLE_READY", status=done)
    days = [today - timedelta(days=i) for i in range(13, -1, -1)]
    if kept is None:
        did = dict(tally(ctx, rows(today, today, status=done), "type"))
        coming = dict(tally(ctx, rows(today, ahead_end, status=scheduled), "type"))
        timely, total = on_time(ctx, delivered)
        overdue = status_is(
            ctx.session.get_bind().dialect.name, ctx.now().date(), ClientStatus.OVERDUE
        )
        found = {label: did.get(kind, 0) for label, kind in done_kinds.items()}
        found |= {label: coming.get(kind, 0) for label, kind in coming_kinds.items()}
        found["failures"] = exact(ctx, failures)
        found["months delivered"] = total
        found["clients overdue"] = int(
            ctx.session.scalar(select(func.count()).select_from(Client).where(overdue)) or 0
        )
        kept = {
            "day": today.isoformat(),
            "at": ctx.now().isoformat(),
            "numbers": found,
            "on_time": [timely, total],
            "daily": [exact(ctx, rows(day, day, status=done)) for day in days],
        }
    found = kept["numbers"]
    timely, total = kept["on_time"]

    def number(label: str, where: LogFilter, hint: str = "") -> Count:
        return Count(label, found[label], where, hint=hint)

    today_counts = [
        number("generated", rows(today, today, type=kinds["generated"], status=done)),
        number("reminders sent", rows(today, today, type=kinds["reminders sent"], status=done)),
        number("escalations", rows(today, today, type=kinds["escalations"], status=done)),
        number("failures", failures),
    ]
    n = on_time_days(ctx)
    week_counts = [
        Count(
            "on-time delivery",
            f"{round(100 * timely / total)}%" if total else "n/a",
            delivered,
            hint=(
                f"Deliveries in the last 7 days that reached the client by their month's "
                f"milestone + {n} days: {timely} of {total}"
            ),
        ),
        Count(
            "clients overdue",
            found["clients overdue"],
            clients=ClientStatus.OVERDUE.value,
            hint="Clients whose month in progress is more than 7 days past its milestone",
        ),
        number(
            "months delivered",
            delivered,
            "Deliverable-ready emails sent in the last 7 days (one per month delivered)",
        ),
    ]
    ahead_counts = [
        number(
            "to generate",
            rows(today, ahead_end, type=kinds["to generate"], status=scheduled),
            "Pending generations due by the end of the 7th day (clients on hold not counted)",
        ),
        number("reminders", rows(today, ahead_end, type=kinds["reminders"], status=scheduled)),
        number(
            "celebrations", rows(today, ahead_end, type=kinds["celebrations"], status=scheduled)
        ),
    ]
    daily = [
        (day, n, rows(day, day, status=done)) for day, n in zip(days, kept["daily"], strict=True)
    ]
    at = datetime.fromisoformat(kept["at"])
    return Dashboard(today_counts, week_counts, ahead_counts, daily, zone, at, kept)


def failed_automation(row: Any) -> bool:
    return isinstance(row, AutomationLog) and row.status == LogStatus.FAILED
