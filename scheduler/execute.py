"""Carry out automations, exactly once in effect.

A delivery (a broker message carrying one automation or a batch of them, a re-send after a
loss, a redelivery after a crash) first claims its rows with one conditional UPDATE: only one
delivery can win each, and the winner holds a lease that its worker renews while it lives.
Side effects are idempotent on re-run: a deliverable remembers the automation that made it, an
email is keyed by automation and recipient in the outbox and is never sent twice; and every
write to a claimed automation says which version it read, so a worker that lost its claim
cannot overwrite what the new holder did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from scheduler import controls, logs, lookups, rules, sending
from scheduler.endings import defer, failed, finish_run, lost, mine, outcome
from scheduler.engine import Context, EarlierMonth, GenerationRequest
from scheduler.errors import Changed
from scheduler.lookups import month_views, open_hold
from scheduler.models import Automation, Client, Deliverable
from scheduler.schedule import lane_of, notify, refresh_progress
from scheduler.vocab import (
    AutomationStatus,
    AutomationType,
    DeliverableStatus,
    LogStatus,
    Template,
)

logger = logging.getLogger(__name__)


def never() -> bool:
    return False


def claim(ctx: Context, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Move to RUNNING, leased to this worker, those of the (id, version) pairs still scheduled,
    due, and at that version; returns their ids (one statement, one commit)."""
    if not pairs:
        return []
    now = ctx.now()
    claimed = ctx.session.scalars(
        update(Automation)
        .where(
            tuple_(Automation.id, Automation.version).in_([(int(i), int(v)) for i, v in pairs]),
            Automation.status == AutomationStatus.SCHEDULED,
            Automation.trigger_at <= now,
        )
        .values(
            status=AutomationStatus.RUNNING,
            lease_until=now + ctx.engine.lease,
            claimed_by=ctx.engine.worker_id,
            updated_at=now,
        )
        .returning(Automation.id)
        .execution_options(synchronize_session=False)
    ).all()
    ctx.session.commit()
    return sorted(claimed)


def run(ctx: Context, automation_id: int, version: int) -> Automation | None:
    """Execute the automation if this delivery wins the claim; None if another did (or the
    message is stale)."""
    done = run_batch(ctx, [(automation_id, version)])
    return done[0] if done else None


def run_batch(
    ctx: Context, pairs: Sequence[tuple[int, int]], stopping: Callable[[], bool] = never
) -> list[Automation]:
    """Execute the automations this delivery wins: the ones that send an email together
    (`scheduler.sending`), the others one after another. When the worker is told to stop
    (`stopping`), the ones not yet started are handed back at once rather than left to their
    leases. Returns those it finished (completed, skipped, deferred, failed or retrying)."""
    ids = claim(ctx, pairs)
    if not ids:
        return []
    finished: list[Automation] = []
    ctx.engine.in_flight.add(ids)
    try:
        claimed = list(
            ctx.session.scalars(
                select(Automation)
                .where(Automation.id.in_(ids))
                .options(joinedload(Automation.client))
                .order_by(Automation.id)
                .execution_options(populate_existing=True)
            )
        )
        mail = [a for a in claimed if a.type in sending.EMAIL_TYPES and mine(ctx, a)]
        others = [a.id for a in claimed if a not in mail]
        if mail:
            ended, back = sending.run(ctx, mail, stopping)
            finished += ended
            if back:
                handback(ctx, back)
        for index, automation_id in enumerate(others):
            if stopping():
                handback(ctx, others[index:])
                break
            done = execute(ctx, automation_id)
            ctx.engine.in_flight.discard([automation_id])
            if done is not None:
                finished.append(done)
    finally:
        ctx.engine.in_flight.discard(ids)
    return finished


def handback(ctx: Context, ids: Sequence[int]) -> int:
    """Give back automations this worker claimed but did not start: scheduled again at a new
    version (so that any other copy of their message goes stale) and dispatched at once."""
    now = ctx.now()
    back = ctx.session.execute(
        update(Automation)
        .where(
            Automation.id.in_(list(ids)),
            Automation.status == AutomationStatus.RUNNING,
            Automation.claimed_by == ctx.engine.worker_id,
        )
        .values(
            status=AutomationStatus.SCHEDULED,
            version=Automation.version + 1,
            lease_until=None,
            claimed_by=None,
            dispatched_at=now,
            updated_at=now,
        )
        .returning(Automation)
        .execution_options(synchronize_session=False)
    ).scalars()
    given = list(back)
    for automation in given:
        ctx.dispatch_after_commit(
            automation.id, automation.version, automation.trigger_at, lane_of(automation)
        )
    ctx.commit()
    if given:
        logger.info("handed back %d automation(s) not started before stopping", len(given))
        ctx.engine.observer.taken_back("handback", len(given))
    return len(given)


def execute(ctx: Context, automation_id: int) -> Automation | None:
    """Carry out one claimed automation and record how it ended; None when this worker lost
    its claim meanwhile (its lease expired and another took it over)."""
    automation = ctx.session.get(Automation, automation_id, populate_existing=True)
    if automation is None or not mine(ctx, automation):
        ctx.rollback()
        return None
    with logs.concerning(automation_id=automation_id, client_id=automation.client_id):
        if automation.type in sending.EMAIL_TYPES:
            ended, _ = sending.run(ctx, [automation], never)
            return ended[0] if ended else None
        return carry_out(ctx, automation)


