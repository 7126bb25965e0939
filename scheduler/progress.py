"""Where each month's generation stands, for people and for the API: scheduled, queued (due,
waiting for a worker), running, retrying, done, failed, skipped, or none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from scheduler.engine import Context
from scheduler.models import Automation, Client, Deliverable
from scheduler.vocab import AutomationStatus, AutomationType, DeliverableStatus


@dataclass(frozen=True)
class Generation:
    month: int
    state: str
    automation_id: int | None = None
    trigger_at: datetime | None = None
    attempts: int = 0
    error: str | None = None


def generation_progress(ctx: Context, client: Client) -> dict[int, Generation]:
    """Each month of the program, with the state of its generation."""
    automations: dict[int, list[Automation]] = {}
    for a in ctx.session.scalars(
        select(Automation)
        .where(
            Automation.client_id == client.id,
            Automation.type == AutomationType.GENERATE_DELIVERABLE,
        )
        .order_by(Automation.id)
    ):
        automations.setdefault(a.month or 0, []).append(a)
    latest: dict[int, Deliverable] = {}
    for d in ctx.session.scalars(
        select(Deliverable)
        .where(Deliverable.client_id == client.id)
        .order_by(Deliverable.month, Deliverable.version)
    ):
        latest[d.month] = d
    now = ctx.now()
    return {
        m: month_progress(m, automations.get(m, []), latest.get(m), now)
        for m in range(1, ctx.program_of(client).length + 1)
    }


def month_progress(
    month: int, automations: list[Automation], deliverable: Deliverable | None, now: datetime
) -> Generation:
    def of(a: Automation, state: str) -> Generation:
        attempts = a.retry_count + (1 if state in ("running", "failed", "done") else 0)
        return Generation(month, state, a.id, a.trigger_at, attempts, a.error)

    for a in reversed(automations):
        if a.status == AutomationStatus.RUNNING:
            return of(a, "running")
        if a.status == AutomationStatus.SCHEDULED:
            if a.retry_count:
                return of(a, "retrying")
            return of(a, "queued" if a.trigger_at <= now else "scheduled")
    if deliverable is not None and deliverable.status == DeliverableStatus.SKIPPED:
        return Generation(month, "skipped")
    ended = [
        a for a in automations if a.status in (AutomationStatus.COMPLETED, AutomationStatus.FAILED)
    ]
    last = max(ended, key=lambda a: (a.updated_at, a.id), default=None)
    if (
        last is not None
        and last.status == AutomationStatus.FAILED
        and (deliverable is None or deliverable.created_at <= last.updated_at)
    ):
        return of(last, "failed")
    if deliverable is not None:
        made = next((a for a in automations if a.id == deliverable.automation_id), None)
        if made is not None:
            return of(made, "done")
        return Generation(month, "done", None, deliverable.generated_at)
    return Generation(month, "none")
