"""The actors. Each is a thin shell: the work is in `scheduler`."""

from __future__ import annotations

import logging

import dramatiq
from periodiq import cron

from scheduler import execute
from scheduler import sweep as sweeping
from scheduler.vocab import Lane
from tasks import runtime

log = logging.getLogger(__name__)


# The time limit stays under the shortest lease (AUTOMATION_LEASE_SECONDS, default 300 s).
@dramatiq.actor(queue_name="automations", max_retries=0, time_limit=240_000)
def run_automation(automation_id: int, version: int) -> None:
    """Execute one automation, if this message still stands for its current version."""
    with runtime.context() as ctx:
        execute.run(ctx, automation_id, version)


# Generations call outside services and take long: a queue of their own, so that emails never
# wait behind them. Both actors consume it; a worker holding messages of both runs the ones
# someone asked for now first (Dramatiq orders a worker's prefetched messages by actor
# priority, lower first). The time limit leaves room for GENERATOR_TIMEOUT_SECONDS.
@dramatiq.actor(queue_name="generation", max_retries=0, time_limit=240_000, priority=0)
def generate_now(automation_id: int, version: int) -> None:
    """Run a generation someone asked for now (by hand, or run now)."""
    with runtime.context() as ctx:
        execute.run(ctx, automation_id, version)


@dramatiq.actor(queue_name="generation", max_retries=0, time_limit=240_000, priority=10)
def generate_scheduled(automation_id: int, version: int) -> None:
    """Run a generation whose time has come."""
    with runtime.context() as ctx:
        execute.run(ctx, automation_id, version)


ACTORS: dict[Lane, dramatiq.Actor] = {
    Lane.AUTOMATIONS: run_automation,
    Lane.GENERATION: generate_scheduled,
    Lane.GENERATION_NOW: generate_now,
}


@dramatiq.actor(queue_name="sweep", max_retries=0, periodic=cron("* * * * *"))
def sweep() -> None:
    """Feed the horizon and re-send what was lost (every minute, from periodiq)."""
    with runtime.context() as ctx:
        report = sweeping.sweep(ctx)
        log.info(
            "sweep: %d dispatched, %d reclaimed, %d overdue",
            report.dispatched,
            report.reclaimed,
            report.overdue,
        )
