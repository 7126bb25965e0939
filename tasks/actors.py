"""The actors. Each is a thin shell: the work is in `scheduler`."""

from __future__ import annotations

import logging

import dramatiq
from periodiq import cron

from scheduler import execute
from scheduler import sweep as sweeping
from tasks import runtime

log = logging.getLogger(__name__)


# The time limit stays under the shortest lease (AUTOMATION_LEASE_SECONDS, default 300 s).
@dramatiq.actor(queue_name="automations", max_retries=0, time_limit=240_000)
def run_automation(automation_id: int, version: int) -> None:
    """Execute one automation, if this message still stands for its current version."""
    with runtime.context() as ctx:
        execute.run(ctx, automation_id, version)


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
