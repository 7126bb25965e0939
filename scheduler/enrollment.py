"""Enrollment: clients enter the program and their whole journey is planned in one bulk
insert; their details change; a journey not yet under way can start again from another date."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from scheduler import audit, plan
from scheduler.controls import adjust
from scheduler.engine import Context
from scheduler.errors import Conflict, Invalid, JourneyError
from scheduler.inputs import check_date, clean_email, clean_name, clean_zone
from scheduler.lookups import client_zone
from scheduler.models import Automation, AutomationLog, Client, Deliverable
from scheduler.schedule import bulk_insert, insert_numbered
from scheduler.vocab import (
    AutomationStatus,
    LogStatus,
    Source,
    lane,
)


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
    version = ctx.current_version()
    rows = [
        {
            "name": p.name,
            "email": p.email,
            "timezone": p.timezone,
            "start_date": p.start_date,
            "current_month": 1,
            "held_days": 0,
            "program_version": version,
            "onboarding": p.onboarding,
            "business_plan": p.business_plan,
            "created_at": now,
            "updated_at": now,
        }
        for p in cleaned
    ]
    ids = insert_numbered(ctx, Client.__table__, rows)
    # Read back as the engine's objects: the ids come from one block of the sequence, so a
    # range finds them (ids another enrollment took meanwhile are left out).
    wanted = set(ids)
    loaded: dict[int, Client] = {}
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        found = select(Client).where(Client.id >= min(chunk), Client.id <= max(chunk))
        loaded |= {c.id: c for c in ctx.session.scalars(found) if c.id in wanted}
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
    # The steps of each program version, as plain values, with their distance from the start
    # (the hot loop of a bulk enrollment: 32 rows a client).
    versions: dict[int, tuple[list[tuple[Any, ...]], int, int]] = {}
    instant = functools.lru_cache(maxsize=4096)(plan.send_instant)
    dispatches = ctx.engine.dispatches
    wanted: list[dict[str, Any]] = []  # rows whose ids are needed: skipped now, or sent now

    for client in clients:  # read before the copy begins: the connection is busy during it
        number = client.program_version or 1
        if number not in versions:
            program = ctx.program_of(client)
            versions[number] = (
                [
                    (
                        step.key,
                        step.type.value,
                        step.month,
                        step.template.value if step.template else None,
                        offset,
                        plan.skips_when_late(step.type),
                    )
                    for step, offset in plan.step_offsets(program)
                ],
                ctx.send_hour_of(client),
                program.schedule.max_retries,
            )

    def rows() -> Iterator[dict[str, Any]]:
        for client in clients:
            number = client.program_version or 1
            steps, hour, max_retries = versions[number]
            tz = client_zone(client)
            held = client.paused_at is not None
            base = client.start_date + timedelta(days=client.held_days)
            for key, type_, month, template, offset, time_bound in steps:
                if (client.id, key) in have:
                    continue
                at = instant(base + offset, tz, hour)
                late = time_bound and at < now
                row = {
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
                    "program_version": number,
                    "dispatched_at": (
                        now if dispatches and not late and not held and at <= soon else None
                    ),
                    "created_at": now,
                    "updated_at": now,
                }
                if late or row["dispatched_at"] is not None:
                    wanted.append(row)
                yield row

    # Made as they are copied in (the database stores rows while the next are made); no
    # RETURNING: the ids are read back only for the few rows that need them.
    planned = bulk_insert(ctx, Automation.__table__, rows())
    if not planned:
        return 0
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
                    "program_version": row["program_version"],
                }
            )
        elif row["dispatched_at"] is not None:
            ctx.dispatch_after_commit(automation_id, 1, row["trigger_at"], lane(row["type"]))
    if logs:
        bulk_insert(ctx, AutomationLog.__table__, logs)
    return planned


LATE = "its moment had passed when it was planned"


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
    the start date changes through `adjust`, the time zone not at all. The change is recorded
    with who made it (`audit`)."""
    before = details(client)
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
    audit.record(ctx, client, "client details", before, details(client))
    return client


def details(client: Client) -> dict[str, Any]:
    """A client's details as the history records them (long texts by their length)."""
    return {
        "name": client.name,
        "email": client.email,
        "onboarding": dict(client.onboarding or {}),
        "business_plan": (
            f"{len(client.business_plan or '')} characters, "
            f"#{hashlib.sha256((client.business_plan or '').encode()).hexdigest()[:8]}"
        ),
        "reminders_enabled": client.reminders_enabled,
        "celebrations_enabled": client.celebrations_enabled,
    }


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
