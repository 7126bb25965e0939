"""Taking back, within seconds, what a dead worker or a restarted broker held.

Every worker process beats every `Engine.beat_every`, renewing the leases of the automations it
has claimed. Any live worker's round of recovery (and every sweep) then:
- takes back RUNNING automations whose lease ran out (their worker died mid-run);
- declares dead the workers that stopped beating, and takes back the messages the broker had
  handed them (prefetched, delayed or not yet started) — read from the broker's own state;
- notices that the broker restarted (it lost every message it held) and forgets every dispatch.
What is taken back is scheduled again at a new version (any surviving copy of its message goes
stale) and marked as not dispatched, so the next dispatch sends it. Concurrent rounds are safe:
each change is a compare-and-set.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import tuple_, update
from sqlalchemy.exc import IntegrityError

from scheduler.engine import Context
from scheduler.models import Automation, Heartbeat, Worker
from scheduler.vocab import AutomationStatus

log = logging.getLogger(__name__)

BROKER = "broker"  # the heartbeats row that remembers the broker's epoch


@dataclass(frozen=True)
class Recovered:
    leases: int = 0  # RUNNING automations whose lease ran out
    dead: tuple[str, ...] = ()  # workers found dead this round
    stranded: int = 0  # automations whose message a dead worker held
    restarted: bool = False  # the broker restarted: every dispatch was forgotten
    forgotten: int = 0  # ...this many

    @property
    def taken_back(self) -> int:
        return self.leases + self.stranded


def beat(ctx: Context, state: str = "RUNNING") -> None:
    """This worker is alive: its row and the leases of what it runs move on."""
    now = ctx.now()
    me = ctx.engine.worker_id
    found = ctx.session.execute(
        update(Worker)
        .where(Worker.id == me)
        .values(beat_at=now, state=state)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not found:
        try:
            with ctx.session.begin_nested():
                ctx.session.add(
                    Worker(
                        id=me,
                        host=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=now,
                        beat_at=now,
                        state=state,
                    )
                )
        except IntegrityError:  # written by this same worker a moment ago
            pass
    renew(ctx)
    ctx.commit()


def renew(ctx: Context) -> int:
    """Extend the lease of every automation this worker is running right now."""
    running = ctx.engine.in_flight.snapshot()
    if not running:
        return 0
    now = ctx.now()
    return ctx.session.execute(
        update(Automation)
        .where(
            Automation.id.in_(running),
            Automation.status == AutomationStatus.RUNNING,
            Automation.claimed_by == ctx.engine.worker_id,
        )
        .values(lease_until=now + ctx.engine.lease)
        .execution_options(synchronize_session=False)
    ).rowcount


def stopped(ctx: Context) -> None:
    """This worker stopped cleanly: nothing of it is left to take back."""
    now = ctx.now()
    ctx.session.execute(
        update(Worker)
        .where(Worker.id == ctx.engine.worker_id)
        .values(state="STOPPED", beat_at=now, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    ctx.commit()


def recover(ctx: Context) -> Recovered:
    """One round of recovery (see the module's docstring); commits."""
    leases = expired_leases(ctx)
    dead = dead_workers(ctx)
    dispatcher = ctx.engine.dispatcher
    # And those the broker has not heard from for a lease, known to it only (killed before
    # their first beat here) or already marked dead (their messages still waiting).
    silent = [w for w in dispatcher.silent(ctx.engine.lease.total_seconds()) if w not in dead]
    held = [*dead, *silent]
    stranded = take_back(ctx, dispatcher.stranded(held)) if held else 0
    forgotten = broker_restarted(ctx)
    ctx.commit()
    found = Recovered(leases, tuple(dead), stranded, forgotten is not None, forgotten or 0)
    observer = ctx.engine.observer
    for reason, count in (("lease", leases), ("dead worker", stranded)):
        if count:
            observer.taken_back(reason, count)
    if found.forgotten:
        observer.taken_back("broker restart", found.forgotten)
    if found.taken_back or found.dead or found.restarted:
        log.warning(
            "recovery: %d lease(s) expired, %d worker(s) dead (%d automation(s) in their "
            "messages), broker restarted: %s (%d dispatch(es) forgotten)",
            leases,
            len(dead),
            stranded,
            found.restarted,
            found.forgotten,
        )
    return found


def expired_leases(ctx: Context) -> int:
    """Take back RUNNING automations whose lease ran out: scheduled again, at a new version."""
    now = ctx.now()
    return ctx.session.execute(
        update(Automation)
        .where(
            Automation.status == AutomationStatus.RUNNING,
            Automation.lease_until < now,
        )
        .values(
            status=AutomationStatus.SCHEDULED,
            version=Automation.version + 1,
            lease_until=None,
            claimed_by=None,
            dispatched_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


def dead_workers(ctx: Context) -> list[str]:
    """Workers that stopped beating longer than a lease ago, now marked DEAD (each by one
    round only)."""
    now = ctx.now()
    return list(
        ctx.session.scalars(
            update(Worker)
            .where(
                Worker.state.in_(["RUNNING", "STOPPING"]),
                Worker.beat_at < now - ctx.engine.lease,
            )
            .values(state="DEAD", ended_at=now)
            .returning(Worker.id)
            .execution_options(synchronize_session=False)
        )
    )


def take_back(ctx: Context, pairs: Sequence[tuple[int, int]]) -> int:
    """The automations of messages the broker can no longer deliver, where they still wait at
    that version: a new version, not dispatched."""
    if not pairs:
        return 0
    now = ctx.now()
    taken = 0
    pairs = list(dict.fromkeys((int(i), int(v)) for i, v in pairs))
    for start in range(0, len(pairs), 1000):
        taken += ctx.session.execute(
            update(Automation)
            .where(
                tuple_(Automation.id, Automation.version).in_(pairs[start : start + 1000]),
                Automation.status == AutomationStatus.SCHEDULED,
            )
            .values(version=Automation.version + 1, dispatched_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    return taken


def broker_restarted(ctx: Context) -> int | None:
    """If the broker restarted since any worker last looked (its epoch changed), every message
    it held is gone: every dispatch is forgotten, and their number returned (None when it did
    not restart). The first look counts as a restart too: nothing says where earlier
    dispatches went."""
    try:
        epoch = ctx.engine.dispatcher.epoch()
    except Exception:  # the broker is away: nothing to tell yet
        return None
    if epoch is None:
        return None
    now = ctx.now()
    row = ctx.session.get(Heartbeat, BROKER, populate_existing=True)
    if row is not None and row.detail.get("epoch") == epoch:
        return None
    if row is None:
        try:
            with ctx.session.begin_nested():
                ctx.session.add(Heartbeat(name=BROKER, at=now, detail={"epoch": epoch}))
        except IntegrityError:  # another worker saw it first
            return None
    else:
        won = ctx.session.execute(
            update(Heartbeat)
            .where(Heartbeat.name == BROKER, Heartbeat.at == row.at)
            .values(at=now, detail={"epoch": epoch})
            .execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            return None
    return forget_dispatches(ctx)


def forget_dispatches(ctx: Context) -> int:
    """Every pending automation counts as not dispatched (the broker lost them, or this is an
    in-process broker that starts empty): the next dispatch sends what is due."""
    return ctx.session.execute(
        update(Automation)
        .where(
            Automation.status == AutomationStatus.SCHEDULED, Automation.dispatched_at.is_not(None)
        )
        .values(dispatched_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
