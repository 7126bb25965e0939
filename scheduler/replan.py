"""What a program version does to the clients in flight: the impact (which pending automations
move, appear or disappear, old → new instant) and carrying it out. The new instants come from the
planning code enrollment uses (`plan.step_offsets`, `plan.send_instant`), so the preview is what
publishing does, row for row."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, bindparam, select, type_coerce, update

from scheduler import plan
from scheduler.engine import Context
from scheduler.enrollment import plan_journey
from scheduler.models import Automation, AutomationLog, Client
from scheduler.program import Program
from scheduler.schedule import bulk_insert, lane_of
from scheduler.vocab import AutomationStatus, LogStatus, Source, automation_name

NEW_ONLY = "new"
IN_FLIGHT = "all"
APPLIES = (NEW_ONLY, IN_FLIGHT)


class Change(NamedTuple):
    """One pending automation of a client: it `moves`, `appears` or `disappears`."""

    kind: str
    key: str
    type: str
    month: int | None
    template: str | None
    old_at: datetime | None
    new_at: datetime | None
    # Its new moment has passed: a reminder or escalation is then skipped, never sent late.
    late: bool = False
    automation_id: int | None = None
    version: int | None = None

    @property
    def name(self) -> str:
        return automation_name(self.type, self.template, self.month)


@dataclass
class ClientImpact:
    client_id: int
    name: str
    timezone: str
    from_version: int
    changes: list[Change] = field(default_factory=list)


@dataclass
class Impact:
    """What publishing a program would do: nothing to anyone in flight (`applies_to` "new"), or,
    for "all", the changes of each client in flight that has any."""

    applies_to: str
    in_flight: int
    clients: list[ClientImpact]
    # Every client in flight (the ones the version goes to, changes or not).
    ids: list[int] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for c in self.clients for ch in c.changes if ch.kind == kind)

    @property
    def late(self) -> int:
        return sum(1 for c in self.clients for ch in c.changes if ch.late)

    @property
    def changes(self) -> int:
        return sum(len(c.changes) for c in self.clients)

    def summary(self) -> str:
        if self.applies_to == NEW_ONLY:
            return (
                f"applies to new enrollments only: the {self.in_flight} client"
                f"{'s' if self.in_flight != 1 else ''} in flight keep their version"
            )
        if not self.clients:
            return f"also to clients in flight: nothing moves for the {self.in_flight} in flight"
        parts = []
        for kind, verb in (("moves", "move"), ("appears", "appear"), ("disappears", "disappear")):
            n = self.count(kind)
            if n:
                parts.append(f"{n} automation{'s' if n != 1 else ''} {verb if n != 1 else kind}")
        text = f"{', '.join(parts)} for {len(self.clients)} client"
        text += "s" if len(self.clients) != 1 else ""
        if self.late:
            text += (
                f"; {self.late} reminder{'s' if self.late != 1 else ''} would now fall in the "
                "past and be skipped"
            )
        return text

    def as_dict(self, limit: int | None = None, offset: int = 0) -> dict[str, Any]:
        shown = self.clients[offset:] if limit is None else self.clients[offset : offset + limit]
        return {
            "applies_to": self.applies_to,
            "summary": self.summary(),
            "in_flight": self.in_flight,
            "clients_affected": len(self.clients),
            "moves": self.count("moves"),
            "appears": self.count("appears"),
            "disappears": self.count("disappears"),
            "late": self.late,
            "clients": [
                {
                    "client_id": c.client_id,
                    "name": c.name,
                    "timezone": c.timezone,
                    "from_version": c.from_version,
                    "changes": [
                        {
                            "kind": ch.kind,
                            "automation_id": ch.automation_id,
                            "name": ch.name,
                            "type": ch.type,
                            "template": ch.template,
                            "month": ch.month,
                            "old_at": _local(ch.old_at, c.timezone),
                            "new_at": _local(ch.new_at, c.timezone),
                            "late": ch.late,
                        }
                        for ch in c.changes
                    ],
                }
                for c in shown
            ],
        }


def _local(at: datetime | None, zone: str) -> str | None:
    return at.astimezone(ZoneInfo(zone)).isoformat() if at else None


def impact(ctx: Context, new: Program, applies_to: str, number: int | None = None) -> Impact:
    """What making `new` the program would do to the clients in flight (not completed)."""
    in_flight = select(Client.id).where(Client.completed_at.is_(None))
    if applies_to == NEW_ONLY:
        count = len(ctx.session.scalars(in_flight).all())
        return Impact(applies_to, count, [])
    clients = ctx.session.execute(
        select(
            Client.id,
            Client.name,
            Client.timezone,
            Client.start_date,
            Client.held_days,
            Client.program_version,
        )
        .where(Client.completed_at.is_(None))
        .order_by(Client.id)
    ).all()
    now = ctx.now()
    default_hour = ctx.engine.send_hour
    # key -> (step, distance from the start, time-bound)
    new_steps = {
        step.key: (step, offset, plan.skips_when_late(step.type))
        for step, offset in plan.step_offsets(new)
    }
    new_hour = default_hour if new.schedule.send_hour is None else new.schedule.send_hour
    # For each version clients run: its offsets, and the keys whose instant the new version
    # changes (any step, if the send hour changes).
    olds: dict[int, tuple[dict[str, timedelta], int, set[str]]] = {}
    instant = functools.lru_cache(maxsize=65536)(plan.send_instant)
    zones = functools.lru_cache(maxsize=1024)(ZoneInfo)
    for version in sorted({c.program_version or 1 for c in clients}):
        old = ctx.engine.version(ctx.session, version).program
        hour = default_hour if old.schedule.send_hour is None else old.schedule.send_hour
        offsets = {s.key: off for s, off in plan.step_offsets(old)}
        differ = {
            k for k, (_, off, _) in new_steps.items() if hour != new_hour or offsets.get(k) != off
        }
        olds[version] = (offsets, hour, differ)
    # The pending steps whose instant the new version changes, or which it drops, read in one
    # scan (no join: the ones of completed clients are few, and are passed over below).
    relevant = sorted(
        {k for offsets, _, differ in olds.values() for k in differ | (offsets.keys() - new_steps)}
    )
    connection = ctx.session.connection()
    # PostgreSQL's driver answers aware instants itself: no per-row conversion (a fifth of the
    # time with every step moving); SQLite's naive ones go through the model's type.
    trigger_at: Any = Automation.trigger_at
    if connection.dialect.name == "postgresql":
        trigger_at = type_coerce(Automation.trigger_at, DateTime(timezone=True)).label("trigger_at")
    rows = (
        connection.execute(
            select(
                Automation.id,
                Automation.client_id,
                Automation.key,
                Automation.type,
                Automation.month,
                Automation.template,
                trigger_at,
                Automation.version,
            ).where(
                Automation.source == Source.PLAN,
                Automation.status == AutomationStatus.SCHEDULED,
                Automation.key.in_(relevant),
            )
        ).all()
        if relevant
        else []
    )
    by_client: dict[int, list[Any]] = {}
    for row in rows:
        by_client.setdefault(row.client_id, []).append(row)
    # Steps the new version adds may exist already, cancelled when an earlier version dropped
    # them (a roll back brings them back).
    extra = sorted({k for steps, _, _ in olds.values() for k in new_steps if k not in steps})
    dropped: dict[tuple[int, str], Any] = {}
    if extra:
        for row in ctx.session.execute(
            select(
                Automation.id,
                Automation.client_id,
                Automation.key,
                Automation.status,
                Automation.version,
                Automation.detail,
            ).where(Automation.source == Source.PLAN, Automation.key.in_(extra))
        ):
            dropped[row.client_id, row.key] = row
    out: list[ClientImpact] = []
    for c in clients:
        version = c.program_version or 1
        old_steps, old_hour, differ = olds[version]
        tz = zones(c.timezone)
        base: date = c.start_date + timedelta(days=c.held_days)
        changes: list[Change] = []
        for row in by_client.get(c.id, ()):
            key = row.key
            if key not in differ:
                if key not in new_steps:
                    changes.append(
                        Change(
                            "disappears",
                            key,
                            row.type,
                            row.month,
                            row.template,
                            row.trigger_at,
                            None,
                            False,
                            row.id,
                            row.version,
                        )
                    )
                continue  # the plan did not change for it (wherever else it went)
            _, offset, bound = new_steps[key]
            at = instant(base + offset, tz, new_hour)
            # The same offset at the same hour is not in `differ`; another offset at the same
            # hour is another instant; only both changed can land on the same one.
            old_offset = old_steps.get(key)
            if at == row.trigger_at or (
                old_hour != new_hour
                and old_offset is not None
                and old_offset != offset
                and at == instant(base + old_offset, tz, old_hour)
            ):
                continue
            changes.append(
                Change(
                    "moves",
                    key,
                    row.type,
                    row.month,
                    row.template,
                    row.trigger_at,
                    at,
                    bound and at < now,
                    row.id,
                    row.version,
                )
            )
        for key, (step, offset, bound) in new_steps.items():
            if key in old_steps:
                continue
            existing = dropped.get((c.id, key))
            if existing is not None and not (
                existing.status == AutomationStatus.CANCELLED
                and existing.detail.startswith(DROPPED)
            ):
                continue  # it ran (or an admin ended it) under an earlier version
            at = instant(base + offset, tz, new_hour)
            changes.append(
                Change(
                    "appears",
                    key,
                    step.type.value,
                    step.month,
                    step.template.value if step.template else None,
                    None,
                    at,
                    bound and at < now,
                    existing.id if existing is not None else None,
                    existing.version if existing is not None else None,
                )
            )
        if changes:
            changes.sort(key=lambda ch: (ch.old_at or ch.new_at or now, ch.key))
            out.append(ClientImpact(c.id, c.name, c.timezone, version, changes))
    return Impact(applies_to, len(clients), out, [c.id for c in clients])


DROPPED = "not in program version"
REPLANNED = "its moment had passed when a new program version replanned it"


def _was(change: Change) -> str:
    revived = change.kind == "appears"
    return (AutomationStatus.CANCELLED if revived else AutomationStatus.SCHEDULED).value


def carry_out(ctx: Context, done: Impact, number: int) -> int:
    """Make `done` (an impact computed in this transaction) happen, and put every client in
    flight on version `number`. Stale broker messages of what moves do nothing: each moved row
    gets a new version. Returns how many automations changed."""
    if done.applies_to == NEW_ONLY:
        return 0
    now = ctx.now()
    soon = now + ctx.engine.horizon
    table = Automation.__table__
    moves: list[dict[str, Any]] = []
    ends: list[dict[str, Any]] = []
    paused = set(
        ctx.session.scalars(
            select(Client.id).where(Client.completed_at.is_(None), Client.paused_at.is_not(None))
        )
    )
    appearing: list[int] = []
    for client in done.clients:
        for ch in client.changes:
            if ch.kind == "appears" and ch.automation_id is None:
                appearing.append(client.client_id)
                continue
            if ch.kind in ("moves", "appears") and not ch.late:
                due = ch.new_at is not None and ch.new_at <= soon
                send = due and ctx.engine.dispatches and client.client_id not in paused
                moves.append(
                    {
                        "b_id": ch.automation_id,
                        "b_version": ch.version,
                        "b_at": ch.new_at,
                        "b_next": (ch.version or 0) + 1,
                        "b_sent": now if send else None,
                        "b_was": _was(ch),
                        "b_client": client.client_id,
                        "b_type": ch.type,
                    }
                )
            else:
                status = (
                    AutomationStatus.SKIPPED if ch.kind == "moves" else AutomationStatus.CANCELLED
                )
                detail = REPLANNED if ch.kind == "moves" else f"not in program version {number}"
                ends.append(
                    {
                        "b_id": ch.automation_id,
                        "b_version": ch.version,
                        "b_next": (ch.version or 0) + 1,
                        "b_status": status.value,
                        "b_detail": detail,
                        "b_was": _was(ch),
                        "b_client": client.client_id,
                        "b_change": ch,
                    }
                )
    changed = 0
    # A moved row must still be pending at the version read; a revived one, still cancelled.
    where = (
        table.c.id == bindparam("b_id"),
        table.c.version == bindparam("b_version"),
        table.c.status == bindparam("b_was"),
    )
    if moves:
        result = ctx.session.connection().execute(
            update(table)
            .where(*where)
            .values(
                status=AutomationStatus.SCHEDULED.value,
                detail="",
                trigger_at=bindparam("b_at"),
                version=bindparam("b_next"),
                dispatched_at=bindparam("b_sent"),
                program_version=number,
                updated_at=now,
            ),
            [{k: v for k, v in m.items() if k not in ("b_client", "b_type")} for m in moves],
        )
        changed += max(result.rowcount, 0)
        for m in moves:
            if m["b_sent"] is not None:
                lane = lane_of(Automation(type=m["b_type"], source=Source.PLAN, payload={}))
                ctx.dispatch_after_commit(m["b_id"], m["b_next"], m["b_at"], lane)
    if ends:
        result = ctx.session.connection().execute(
            update(table)
            .where(*where)
            .values(
                status=bindparam("b_status"),
                version=bindparam("b_next"),
                detail=bindparam("b_detail"),
                dispatched_at=None,
                lease_until=None,
                program_version=number,
                updated_at=now,
            ),
            [{k: v for k, v in e.items() if k not in ("b_client", "b_change")} for e in ends],
        )
        changed += max(result.rowcount, 0)
        bulk_insert(
            ctx,
            AutomationLog.__table__,
            [
                {
                    "at": now,
                    "client_id": e["b_client"],
                    "automation_id": e["b_id"],
                    "type": e["b_change"].type,
                    "month": e["b_change"].month,
                    "template": e["b_change"].template,
                    "status": LogStatus(e["b_status"]).value,
                    "attempt": 1,
                    "detail": e["b_detail"],
                    "program_version": number,
                }
                for e in ends
            ],
        )
    # The clients in flight run the new version (by id lists: each chunk one index scan, whatever
    # the table statistics say). What stays where it was keeps the version that planned it.
    for i in range(0, len(done.ids), 1000):
        chunk = done.ids[i : i + 1000]
        ctx.session.execute(
            update(Client)
            .where(Client.id.in_(chunk))
            .values(program_version=number)
            .execution_options(synchronize_session=False)
        )
    ctx.session.expire_all()
    if appearing:
        ids = sorted(set(appearing))
        loaded: list[Client] = []
        for i in range(0, len(ids), 1000):
            loaded += ctx.session.scalars(select(Client).where(Client.id.in_(ids[i : i + 1000])))
        changed += plan_journey(ctx, loaded)
    return changed
