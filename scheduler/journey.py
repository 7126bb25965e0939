"""The journey's operations: enroll a client and plan the journey, react to events (approval,
rejection, opening, business plan), and the admin controls (hold, resume, adjust, skip, cancel,
schedule, trigger now). Each applies the pure rules of `plan` and `rules` to the database and
leaves the commit to its caller; each is idempotent or refuses with a clear error."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, or_, select, update

from scheduler import plan, rules
from scheduler.engine import Context
from scheduler.models import (
    Automation,
    AutomationLog,
    Client,
    Deliverable,
    Hold,
    fits_id,
    looks_like_id,
)
from scheduler.vocab import (
    TEMPLATE_TYPE,
    AutomationStatus,
    AutomationType,
    DeliverableStatus,
    Lane,
    LogStatus,
    Source,
    Template,
    lane,
)


class JourneyError(Exception):
    """An operation refused: the message says why, for a person to read."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(JourneyError):
    status = 422


class NotFound(JourneyError):
    status = 404


class Conflict(JourneyError):
    status = 409


EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[A-Za-z]{2,}$")


# -- reading -------------------------------------------------------------------------------


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


# -- the schedule's primitives ---------------------------------------------------------------


def log(
    ctx: Context, automation: Automation, status: LogStatus, detail: str, error: str | None = None
) -> None:
    ctx.session.add(
        AutomationLog(
            at=ctx.now(),
            client_id=automation.client_id,
            automation_id=automation.id,
            type=automation.type,
            month=automation.month,
            template=automation.template,
            status=status,
            attempt=automation.retry_count + 1,
            detail=detail,
            error=error,
        )
    )


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
        max_retries=ctx.program.schedule.max_retries,
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
    if automation.trigger_at <= now + ctx.engine.horizon and not held:
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


def refresh_progress(ctx: Context, client: Client) -> None:
    views = month_views(ctx, client)
    _, current, _ = rules.progress(views, ctx.program)
    client.current_month = current
    if rules.complete(views, ctx.program):
        client.completed_at = client.completed_at or ctx.now()
    else:
        client.completed_at = None
    client.updated_at = ctx.now()


# -- enrollment and planning ------------------------------------------------------------------


def clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise Invalid("name: required", "name")
    if len(name) > 200:
        raise Invalid("name: at most 200 characters", "name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid("name: control characters are not allowed", "name")
    return name


def clean_email(email: str) -> str:
    email = str(email).strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise Invalid(f"email: {email!r} is not an email address", "email")
    return email


def clean_zone(name: str) -> str:
    try:
        plan.zone(name)
    except ValueError as exc:
        raise Invalid(f"timezone: {exc}", "timezone") from None
    return name


@dataclass(frozen=True)
class Enrollment:
    """One client to enroll."""

    name: str
    email: str
    start_date: date
    timezone: str = "UTC"
    onboarding: dict[str, Any] = field(default_factory=dict)
    business_plan: str = ""


def enroll(
    ctx: Context,
    *,
    name: str,
    email: str,
    start_date: date,
    timezone: str = "UTC",
    onboarding: dict[str, Any] | None = None,
    business_plan: str = "",
) -> Client:
    """Enroll a client and plan the whole journey from `start_date`."""
    person = Enrollment(name, email, start_date, timezone, dict(onboarding or {}), business_plan)
    return enroll_many(ctx, [person])[0]


def enroll_many(ctx: Context, people: Sequence[Enrollment]) -> list[Client]:
    """Enroll clients and plan their journeys: all of them, or (on any bad row) none."""
    if not people:
        return []
    cleaned: list[Enrollment] = []
    seen: set[str] = set()
    for row, person in enumerate(people, start=1):
        try:
            check_date(person.start_date, "start_date")
            email = clean_email(person.email)
            if email in seen:
                raise Conflict(f"email {email} appears twice", "email")
            seen.add(email)
            cleaned.append(
                Enrollment(
                    clean_name(person.name),
                    email,
                    person.start_date,
                    clean_zone(person.timezone),
                    dict(person.onboarding or {}),
                    str(person.business_plan or ""),
                )
            )
        except JourneyError as exc:
            if len(people) > 1:
                exc.message = f"row {row}: {exc.message}"
                exc.args = (exc.message,)
            raise
    taken: dict[str, int] = {}
    emails = sorted(seen)
    for i in range(0, len(emails), 1000):
        taken |= dict(
            ctx.session.execute(
                select(Client.email, Client.id).where(Client.email.in_(emails[i : i + 1000]))
            ).all()
        )
    if taken:
        email, found = next(iter(sorted(taken.items())))
        raise Conflict(f"a client with email {email} is already enrolled (id {found})", "email")
    now = ctx.now()
    rows = [
        {
            "name": p.name,
            "email": p.email,
            "timezone": p.timezone,
            "start_date": p.start_date,
            "current_month": 1,
            "held_days": 0,
            "onboarding": p.onboarding,
            "business_plan": p.business_plan,
            "created_at": now,
            "updated_at": now,
        }
        for p in cleaned
    ]
    # Core executemany: one multi-row INSERT per batch on every backend.
    connection = ctx.session.connection()
    made = {
        email: client_id
        for email, client_id in connection.execute(
            insert(Client.__table__).returning(Client.email, Client.id), rows
        ).all()
    }
    ids = [made[p.email] for p in cleaned]
    loaded: dict[int, Client] = {}
    for i in range(0, len(ids), 1000):
        chunk = select(Client).where(Client.id.in_(ids[i : i + 1000]))
        loaded |= {c.id: c for c in ctx.session.scalars(chunk)}
    clients = [loaded[i] for i in ids]
    plan_journey(ctx, clients, fresh=True)
    return clients


def plan_journey(ctx: Context, clients: Sequence[Client], *, fresh: bool = False) -> int:
    """Schedule every step of the clients' plans in one bulk insert. Idempotent: steps a client
    already has stay as they are (`fresh` says the clients are new and have none). Returns how
    many automations it scheduled."""
    have: set[tuple[int, str | None]] = set()
    if not fresh:
        ids = [c.id for c in clients]
        for i in range(0, len(ids), 1000):
            have |= set(
                ctx.session.execute(
                    select(Automation.client_id, Automation.key).where(
                        Automation.client_id.in_(ids[i : i + 1000]),
                        Automation.source == Source.PLAN,
                    )
                ).all()
            )
    now = ctx.now()
    soon = now + ctx.engine.horizon
    # The steps, as plain values, with their distance from the start (the hot loop of a bulk
    # enrollment: 32 rows a client).
    steps = [
        (
            step.key,
            step.type.value,
            step.month,
            step.template.value if step.template else None,
            plan.step_date(EPOCH, step, ctx.program) - EPOCH,
            plan.skips_when_late(step.type),
        )
        for step in plan.journey_steps(ctx.program)
    ]
    instant = functools.lru_cache(maxsize=4096)(plan.send_instant)
    hour = ctx.engine.send_hour
    max_retries = ctx.program.schedule.max_retries
    rows: list[dict[str, Any]] = []
    for client in clients:
        tz = client_zone(client)
        held = client.paused_at is not None
        base = client.start_date + timedelta(days=client.held_days)
        for key, type_, month, template, offset, time_bound in steps:
            if (client.id, key) in have:
                continue
            at = instant(base + offset, tz, hour)
            late = time_bound and at < now
            rows.append(
                {
                    "client_id": client.id,
                    "type": type_,
                    "month": month,
                    "template": template,
                    "key": key,
                    "source": "PLAN",
                    "status": "SKIPPED" if late else "SCHEDULED",
                    "version": 1,
                    "trigger_at": at,
                    "retry_count": 0,
                    "max_retries": max_retries,
                    "payload": {},
                    "detail": LATE if late else "",
                    "dispatched_at": now if not late and not held and at <= soon else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not rows:
        return 0
    # A plain executemany (no RETURNING) is the fast path on every driver; the ids are read
    # back only for the few rows that need them (skipped now, or dispatched now).
    bulk_insert(ctx, Automation.__table__, rows)
    wanted = [r for r in rows if r["status"] == AutomationStatus.SKIPPED or r["dispatched_at"]]
    ids: dict[tuple[int, str], int] = {}
    clients_wanted = sorted({r["client_id"] for r in wanted})
    for i in range(0, len(clients_wanted), 1000):
        found = ctx.session.execute(
            select(Automation.client_id, Automation.key, Automation.id).where(
                Automation.client_id.in_(clients_wanted[i : i + 1000]),
                Automation.source == Source.PLAN,
                or_(
                    Automation.status == AutomationStatus.SKIPPED,
                    Automation.dispatched_at.is_not(None),
                ),
            )
        )
        ids |= {(client_id, key): automation_id for client_id, key, automation_id in found.all()}
    logs = []
    for row in wanted:
        automation_id = ids[row["client_id"], row["key"]]
        if row["status"] == AutomationStatus.SKIPPED:
            logs.append(
                {
                    "at": now,
                    "client_id": row["client_id"],
                    "automation_id": automation_id,
                    "type": row["type"],
                    "month": row["month"],
                    "template": row["template"],
                    "status": LogStatus.SKIPPED.value,
                    "attempt": 1,
                    "detail": LATE,
                }
            )
        elif row["dispatched_at"] is not None:
            ctx.dispatch_after_commit(automation_id, 1, row["trigger_at"], lane(row["type"]))
    if logs:
        bulk_insert(ctx, AutomationLog.__table__, logs)
    return len(rows)


LATE = "its moment had passed when it was planned"
EPOCH = date(2000, 1, 1)


def bulk_insert(ctx: Context, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL (an order of magnitude faster than any INSERT),
    one executemany elsewhere."""
    connection = ctx.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        # psycopg formats each value in C; JSON goes as its text, which COPY parses.
        json_columns = [c for c in columns if isinstance(rows[0][c], dict | list)]
        for row in rows:
            if json_columns:
                row = row | {c: json.dumps(row[c]) for c in json_columns}
            copy.write_row([row[c] for c in columns])


# -- events ------------------------------------------------------------------------------------


# Dates the engine plans with: a journey (8 months and any holds) must stay inside the calendar.
YEARS = (1900, 2999)


def check_date(value: object, field: str) -> date:
    if not isinstance(value, date):
        raise Invalid(f"{field}: a date (YYYY-MM-DD) is required", field)
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise Invalid(f"{field}: {value} is outside the years {YEARS[0]}-{YEARS[1]}", field)
    return value


def check_month(ctx: Context, month: int) -> int:
    if not isinstance(month, int) or not 1 <= month <= ctx.program.length:
        raise Invalid(f"month: must be 1-{ctx.program.length}, not {month!r}", "month")
    return month


def require_deliverable(ctx: Context, client: Client, month: int) -> Deliverable:
    deliverable = latest_deliverable(ctx, client, check_month(ctx, month))
    if deliverable is None:
        raise NotFound(f"M{month} of {client.name} has no deliverable yet", "month")
    return deliverable


def approve(ctx: Context, client: Client, month: int) -> Deliverable:
    """Deliver the month: the client hears now, and celebrates tomorrow at the send hour."""
    deliverable = require_deliverable(ctx, client, month)
    if deliverable.status not in (DeliverableStatus.PENDING_REVIEW, DeliverableStatus.REJECTED):
        raise Conflict(
            f"M{month} is {deliverable.status}; only a deliverable in review can be approved"
        )
    now = ctx.now()
    deliverable.status = DeliverableStatus.DELIVERED
    deliverable.reviewed_at = deliverable.delivered_at = now
    notify(
        ctx,
        client,
        Template.DELIVERABLE_READY,
        f"ready:{month}:v{deliverable.version}",
        month=month,
    )
    day = local_today(ctx, client) + timedelta(days=ctx.program.schedule.celebration_days_after)
    template = rules.celebration_for(month, ctx.program)
    notify(
        ctx, client, template, f"celebrate:{month}", month=month, at=at_send_hour(ctx, client, day)
    )
    refresh_progress(ctx, client)
    return deliverable


def reject(ctx: Context, client: Client, month: int, notes: str = "") -> Deliverable:
    """Send the month back; admins are reminded in a few days if it is still rejected."""
    deliverable = require_deliverable(ctx, client, month)
    if deliverable.status != DeliverableStatus.PENDING_REVIEW:
        raise Conflict(
            f"M{month} is {deliverable.status}; only a deliverable in review can be rejected"
        )
    deliverable.status = DeliverableStatus.REJECTED
    deliverable.reviewer_notes = str(notes or "").strip()
    deliverable.reviewed_at = ctx.now()
    day = local_today(ctx, client) + timedelta(
        days=ctx.program.schedule.revision_reminder_days_after
    )
    notify(
        ctx,
        client,
        Template.REVISION_REMINDER,
        f"revision:{month}:v{deliverable.version}",
        month=month,
        at=at_send_hour(ctx, client, day),
    )
    return deliverable


def open_deliverable(ctx: Context, client: Client, month: int) -> Deliverable:
    """The client opened the month: recorded once; its overdue reminder and escalation stop."""
    deliverable = require_deliverable(ctx, client, month)
    if deliverable.status != DeliverableStatus.DELIVERED:
        raise Conflict(
            f"M{month} is {deliverable.status}, not delivered: the client cannot open it"
        )
    if deliverable.opened_at is None:
        deliverable.opened_at = ctx.now()
    for automation in pending(ctx, client, month=month):
        if automation.template in (Template.REMINDER_OVERDUE, Template.ADMIN_ESCALATION):
            finish(ctx, automation, AutomationStatus.CANCELLED, f"the client opened M{month}")
    return deliverable


def approve_business_plan(ctx: Context, client: Client) -> Automation | None:
    """The business plan is approved: month 1 is generated at once if it has not been."""
    client.business_plan_approved_at = client.business_plan_approved_at or ctx.now()
    client.updated_at = ctx.now()
    if latest_deliverable(ctx, client, 1) is not None:
        return None
    running = ctx.session.scalar(
        select(Automation).where(
            Automation.client_id == client.id,
            Automation.type == AutomationType.GENERATE_DELIVERABLE,
            Automation.month == 1,
            Automation.status == AutomationStatus.RUNNING,
        )
    )
    if running is not None:
        return running
    waiting = pending(ctx, client, type=AutomationType.GENERATE_DELIVERABLE, month=1)
    if waiting:
        if waiting[0].trigger_at > ctx.now():
            move(ctx, waiting[0], ctx.now(), planned=False)
        return waiting[0]
    return schedule(
        ctx,
        client,
        AutomationType.GENERATE_DELIVERABLE,
        ctx.now(),
        source=Source.EVENT,
        month=1,
        key="business-plan:1",
    )


def generate_by_hand(ctx: Context, client: Client, month: int, notes: str = "") -> Automation:
    """An admin generates the month now: its scheduled generation is cancelled. A month that
    already has a deliverable is never generated twice (a rejected one gets a new version)."""
    check_month(ctx, month)
    refuse_on_hold(client)
    latest = latest_deliverable(ctx, client, month)
    if latest is not None and latest.status != DeliverableStatus.REJECTED:
        raise Conflict(
            f"M{month} already has a deliverable ({latest.status}); it is never generated twice"
        )
    running = ctx.session.scalar(
        select(func.count()).where(
            Automation.client_id == client.id,
            Automation.type == AutomationType.GENERATE_DELIVERABLE,
            Automation.month == month,
            Automation.status == AutomationStatus.RUNNING,
        )
    )
    if running:
        raise Conflict(f"M{month} is being generated right now")
    version = latest.version + 1 if latest else 1
    for automation in pending(ctx, client, type=AutomationType.GENERATE_DELIVERABLE, month=month):
        if automation.key != f"manual:{month}:v{version}":
            finish(ctx, automation, AutomationStatus.CANCELLED, f"M{month} generated by hand")
    return schedule(
        ctx,
        client,
        AutomationType.GENERATE_DELIVERABLE,
        ctx.now(),
        source=Source.MANUAL,
        month=month,
        key=f"manual:{month}:v{version}",
        payload={"manual": True, "version": version, "notes": str(notes or "").strip()},
    )


# -- admin controls ----------------------------------------------------------------------------


def refuse_on_hold(client: Client) -> None:
    if client.paused_at is not None:
        raise Conflict(f"{client.name} is on hold: resume the journey first")


def pause(ctx: Context, client: Client, *, until: date | None = None, reason: str = "") -> Hold:
    """Put the client on hold: nothing of the journey fires until they resume."""
    if client.completed_at is not None:
        raise Conflict(f"{client.name} has completed the program; there is nothing to pause")
    if client.paused_at is not None:
        raise Conflict(f"{client.name} is already on hold since {client.paused_at:%Y-%m-%d}")
    today = local_today(ctx, client)
    if until is not None:
        check_date(until, "until")
    if until is not None and until <= today:
        raise Invalid(f"until: must be after today ({today}) in the client's time zone", "until")
    now = ctx.now()
    hold = Hold(
        client_id=client.id,
        reason=str(reason or "").strip(),
        started_at=now,
        start_date=today,
        until=until,
    )
    ctx.session.add(hold)
    client.paused_at = now
    client.updated_at = now
    ctx.session.flush()
    # Every message already sent for the client's pending automations goes stale.
    ctx.session.execute(
        update(Automation)
        .where(
            Automation.client_id == client.id,
            Automation.status == AutomationStatus.SCHEDULED,
        )
        .values(version=Automation.version + 1, dispatched_at=None, updated_at=now),
        execution_options={"synchronize_session": "fetch"},
    )
    notify(ctx, client, Template.PAUSE_CONFIRMATION, f"hold:{hold.id}:confirm", hold=hold)
    if until is not None:
        schedule(
            ctx,
            client,
            AutomationType.UPDATE_STATUS,
            at_send_hour(ctx, client, until),
            source=Source.EVENT,
            key=f"hold:{hold.id}:end",
            payload={"status": "ACTIVE"},
            hold=hold,
        )
        remind = until - timedelta(days=ctx.program.schedule.resume_reminder_days_before)
        schedule(
            ctx,
            client,
            AutomationType.SEND_REMINDER,
            at_send_hour(ctx, client, remind),
            source=Source.EVENT,
            template=Template.RESUME_REMINDER,
            key=f"hold:{hold.id}:remind",
            hold=hold,
            planned=True,
        )
    return hold


def resume(ctx: Context, client: Client, *, ended_by: str = "admin") -> Hold:
    """End the hold: every pending automation moves later by the whole local days paused."""
    hold = open_hold(ctx, client)
    if client.paused_at is None or hold is None:
        raise Conflict(f"{client.name} is not on hold")
    today = local_today(ctx, client)
    days = plan.days_between(hold.start_date, today)
    now = ctx.now()
    hold.ended_at, hold.end_date, hold.days, hold.ended_by = now, today, days, ended_by
    client.paused_at = None
    client.held_days += days
    client.updated_at = now
    tz = client_zone(client)
    for automation in pending(ctx, client):
        if automation.hold_id == hold.id:
            finish(ctx, automation, AutomationStatus.CANCELLED, "the hold ended")
        else:
            move(ctx, automation, plan.shift_local(automation.trigger_at, tz, days))
    notify(ctx, client, Template.WELCOME_BACK, f"hold:{hold.id}:welcome", payload={"days": days})
    return hold


def adjust(ctx: Context, client: Client, start_date: date) -> int:
    """Move the program start: every pending step of the plan is recomputed from the new date
    (holds already taken still count). Returns how many automations moved."""
    check_date(start_date, "start_date")
    if client.completed_at is not None:
        raise Conflict(f"{client.name} has completed the program; the start date is history")
    if start_date == client.start_date:
        return 0
    client.start_date = start_date
    client.updated_at = ctx.now()
    steps = plan.step_by_key(ctx.program)
    moved = 0
    plan_rows = ctx.session.scalars(
        select(Automation).where(
            Automation.client_id == client.id,
            Automation.source == Source.PLAN,
            Automation.status.in_([AutomationStatus.SCHEDULED, AutomationStatus.SKIPPED]),
        )
    ).all()
    for automation in plan_rows:
        step = steps.get(automation.key or "")
        if step is None:
            continue
        day = plan.step_date(start_date, step, ctx.program, client.held_days)
        at = at_send_hour(ctx, client, day)
        if automation.status == AutomationStatus.SCHEDULED:
            move(ctx, automation, at)
            moved += 1
        elif automation.executed_at is None and at >= ctx.now():
            # Skipped only because its moment had passed: the new start brings it back.
            automation.status = AutomationStatus.SCHEDULED
            automation.detail = ""
            move(ctx, automation, at)
            moved += 1
    return moved


def skip_month(ctx: Context, client: Client, month: int) -> Deliverable:
    """The month counts as done, without celebration; its automations are cancelled."""
    check_month(ctx, month)
    latest = latest_deliverable(ctx, client, month)
    if latest is not None and latest.status in rules.DONE:
        raise Conflict(f"M{month} is already {latest.status}")
    for automation in pending(ctx, client, month=month):
        if automation.hold_id is None:
            finish(ctx, automation, AutomationStatus.CANCELLED, f"M{month} skipped")
    now = ctx.now()
    if latest is None:
        latest = Deliverable(
            client_id=client.id,
            month=month,
            version=1,
            title=ctx.program.month(month).title,
            content="",
            created_at=now,
        )
        ctx.session.add(latest)
    latest.status = DeliverableStatus.SKIPPED
    latest.reviewed_at = now
    ctx.session.flush()
    refresh_progress(ctx, client)
    return latest


def cancel(ctx: Context, automation: Automation, reason: str = "cancelled by an admin") -> None:
    if automation.status != AutomationStatus.SCHEDULED:
        raise Conflict(
            f"automation {automation.id} is {automation.status}; "
            "only a scheduled one can be cancelled"
        )
    finish(ctx, automation, AutomationStatus.CANCELLED, reason)


def trigger_now(ctx: Context, automation: Automation) -> None:
    """Run a scheduled automation now, or run a failed one again (with fresh retries)."""
    if automation.hold_id is None:
        refuse_on_hold(automation.client)
    if automation.status == AutomationStatus.FAILED:
        automation.status = AutomationStatus.SCHEDULED
        automation.retry_count = 0
        automation.error = None
        automation.detail = "run again by an admin"
    elif automation.status != AutomationStatus.SCHEDULED:
        raise Conflict(
            f"automation {automation.id} is {automation.status}; "
            "only a scheduled or failed one can be run now"
        )
    automation.payload = {**(automation.payload or {}), "urgent": True}
    move(ctx, automation, ctx.now(), planned=False)


def schedule_by_hand(
    ctx: Context,
    client: Client,
    type_: str,
    *,
    at: datetime | None = None,
    month: int | None = None,
    template: str | None = None,
) -> Automation:
    """An admin adds one automation to the client's schedule."""
    try:
        kind = AutomationType(type_)
    except ValueError:
        names = ", ".join(t.value for t in AutomationType if t is not AutomationType.UPDATE_STATUS)
        raise Invalid(f"type: unknown automation type {type_!r} (one of {names})", "type") from None
    if kind is AutomationType.UPDATE_STATUS:
        raise Invalid("type: holds end through pause/resume, not by hand", "type")
    if month is not None:
        check_month(ctx, month)
    chosen: Template | None = None
    if kind is AutomationType.GENERATE_DELIVERABLE:
        if month is None:
            raise Invalid("month: a generation needs a month", "month")
        if template:
            raise Invalid("template: a generation sends no template", "template")
    else:
        try:
            chosen = Template(template or "")
        except ValueError:
            raise Invalid(f"template: unknown template {template!r}", "template") from None
        if TEMPLATE_TYPE[chosen] is not kind:
            raise Invalid(
                f"template: {chosen} is sent by {TEMPLATE_TYPE[chosen]}, not {kind}", "template"
            )
        if chosen in (
            Template.WEEKLY_DIGEST,
            Template.AUTOMATION_FAILURE,
            Template.RESUME_REMINDER,
        ):
            raise Invalid(f"template: {chosen} is sent by the engine itself", "template")
        if month is None and chosen not in (Template.PAUSE_CONFIRMATION, Template.WELCOME_BACK):
            raise Invalid(f"month: {chosen} is about a month; give one", "month")
    when = at or ctx.now()
    if when < ctx.now() - timedelta(minutes=1):
        raise Invalid("at: must not be in the past", "at")
    return schedule(ctx, client, kind, when, source=Source.MANUAL, month=month, template=chosen)


# -- client details and the start of the journey ------------------------------------------------


def update_client(
    ctx: Context,
    client: Client,
    *,
    name: str | None = None,
    email: str | None = None,
    onboarding: dict[str, Any] | None = None,
    business_plan: str | None = None,
    reminders_enabled: bool | None = None,
    celebrations_enabled: bool | None = None,
) -> Client:
    """Change a client's details (what is None stays). The schedule does not depend on them:
    the start date changes through `adjust`, the time zone not at all."""
    if name is not None:
        client.name = clean_name(name)
    if email is not None:
        address = clean_email(email)
        if address != client.email:
            other = ctx.session.scalar(select(Client.id).where(Client.email == address))
            if other is not None:
                raise Conflict(
                    f"a client with email {address} is already enrolled (id {other})", "email"
                )
            client.email = address
    if onboarding is not None:
        client.onboarding = dict(onboarding)
    if business_plan is not None:
        client.business_plan = str(business_plan)
    if reminders_enabled is not None:
        client.reminders_enabled = bool(reminders_enabled)
    if celebrations_enabled is not None:
        client.celebrations_enabled = bool(celebrations_enabled)
    client.updated_at = ctx.now()
    return client


def start_journey(ctx: Context, client: Client, start_date: date) -> int:
    """Start the journey from `start_date`: idempotent. A journey not yet under way (nothing
    generated or sent) moves to the new date; one under way refuses (adjust it instead). Any
    step of the plan that is missing is planned. Returns how many automations were planned or
    moved."""
    if not isinstance(start_date, date):
        raise Invalid("start_date: a date (YYYY-MM-DD) is required", "start_date")
    if client.completed_at is not None:
        raise Conflict(f"{client.name} has completed the program")
    changed = 0
    if start_date != client.start_date:
        under_way = ctx.session.scalar(
            select(func.count()).where(
                Automation.client_id == client.id,
                Automation.status.in_([AutomationStatus.COMPLETED, AutomationStatus.RUNNING]),
            )
        ) or ctx.session.scalar(select(func.count()).where(Deliverable.client_id == client.id))
        if under_way:
            raise Conflict(
                f"the journey of {client.name} started on {client.start_date} and is under way; "
                "adjust the start date instead",
                "start_date",
            )
        changed += adjust(ctx, client, start_date)
    return changed + plan_journey(ctx, [client])
