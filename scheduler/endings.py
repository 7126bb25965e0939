"""How a run ends, written on the automation this worker claimed: completed or skipped (with
the verdict's reason), deferred to a later moment (a new version), retried later or failed for
good (then the admins hear of it); or dropped, when another worker took the claim over. The
callers commit: one run at a time, or a batch's endings in one commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm.attributes import set_committed_value

from scheduler import logs, rules
from scheduler.engine import Context
from scheduler.errors import Changed
from scheduler.models import Automation, Hold
from scheduler.schedule import log, log_many, log_row, notify, send_when_due
from scheduler.vocab import AutomationStatus, LogStatus, Template

logger = logging.getLogger("scheduler.execute")


def mine(ctx: Context, automation: Automation) -> bool:
    return (
        automation.status == AutomationStatus.RUNNING
        and automation.claimed_by == ctx.engine.worker_id
    )


def finish_run(ctx: Context, automation: Automation, verdict: rules.Verdict) -> None:
    """The run is over: COMPLETED, or SKIPPED when the verdict says it had nothing to do."""
    for name, value in ended(ctx, automation, verdict).items():
        setattr(automation, name, value)
    log(ctx, automation, LogStatus(automation.status), automation.detail)


def finish_runs(ctx: Context, runs: Sequence[tuple[Automation, rules.Verdict]]) -> None:
    """`finish_run` for many at once: one statement (executed for every row), each row guarded
    by the version and the claim it was read with, and their log rows. Raises Changed, having
    written nothing, if any was taken over meanwhile (the caller then writes them one by one)."""
    if not runs:
        return
    values = [ended(ctx, automation, verdict) for automation, verdict in runs]
    table = Automation.__table__
    guarded = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.version == bindparam("b_version"),
            table.c.status == AutomationStatus.RUNNING,
            table.c.claimed_by == ctx.engine.worker_id,
        )
        .values({name: bindparam(name) for name in values[0]})
    )
    params = [
        {"b_id": automation.id, "b_version": automation.version, **row}
        for (automation, _), row in zip(runs, values, strict=True)
    ]
    written = ctx.session.connection().execute(guarded, params).rowcount
    if written != len(runs):
        raise Changed(f"{len(runs) - written} of {len(runs)} automations were taken over")
    for (automation, _), row in zip(runs, values, strict=True):
        for name, value in row.items():  # the rows now hold these: nothing left to flush
            set_committed_value(automation, name, value)
    log_many(
        ctx,
        [log_row(ctx, a, LogStatus(a.status), a.detail) for a, _ in runs],
    )


def ended(ctx: Context, automation: Automation, verdict: rules.Verdict) -> dict[str, Any]:
    """The columns a finished run writes."""
    now = ctx.now()
    detail = verdict.reason
    if automation.retry_count:
        n = automation.retry_count
        detail += f" (after {n} {'retry' if n == 1 else 'retries'})"
    return {
        "status": AutomationStatus.COMPLETED if verdict.run else AutomationStatus.SKIPPED,
        "executed_at": now,
        "detail": detail,
        "lease_until": None,
        "claimed_by": None,
        "error": None,
        "updated_at": now,
    }


def defer(ctx: Context, automation: Automation, verdict: rules.Verdict) -> None:
    """Not now: scheduled again, at a new version, for the moment the verdict names."""
    assert verdict.defer_until is not None
    automation.status = AutomationStatus.SCHEDULED
    automation.trigger_at = verdict.defer_until
    automation.version += 1
    automation.lease_until = None
    automation.claimed_by = None
    automation.updated_at = ctx.now()
    log(ctx, automation, LogStatus.DEFERRED, verdict.reason)
    send_when_due(ctx, automation)


def failed(ctx: Context, automation: Automation, exc: BaseException) -> None:
    """A failed attempt is retried later; when its retries are spent it fails for good and the
    admins hear about it."""
    now = ctx.now()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    with logs.concerning(automation_id=automation.id, client_id=automation.client_id):
        logger.warning("automation %s failed: %s", automation.id, error)
    when = rules.retry_at(
        now, automation.retry_count, automation.max_retries, ctx.program_of(automation.client)
    )
    automation.error = error
    automation.lease_until = None
    automation.claimed_by = None
    automation.updated_at = now
    if when is not None:
        attempt = automation.retry_count + 1
        log(
            ctx,
            automation,
            LogStatus.RETRYING,
            f"attempt {attempt} failed; retry {attempt} of {automation.max_retries} "
            f"at {when:%Y-%m-%d %H:%M} UTC",
            error,
        )
        automation.retry_count = attempt
        automation.status = AutomationStatus.SCHEDULED
        automation.trigger_at = when
        automation.version += 1
        send_when_due(ctx, automation)
        return
    automation.status = AutomationStatus.FAILED
    automation.executed_at = now
    automation.detail = f"failed after {automation.retry_count} retries"
    log(ctx, automation, LogStatus.FAILED, automation.detail, error)
    if automation.template != Template.AUTOMATION_FAILURE:
        hold = ctx.session.get(Hold, automation.hold_id) if automation.hold_id else None
        notify(
            ctx,
            automation.client,
            Template.AUTOMATION_FAILURE,
            f"failure:{automation.id}",
            month=automation.month,
            payload={"automation_id": automation.id, "error": error},
            hold=hold,
        )


def outcome(automation: Automation) -> str:
    """What the observer counts for an ended run."""
    if automation.status == AutomationStatus.SCHEDULED:
        return LogStatus.RETRYING if automation.error else LogStatus.DEFERRED
    return str(automation.status)


def lost(ctx: Context, automation_id: int) -> None:
    """This worker's claim was taken over (its lease ran out while it worked, say through a
    database outage): the new holder's run counts, this one's record is dropped. Its side
    effects were idempotent, so the new holder does not repeat them."""
    ctx.rollback()
    logger.warning("automation %s: claim lost to another worker; its run counts", automation_id)
    ctx.engine.observer.executed("", "LOST")
    return None
