"""The actors. Each is a thin shell: the work is in `scheduler`.

Messages carry a format. Format 2 (`run_automations`) is a batch of (id, version) pairs;
format 1 (`run_automation`, one pair) is what the previous release sent, still handled so that
a rolling deploy loses nothing. A message of a format newer than this worker knows is left
alone: the sweep sends its automations again, and a newer worker takes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq import Message
from periodiq import cron
from sqlalchemy.exc import InterfaceError, OperationalError

from scheduler import dashboard, execute, precount, risk
from scheduler import sweep as sweeping
from scheduler.vocab import Lane
from tasks import runtime, watch

log = logging.getLogger(__name__)

FORMAT = 2


def database_away(retries: int, exc: BaseException) -> bool:
    """A delivery that found the database away is tried again a few seconds later (for a few
    minutes; after that the sweep sends it again); any other error ends the delivery (the
    automation's own retries and alerts are the engine's)."""
    return retries < 30 and isinstance(exc, dramatiq.Retry | OperationalError | InterfaceError)


class Outage:
    """Says once that the database is away, and once that it is back, however many deliveries
    meet the outage (each is retried quietly, not logged with its traceback)."""

    def __init__(self) -> None:
        self.away = False

    @contextmanager
    def watched(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            if not self.away:
                self.away = True
                log.warning("the database is unreachable (%s): deliveries wait", type(exc).__name__)
            raise dramatiq.Retry(str(exc).splitlines()[0] if str(exc) else "") from exc
        if self.away:
            self.away = False
            log.warning("the database answers again: deliveries go on")


outage = Outage()


# Retried after 1, 2, 4, 8, then every 10 seconds, while the database is away.
DELIVERY = {
    "retry_when": database_away,
    "min_backoff": 1_000,
    "max_backoff": 10_000,
    "time_limit": 240_000,
}


# Generations take up to GENERATOR_TIMEOUT_SECONDS; the time limit leaves room for it (a live
# worker keeps renewing its leases meanwhile).
@dramatiq.actor(queue_name="automations", **DELIVERY)
def run_automations(batch: list[list[int]], format: int = FORMAT) -> None:
    """Execute a batch of automations due at the same moment, each if this message still
    stands for its current version; what is not started when the worker is told to stop is
    handed back to the others at once."""
    if format > FORMAT:
        log.warning("message format %s is newer than this worker's (%s): left", format, FORMAT)
        return
    with outage.watched(), runtime.context() as ctx:
        execute.run_batch(ctx, [(int(i), int(v)) for i, v in batch], watch.stopping)


@dramatiq.actor(queue_name="automations", **DELIVERY)
def run_automation(automation_id: int, version: int) -> None:
    """Format 1, one automation (messages sent by the previous release)."""
    with outage.watched(), runtime.context() as ctx:
        execute.run_batch(ctx, [(automation_id, version)], watch.stopping)


# Generations call outside services and take long: a queue of their own, so that emails never
# wait behind them. Both actors consume it; a worker holding messages of both runs the ones
# someone asked for now first (Dramatiq orders a worker's prefetched messages by actor
# priority, lower first).
@dramatiq.actor(queue_name="generation", priority=0, **DELIVERY)
def generate_now(automation_id: int, version: int) -> None:
    """Run a generation someone asked for now (by hand, or run now)."""
    with outage.watched(), runtime.context() as ctx:
        execute.run(ctx, automation_id, version)


@dramatiq.actor(queue_name="generation", priority=10, **DELIVERY)
def generate_scheduled(automation_id: int, version: int) -> None:
    """Run a generation whose time has come."""
    with outage.watched(), runtime.context() as ctx:
        execute.run(ctx, automation_id, version)


ACTORS: dict[Lane, dramatiq.Actor] = {
    Lane.AUTOMATIONS: run_automations,
    Lane.GENERATION: generate_scheduled,
    Lane.GENERATION_NOW: generate_now,
}
QUEUES = ("automations", "generation")


def pairs_of(message: Message) -> list[tuple[int, int]]:
    """The (automation id, version) pairs a message of any known format carries."""
    if message.actor_name == run_automations.actor_name:
        return [(int(i), int(v)) for i, v in message.args[0]]
    if message.actor_name in (run_automation.actor_name, *(a.actor_name for a in ACTORS.values())):
        return [(int(message.args[0]), int(message.args[1]))]
    return []


# A sweep outlives a database outage shorter than a minute: it tries again every few seconds,
# so that what the outage held up is sent as soon as the database is back.
SWEEP_PATIENCE_SECONDS = 50


@dramatiq.actor(queue_name="sweep", max_retries=0, periodic=cron("* * * * *"), time_limit=90_000)
def sweep() -> None:
    """Feed the horizon and take back what was lost (every minute, from periodiq)."""
    deadline = time.monotonic() + SWEEP_PATIENCE_SECONDS
    pause = 1.0
    while True:
        try:
            with runtime.context() as ctx:
                report = sweeping.sweep(ctx)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + pause > deadline:
                raise
            if pause == 1.0:
                log.warning("sweep: the database is unreachable (%s); retrying", type(exc).__name__)
            time.sleep(pause)
            pause = min(pause * 2, 8.0)
            continue
        log.info(
            "sweep: %d dispatched, %d taken back, %d overdue",
            report.dispatched,
            report.reclaimed,
            report.overdue,
        )
        return


@dramatiq.actor(queue_name="metrics", max_retries=0, periodic=cron("* * * * *"), time_limit=120_000)
def keep_metrics() -> None:
    """Count the success metrics ahead (every minute, from periodiq), so that their pages only
    add up kept numbers. Not retried: the next minute's run does what this one could not."""
    with runtime.context() as ctx:
        kept = precount.keep(ctx)
    if kept.spans or kept.rechecked or kept.states:
        log.info(
            "metrics: %d spans counted, %d counted again, %d states, %.1f s%s",
            kept.spans,
            kept.rechecked,
            kept.states,
            kept.seconds,
            "" if kept.complete else " (history not all counted yet)",
        )


# Every active client's risk score, scored again once a day at a quiet hour: 03:30 in the
# scheduler process's local time (periodiq's; the embedded default keeps the same schedule).
RISK_REFRESH = cron("30 3 * * *")


@dramatiq.actor(
    queue_name="insight", periodic=RISK_REFRESH, **(DELIVERY | {"time_limit": 1_800_000})
)
def refresh_risk() -> None:
    """Score every active client again with the latest risk model, so that the kept scores
    (the clients list, the journey page, the API) are at most a day old (daily, from periodiq;
    nothing without a model)."""
    began = time.monotonic()
    with outage.watched(), runtime.context() as ctx:
        scored = risk.refresh(ctx)
        ctx.commit()
    if scored:
        log.info("risk: %d clients scored in %.1f s", scored, time.monotonic() - began)


@dramatiq.actor(queue_name="metrics", max_retries=0, periodic=cron("* * * * *"), time_limit=90_000)
def count_dashboards() -> None:
    """Count the dashboard's numbers again for each admin's time zone (every minute, from
    periodiq), so that the page reads them counted."""
    with runtime.context() as ctx:
        zones = dashboard.keep_all(ctx)
        ctx.commit()
    log.info("dashboard counted for %s", ", ".join(zones))
