"""How the engine is doing, as operators watch it: the sweep's liveness, the backlog, what
runs, the workers. One function computes it; the health check and the metrics render it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from scheduler.engine import Context
from scheduler.models import Automation, Heartbeat, Worker
from scheduler.sweep import backlog
from scheduler.vocab import AutomationStatus


@dataclass(frozen=True)
class State:
    at: datetime
    sweep_at: datetime | None  # when the sweep last ran
    sweep_seconds: float | None  # how long it took
    overdue: int  # due past the re-dispatch delay and not run (counted up to BACKLOG_CAP)
    oldest_overdue: datetime | None
    due: int  # due now and not yet run (counted up to BACKLOG_CAP)
    running: int
    workers: dict[str, int] = field(default_factory=dict)  # by state

    @property
    def sweep_age(self) -> float | None:
        return (self.at - self.sweep_at).total_seconds() if self.sweep_at else None

    @property
    def oldest_overdue_age(self) -> float:
        return (self.at - self.oldest_overdue).total_seconds() if self.oldest_overdue else 0.0


def state(ctx: Context) -> State:
    now = ctx.now()
    beat = ctx.session.get(Heartbeat, "sweep")
    overdue, oldest = backlog(ctx, now)
    due = backlog(ctx, now, grace=False)[0]
    running = ctx.session.scalar(
        select(func.count()).where(Automation.status == AutomationStatus.RUNNING)
    )
    workers = dict(
        ctx.session.execute(select(Worker.state, func.count()).group_by(Worker.state)).all()
    )
    return State(
        at=now,
        sweep_at=beat.at if beat else None,
        sweep_seconds=(beat.detail or {}).get("seconds") if beat else None,
        overdue=overdue,
        oldest_overdue=oldest,
        due=due,
        running=int(running or 0),
        workers={str(k): int(v) for k, v in workers.items()},
    )
