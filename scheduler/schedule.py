"""The schedule's primitives: put an automation on the schedule, move it, end it, log it,
hand it to the transport when it falls within the horizon; and the client's progress that
follows from their deliverables. Every operation is built from these."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text

from scheduler import plan, rules
from scheduler.engine import Context
from scheduler.lookups import month_views
from scheduler.models import Automation, AutomationLog, Client, Hold
from scheduler.vocab import (
    TEMPLATE_TYPE,
    AutomationStatus,
    AutomationType,
    Lane,
    LogStatus,
    Source,
    Template,
    lane,
)


def log(
    ctx: Context, automation: Automation, status: LogStatus, detail: str, error: str | None = None
) -> None:
    ctx.session.add(AutomationLog(**log_row(ctx, automation, status, detail, error)))


def log_row(
    ctx: Context, automation: Automation, status: LogStatus, detail: str, error: str | None = None
) -> dict[str, Any]:
    """The log row of what just happened to `automation` (`log` adds it to the session; a
    batch's rows are inserted together by `log_many`)."""
    return {
        "at": ctx.now(),
        "client_id": automation.client_id,
        "automation_id": automation.id,
        "type": automation.type,
        "month": automation.month,
        "template": automation.template,
        "status": status,
        "attempt": automation.retry_count + 1,
        "detail": detail,
        "error": error,
        "program_version": automation.program_version,
        "actor": ctx.actor or None,
    }


def log_many(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """Insert a batch's log rows in one statement (nothing reads their ids: no RETURNING, so
    PostgreSQL's driver pipelines one short statement instead of parsing a long one)."""
    if rows:
        ctx.session.execute(insert(AutomationLog), rows)


def schedule(
    ctx: Context,
    client: Client,
    type_: AutomationType,
    at: datetime,
    *,
    source: Source,
    month: int | None = None,
    template: Template | None = None,
    key: str | None = None,
    payload: dict[str, Any] | None = None,
    hold: Hold | None = None,
    planned: bool = False,
) -> Automation:
    """Put one automation on the schedule. A `key` the client already has returns the existing
    automation instead (events and plans never schedule twice). With `planned`, a reminder whose
    moment has already passed is recorded SKIPPED, never sent late."""
    if key is not None:
        existing = ctx.session.scalar(
            select(Automation).where(Automation.client_id == client.id, Automation.key == key)
        )
        if existing is not None:
            return existing
    automation = new_automation(
        ctx,
        client,
        type_,
        at,
        source=source,
        month=month,
        template=template,
        key=key,
        payload=payload,
        hold=hold,
    )
    place(ctx, [automation], planned=planned)
    return automation


def new_automation(
    ctx: Context,
    client: Client,
    type_: AutomationType,
    at: datetime,
    *,
    source: Source,
    month: int | None = None,
    template: Template | None = None,
    key: str | None = None,
    payload: dict[str, Any] | None = None,
    hold: Hold | None = None,
) -> Automation:
    now = ctx.now()
    return Automation(
        client_id=client.id,
        hold_id=hold.id if hold else None,
        type=type_,
        month=month,
        template=template,
        key=key,
        source=source,
        status=AutomationStatus.SCHEDULED,
        version=1,
        trigger_at=at,
        retry_count=0,
        max_retries=ctx.program_of(client).schedule.max_retries,
        program_version=client.program_version,
        payload=payload or {},
        detail="",
        created_at=now,
        updated_at=now,
    )


def place(ctx: Context, automations: list[Automation], *, planned: bool) -> None:
    """Insert new automations (one flush), then skip the late reminders among them or hand
    them to the transport."""
    ctx.session.add_all(automations)
    ctx.session.flush()
    ctx.touched.extend(automations)
    now = ctx.now()
    for automation in automations:
        late = automation.trigger_at < now
        if planned and late and plan.skips_when_late(AutomationType(automation.type)):
            finish(
                ctx,
                automation,
                AutomationStatus.SKIPPED,
                "its moment had passed when it was planned",
            )
        else:
            send_when_due(ctx, automation)


def send_when_due(ctx: Context, automation: Automation) -> None:
    """Hand the automation to the transport if it falls within the horizon (after commit);
    otherwise the sweep will when its time comes near."""
    now = ctx.now()
    client = automation.client
    held = client.paused_at is not None and automation.hold_id is None
    due = automation.trigger_at <= now + ctx.engine.horizon
    if due and not held and ctx.engine.dispatches:
        automation.dispatched_at = now
        ctx.dispatch_after_commit(
            automation.id, automation.version, automation.trigger_at, lane_of(automation)
        )
    else:
        automation.dispatched_at = None


def lane_of(automation: Automation) -> Lane:
    """Generations an admin asked for (by hand, or run now) go before scheduled ones."""
    urgent = automation.source == Source.MANUAL or bool((automation.payload or {}).get("urgent"))
    return lane(automation.type, urgent=urgent)


def move(ctx: Context, automation: Automation, at: datetime, *, planned: bool = True) -> None:
    """Move a scheduled automation to `at`; the messages already sent for it go stale."""
    ctx.touched.append(automation)
    automation.trigger_at = at
    automation.version += 1
    automation.updated_at = ctx.now()
    if planned and plan.skips_when_late(AutomationType(automation.type)) and at < ctx.now():
        finish(
            ctx, automation, AutomationStatus.SKIPPED, "its moment had passed when it was replanned"
        )
    else:
        send_when_due(ctx, automation)


def finish(ctx: Context, automation: Automation, status: AutomationStatus, detail: str) -> None:
    """End a scheduled automation without running it (skip or cancel), and log why."""
    ctx.touched.append(automation)
    automation.status = status
    automation.version += 1
    automation.detail = detail
    automation.lease_until = None
    automation.dispatched_at = None
    automation.updated_at = ctx.now()
    log(ctx, automation, LogStatus(status), detail)


def notify(
    ctx: Context,
    client: Client,
    template: Template,
    key: str,
    *,
    month: int | None = None,
    payload: dict[str, Any] | None = None,
    hold: Hold | None = None,
    at: datetime | None = None,
) -> Automation:
    """Schedule the automation that sends `template` (now, unless `at` says otherwise)."""
    return schedule(
        ctx,
        client,
        TEMPLATE_TYPE[template],
        at or ctx.now(),
        source=Source.EVENT,
        month=month,
        template=template,
        key=key,
        payload=payload,
        hold=hold,
    )


def after_grace(ctx: Context) -> datetime:
    """When a client email caused by an admin's action goes: after the grace period, so that
    an undo within it sends nothing."""
    return ctx.now() + ctx.engine.action_email_grace


def refresh_progress(ctx: Context, client: Client) -> None:
    views = month_views(ctx, client)
    _, current, _ = rules.progress(views, ctx.program_of(client))
    client.current_month = current
    client.current_month_done = views.get(current, rules.MonthView()).done
    if rules.complete(views, ctx.program_of(client)):
        client.completed_at = client.completed_at or ctx.now()
    elif client.offboarded_at is None:  # a journey ended early stays ended
        client.completed_at = None
    client.updated_at = ctx.now()


def bulk_insert(ctx: Context, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert many rows (all with the same keys); returns how many. A binary COPY on PostgreSQL
    (an order of magnitude faster than any INSERT: each value written by the driver's C code
    for its column's type), streamed as `rows` yields them, so that the database stores one
    while the next are made; one executemany elsewhere."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    connection = ctx.session.connection()
    if connection.dialect.name != "postgresql":
        every = [first, *rows]
        connection.execute(insert(table), every)
        return len(every)
    columns = tuple(first)
    names = ", ".join(f'"{c}"' for c in columns)
    raw = connection.connection.driver_connection
    copying = f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)"
    types = copy_types(connection, table, columns)
    count = 0
    with raw.cursor() as cursor, cursor.copy(copying) as copy:
        copy.set_types(types)
        for row in itertools.chain((first,), rows):
            copy.write_row([row[c] for c in columns])
            count += 1
    return count


COPY_TYPES: dict[tuple[str, tuple[str, ...]], list[int]] = {}


def copy_types(connection: Connection, table: Table, columns: tuple[str, ...]) -> list[int]:
    """The columns' types as PostgreSQL knows them (their oids, read from its catalogue once per
    process: a binary COPY must be told them)."""
    key = (table.name, columns)
    if key not in COPY_TYPES:
        found = dict(
            connection.execute(
                text(
                    "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = "
                    "CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"
                ),
                {"table": table.name},
            ).all()
        )
        COPY_TYPES[key] = [int(found[c]) for c in columns]
    return COPY_TYPES[key]


def insert_numbered(ctx: Context, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new rows and return their ids, in order: on PostgreSQL numbered from the table's
    sequence first and copied in (`bulk_insert`), elsewhere one INSERT … RETURNING."""
    ids = new_ids(ctx, table, len(rows))
    if ids is None:
        returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(ctx.session.connection().execute(returning, rows).scalars())
    bulk_insert(ctx, table, [row | {"id": id_} for row, id_ in zip(rows, ids, strict=True)])
    return ids


def new_ids(ctx: Context, table: Table, count: int) -> list[int] | None:
    """`count` ids from the table's sequence, in one query, on PostgreSQL (None elsewhere:
    SQLite numbers rows as it inserts them, cheaply)."""
    connection = ctx.session.connection()
    if connection.dialect.name != "postgresql":
        return None
    if not count:
        return []
    return list(
        connection.execute(
            select(func.nextval(func.pg_get_serial_sequence(table.name, "id"))).select_from(
                func.generate_series(1, count)
            )
        ).scalars()
    )


def give_ids(ctx: Context, rows: Sequence[Any]) -> None:
    """Number new ORM rows from their table's sequence in one query, on PostgreSQL: rows that
    arrive with their ids are inserted by one pipelined statement, without RETURNING."""
    ids = new_ids(ctx, type(rows[0]).__table__, len(rows)) if rows else None
    for row, id_ in zip(rows, ids or [], strict=False):
        row.id = id_
