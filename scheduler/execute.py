"""Carry out one automation, exactly once in effect.

A delivery (a broker message, a sweep's re-send, a redelivery after a crash) first claims the
row with one conditional UPDATE; only one delivery can win it. Side effects are idempotent on
re-run: a deliverable remembers the automation that made it, an email is keyed by automation
and recipient in the outbox and is never sent twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from scheduler import controls, emails, lookups, rules
from scheduler.engine import Context, EarlierMonth, GenerationRequest
from scheduler.lookups import month_views, open_hold
from scheduler.models import Automation, Client, Deliverable, Hold
from scheduler.schedule import log, notify, refresh_progress, send_when_due
from scheduler.vocab import (
    AutomationStatus,
    AutomationType,
    DeliverableStatus,
    LogStatus,
    Template,
)

logger = logging.getLogger(__name__)


def claim(ctx: Context, automation_id: int, version: int) -> bool:
    """Move the automation to RUNNING if it is still scheduled, due, and at this version."""
    now = ctx.now()
    result = ctx.session.execute(
        update(Automation)
        .where(
            Automation.id == automation_id,
            Automation.version == version,
            Automation.status == AutomationStatus.SCHEDULED,
            Automation.trigger_at <= now,
        )
        .values(
            status=AutomationStatus.RUNNING,
            lease_until=now + ctx.engine.lease,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    ctx.session.commit()
    return result.rowcount == 1


def run(ctx: Context, automation_id: int, version: int) -> Automation | None:
    """Execute the automation if this delivery wins the claim; None if another did (or the
    message is stale)."""
    if not claim(ctx, automation_id, version):
        return None
    automation = ctx.session.get(Automation, automation_id, populate_existing=True)
    assert automation is not None
    try:
        verdict = perform(ctx, automation)
        if verdict.defer_until is not None:
            return deferred(ctx, automation, verdict)
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            # The database went away: not the action's fault. The automation stays RUNNING
            # and is taken back when its lease expires.
            raise
        ctx.rollback()
        return failed_again(ctx, automation_id, exc)
    except Exception as exc:  # any failure of the action: retry later, then give up loudly
        ctx.rollback()
        return failed_again(ctx, automation_id, exc)
    now = ctx.now()
    automation.status = AutomationStatus.COMPLETED if verdict.run else AutomationStatus.SKIPPED
    automation.executed_at = now
    automation.detail = verdict.reason
    if automation.retry_count:
        n = automation.retry_count
        automation.detail += f" (after {n} {'retry' if n == 1 else 'retries'})"
    automation.lease_until = None
    automation.error = None
    automation.updated_at = now
    log(ctx, automation, LogStatus(automation.status), automation.detail)
    ctx.commit()
    return automation


def deferred(ctx: Context, automation: Automation, verdict: rules.Verdict) -> Automation:
    """Not now: scheduled again, at a new version, for the moment the verdict names."""
    assert verdict.defer_until is not None
    automation.status = AutomationStatus.SCHEDULED
    automation.trigger_at = verdict.defer_until
    automation.version += 1
    automation.lease_until = None
    automation.updated_at = ctx.now()
    log(ctx, automation, LogStatus.DEFERRED, verdict.reason)
    send_when_due(ctx, automation)
    ctx.commit()
    return automation


def failed_again(ctx: Context, automation_id: int, exc: BaseException) -> Automation:
    automation = ctx.session.get(Automation, automation_id, populate_existing=True)
    assert automation is not None
    failed(ctx, automation, exc)
    ctx.commit()
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
        assert template is not None
        held_back = emails.held_back(ctx, automation, client, template)
        if held_back is not None:
            return held_back
        sent = emails.send_for(ctx, automation, client, template)
        if not sent:
            return rules.skip("nobody to send it to (no active admin)")
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
        made = ctx.engine.generator.generate(request)
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
        month=ctx.program.month(month),
        program_name=ctx.program.name,
        earlier=earlier,
        notes=notes,
    )


def failed(ctx: Context, automation: Automation, exc: BaseException) -> None:
    """A failed attempt is retried later; when its retries are spent it fails for good and the
    admins hear about it."""
    now = ctx.now()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    logger.warning("automation %s failed: %s", automation.id, error)
    when = rules.retry_at(now, automation.retry_count, automation.max_retries, ctx.program)
    automation.error = error
    automation.lease_until = None
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


def expired_leases(ctx: Context) -> int:
    """Take back RUNNING automations whose worker died (lease expired): scheduled again, at a
    new version, so the sweep re-sends them."""
    now = ctx.now()
    result = ctx.session.execute(
        update(Automation)
        .where(
            Automation.status == AutomationStatus.RUNNING,
            Automation.lease_until < now,
        )
        .values(
            status=AutomationStatus.SCHEDULED,
            version=Automation.version + 1,
            lease_until=None,
            dispatched_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
