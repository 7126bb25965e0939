"""The sweep: runs every minute (periodiq in production, a timer thread in embedded mode) and
is safe to run concurrently. It takes back automations whose worker died, and hands to the
transport what falls due within the horizon and has no message in flight, or whose message was
lost (still pending well after its moment)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from scheduler import digest, recovery
from scheduler.engine import Context
from scheduler.models import Automation, Client, Heartbeat
from scheduler.vocab import AutomationStatus, Source, lane

BATCH = 5000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    at: datetime
    reclaimed: int
    dispatched: int
    overdue: int


def sweep(ctx: Context, batch: int = BATCH) -> SweepReport:
    """Recover what was lost, hand the transport what falls due within the horizon, record the
    heartbeat; then the admins' weekly digests."""
    now = ctx.now()
    recovered = recovery.recover(ctx)
    dispatched = dispatch(ctx, now + ctx.engine.horizon, batch)
    report = SweepReport(now, recovered.taken_back, dispatched, overdue_count(ctx, now))
    beat(
        ctx,
        "sweep",
        {"dispatched": dispatched, "reclaimed": report.reclaimed, "overdue": report.overdue},
    )
    ctx.commit()
    try:  # admins' weekly digests, when their Monday morning comes
        digest.send_due(ctx)
    except Exception:
        log.exception("weekly digests failed; the next sweep tries again")
        ctx.rollback()
    return report


def dispatch(ctx: Context, until: datetime, batch: int = BATCH) -> int:
    """Hand the transport the automations due by `until` that have no message in flight, or
    whose message was lost (still pending well after its moment); commits. One compare-and-set
    for the batch: a row another sweeper has just dispatched no longer matches, so each
    automation is dispatched by one sweeper only."""
    now = ctx.now()
    stale = now - redispatch_delay(ctx)
    due = (
        waiting(Automation.id, until)
        .where(
            or_(
                Automation.dispatched_at.is_(None),
                and_(Automation.trigger_at <= stale, Automation.dispatched_at <= stale),
            ),
        )
        .order_by(Automation.trigger_at)
        .limit(batch)
    )
    ids = list(ctx.session.scalars(due))
    won = (
        ctx.session.execute(
            update(Automation)
            .where(
                Automation.id.in_(ids),
                Automation.status == AutomationStatus.SCHEDULED,
                or_(Automation.dispatched_at.is_(None), Automation.dispatched_at <= stale),
            )
            .values(dispatched_at=now)
            .returning(
                Automation.id,
                Automation.version,
                Automation.trigger_at,
                Automation.type,
                Automation.source,
                Automation.payload,
            )
            .execution_options(synchronize_session=False)
        ).all()
        if ids
        else []
    )
    for automation_id, version, trigger_at, type_, source, payload in won:
        urgent = source == Source.MANUAL or bool((payload or {}).get("urgent"))
        ctx.dispatch_after_commit(automation_id, version, trigger_at, lane(type_, urgent=urgent))
    ctx.commit()
    return len(won)


def waiting(column: Any, until: datetime) -> Select[Any]:
    """Pending automations due by `until` that may run: their client is not on hold, or they
    belong to the hold itself (its end and its reminder)."""
    return (
        select(column)
        .join(Client, Client.id == Automation.client_id)
        .where(
            Automation.status == AutomationStatus.SCHEDULED,
            Automation.trigger_at <= until,
            or_(Client.paused_at.is_(None), Automation.hold_id.is_not(None)),
        )
    )


def redispatch_delay(ctx: Context) -> timedelta:
    """How long a dispatched, overdue automation waits before it is sent again."""
    engine = ctx.engine
    try:
        busy = engine.dispatcher.waiting() > 0
    except Exception:  # the broker is unreachable: sending would fail anyway
        log.warning("could not read the broker's queue length", exc_info=True)
        busy = False
    return engine.redispatch_after * (engine.busy_factor if busy else 1)


def beat(ctx: Context, name: str, detail: dict[str, int]) -> None:
    """Record that `name` ran now (concurrent sweepers: the last write wins, which is right)."""
    now = ctx.now()
    updated = ctx.session.execute(
        update(Heartbeat).where(Heartbeat.name == name).values(at=now, detail=detail)
    ).rowcount
    if not updated:
        try:
            with ctx.session.begin_nested():
                ctx.session.add(Heartbeat(name=name, at=now, detail=detail))
        except IntegrityError:  # another sweeper wrote it first
            pass


def overdue_count(ctx: Context, now: datetime) -> int:
    return backlog(ctx, now)[0]


BACKLOG_CAP = 1_000


def backlog(ctx: Context, now: datetime) -> tuple[int, datetime | None]:
    """Automations of active clients due more than the re-dispatch delay ago and still waiting:
    how many (counted up to BACKLOG_CAP, so that the count stays cheap however large the
    backlog), and the oldest trigger time among them. Both walk the due index in order."""
    stale = now - ctx.engine.redispatch_after
    overdue = waiting(Automation.trigger_at, stale).order_by(Automation.trigger_at)
    oldest = ctx.session.scalar(overdue.limit(1))
    if oldest is None:
        return 0, None
    count = ctx.session.scalar(
        select(func.count()).select_from(overdue.limit(BACKLOG_CAP).subquery())
    )
    return int(count or 0), oldest