def carry_out(ctx: Context, automation: Automation) -> Automation | None:
    automation_id, version = automation.id, automation.version
    try:
        try:
            verdict = perform(ctx, automation)
            # The action's own commits reload the row: is it still this worker's claim?
            if not mine(ctx, automation) or automation.version != version:
                return lost(ctx, automation_id)
            if verdict.defer_until is not None:
                return deferred(ctx, automation, verdict)
        except (StaleDataError, Changed):
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
                # The database went away: not the action's fault. The automation stays RUNNING
                # and is taken back when its lease expires.
                raise
            ctx.rollback()
            return failed_again(ctx, automation_id, version, exc)
        except Exception as exc:  # any failure of the action: retry later, then give up loudly
            ctx.rollback()
            return failed_again(ctx, automation_id, version, exc)
        return completed(ctx, automation, verdict)
    except (StaleDataError, Changed):
        return lost(ctx, automation_id)


def completed(ctx: Context, automation: Automation, verdict: rules.Verdict) -> Automation:
    finish_run(ctx, automation, verdict)
    ctx.commit()
    ctx.engine.observer.executed(automation.type, automation.status)
    return automation


def deferred(ctx: Context, automation: Automation, verdict: rules.Verdict) -> Automation:
    defer(ctx, automation, verdict)
    ctx.commit()
    ctx.engine.observer.executed(automation.type, LogStatus.DEFERRED)
    return automation


def failed_again(
    ctx: Context, automation_id: int, version: int, exc: BaseException
) -> Automation | None:
    automation = ctx.session.get(Automation, automation_id, populate_existing=True)
    if automation is None or not mine(ctx, automation) or automation.version != version:
        return lost(ctx, automation_id)
    failed(ctx, automation, exc)
    ctx.commit()
    ctx.engine.observer.executed(automation.type, outcome(automation))
    return automation


def perform(ctx: Context, automation: Automation) -> rules.Verdict:
    client = automation.client
    views = month_views(ctx, client)
    month = automation.month
    this = views.get(month, rules.MonthView()) if month else rules.MonthView()
    previous = views.get(month - 1, rules.MonthView()) if month and month > 1 else None
    kind = AutomationType(automation.type)
    template = Template(automation.template) if automation.template else None
    if kind is AutomationType.GENERATE_DELIVERABLE:
        this = generation_view(ctx, automation, client, this)
    hold = open_hold(ctx, client)
    hold_active = hold is not None and automation.hold_id == hold.id
    verdict = rules.decide(kind, template, month, this, previous, hold_active=hold_active)
    if not verdict.run:
        return verdict
    if kind is AutomationType.GENERATE_DELIVERABLE:
        generate(ctx, automation, client, previous)
    elif kind is AutomationType.UPDATE_STATUS:
        controls.resume(ctx, client, ended_by="schedule")
    else:
        raise ValueError(f"{kind} is carried out by scheduler.sending, with its emails")
    return verdict


def generation_view(
    ctx: Context, automation: Automation, client: Client, this: rules.MonthView
) -> rules.MonthView:
    """How a generation sees its month: its own deliverable (a re-run after a crash) does not
    count as existing, and neither does a rejected one it is asked to replace."""
    latest = lookups.latest_deliverable(ctx, client, automation.month or 0)
    if latest is None:
        return this
    if latest.automation_id == automation.id:
        return rules.MonthView()
    wanted = int(automation.payload.get("version", 1))
    if latest.status == DeliverableStatus.REJECTED and latest.version < wanted:
        return rules.MonthView()
    return this


def generate(
    ctx: Context, automation: Automation, client: Client, previous: rules.MonthView | None
) -> None:
    month = automation.month
    assert month is not None
    mine = ctx.session.scalar(select(Deliverable).where(Deliverable.automation_id == automation.id))
    if mine is None:
        latest = lookups.latest_deliverable(ctx, client, month)
        notes = str(automation.payload.get("notes") or (latest.reviewer_notes if latest else ""))
        request = generation_request(ctx, client, month, notes)
        began = time.perf_counter()
        made = ctx.engine.generator.generate(request)
        ctx.engine.observer.timed("generation", time.perf_counter() - began)
        now = ctx.now()
        mine = Deliverable(
            client_id=client.id,
            month=month,
            version=latest.version + 1 if latest else 1,
            status=DeliverableStatus.PENDING_REVIEW,
            title=made.title,
            content=made.content,
            manual=bool(automation.payload.get("manual")),
            automation_id=automation.id,
            generated_at=now,
            created_at=now,
        )
        ctx.session.add(mine)
        ctx.session.flush()
    if rules.escalate_behind(previous):
        notify(
            ctx,
            client,
            Template.ADMIN_ESCALATION,
            f"behind:{month - 1}",
            month=month - 1,
            payload={"reason": f"M{month} is due and M{month - 1} is not delivered"},
        )
    notify(ctx, client, Template.REVIEW_NEEDED, f"review:{month}:v{mine.version}", month=month)
    refresh_progress(ctx, client)


def generation_request(ctx: Context, client: Client, month: int, notes: str) -> GenerationRequest:
    earlier = [
        EarlierMonth(d.month, d.title, d.status, d.content)
        for d in ctx.session.scalars(
            select(Deliverable)
            .where(
                Deliverable.client_id == client.id,
                Deliverable.month < month,
                Deliverable.status == DeliverableStatus.DELIVERED,
            )
            .order_by(Deliverable.month, Deliverable.version)
        )
    ]
    return GenerationRequest(
        client_name=client.name,
        onboarding=dict(client.onboarding or {}),
        business_plan=client.business_plan or "",
        month=ctx.program_of(client).month(month),
        program_name=ctx.program_of(client).name,
        earlier=earlier,
        notes=notes,
    )
