"""The admin controls: hold and resume, adjust the start date, skip a month, cancel, trigger
now, and schedule by hand. Each applies the rules to the database, leaves the commit to its
caller, and refuses with a clear error when it cannot be done."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select, update

from scheduler import audit, emails, metrics, plan, rules
from scheduler.engine import Context
from scheduler.errors import Conflict, Invalid
from scheduler.inputs import check_date, check_month
from scheduler.lookups import (
    at_send_hour,
    client_zone,
    latest_deliverable,
    local_today,
    open_hold,
    pending,
)
from scheduler.models import Admin, Automation, Client, ClientChange, Deliverable, Hold
from scheduler.schedule import after_grace, finish, move, notify, refresh_progress, schedule
from scheduler.vocab import (
    TEMPLATE_TYPE,
    AutomationStatus,
    AutomationType,
    DeliverableStatus,
    Source,
    Template,
    automation_name,
)


def refuse_on_hold(client: Client) -> None:
    if client.paused_at is not None:
        raise Conflict(f"{client.name} is on hold: resume the journey first")


def pause(ctx: Context, client: Client, *, until: date | None = None, reason: str = "") -> Hold:
    """Put the client on hold: nothing of the journey fires until they resume."""
    if client.completed_at is not None:
        raise Conflict(f"{client.name} has completed the program; there is nothing to pause")
    if client.paused_at is not None:
        raise Conflict(f"{client.name} is already on hold since {client.paused_at:%Y-%m-%d}")
    today = local_today(ctx, client)
    if until is not None:
        check_date(until, "until")
    if until is not None and until <= today:
        raise Invalid(f"until: must be after today ({today}) in the client's time zone", "until")
    now = ctx.now()
    hold = Hold(
        client_id=client.id,
        reason=str(reason or "").strip(),
        started_at=now,
        start_date=today,
        until=until,
    )
    ctx.session.add(hold)
    client.paused_at = now
    client.updated_at = now
    ctx.session.flush()
    # Every message already sent for the client's pending automations goes stale.
    ctx.session.execute(
        update(Automation)
        .where(
            Automation.client_id == client.id,
            Automation.status == AutomationStatus.SCHEDULED,
        )
        .values(version=Automation.version + 1, dispatched_at=None, updated_at=now),
        execution_options={"synchronize_session": "fetch"},
    )
    notify(
        ctx,
        client,
        Template.PAUSE_CONFIRMATION,
        f"hold:{hold.id}:confirm",
        hold=hold,
        at=after_grace(ctx),
    )
    if until is not None:
        schedule(
            ctx,
            client,
            AutomationType.UPDATE_STATUS,
            at_send_hour(ctx, client, until),
            source=Source.EVENT,
            key=f"hold:{hold.id}:end",
            payload={"status": "ACTIVE"},
            hold=hold,
        )
        remind = until - timedelta(days=ctx.program_of(client).schedule.resume_reminder_days_before)
        schedule(
            ctx,
            client,
            AutomationType.SEND_REMINDER,
            at_send_hour(ctx, client, remind),
            source=Source.EVENT,
            template=Template.RESUME_REMINDER,
            key=f"hold:{hold.id}:remind",
            hold=hold,
            planned=True,
        )
    audit.record(
        ctx,
        client,
        "on hold",
        {"on_hold": False},
        {"on_hold": True, "until": until.isoformat() if until else None, "reason": hold.reason},
    )
    return hold


def resume(ctx: Context, client: Client, *, ended_by: str = "admin") -> Hold:
    """End the hold: every pending automation moves later by the whole local days paused."""
    hold = open_hold(ctx, client)
    if client.paused_at is None or hold is None:
        raise Conflict(f"{client.name} is not on hold")
    today = local_today(ctx, client)
    days = plan.days_between(hold.start_date, today)
    now = ctx.now()
    hold.ended_at, hold.end_date, hold.days, hold.ended_by = now, today, days, ended_by
    client.paused_at = None
    client.held_days += days
    client.updated_at = now
    tz = client_zone(client)
    # Undone before the client heard of it (the confirmation still waits out its grace
    # period): the client hears nothing, neither of the hold nor of its end.
    unannounced = False
    for automation in pending(ctx, client):
        if automation.hold_id == hold.id:
            if automation.template == Template.PAUSE_CONFIRMATION:
                unannounced = True
                reason = "the hold was undone before the client was told of it"
            else:
                reason = "the hold ended"
            finish(ctx, automation, AutomationStatus.CANCELLED, reason)
        else:
            move(ctx, automation, plan.shift_local(automation.trigger_at, tz, days))
    if not unannounced:
        notify(
            ctx,
            client,
            Template.WELCOME_BACK,
            f"hold:{hold.id}:welcome",
            payload={"days": days},
            at=after_grace(ctx) if ended_by == "admin" else None,
        )
    audit.record(ctx, client, "hold ended", {"on_hold": True}, {"on_hold": False, "days": days})
    return hold


def adjust(ctx: Context, client: Client, start_date: date) -> int:
    """Move the program start: every pending step of the plan is recomputed from the new date
    (holds already taken still count). Returns how many automations moved."""
    check_date(start_date, "start_date")
    if client.completed_at is not None:
        raise Conflict(f"{client.name} has completed the program; the start date is history")
    if start_date == client.start_date:
        return 0
    audit.record(
        ctx,
        client,
        "start date",
        {"start_date": client.start_date.isoformat()},
        {"start_date": start_date.isoformat()},
    )
    if (start_date.year, start_date.month) != (client.start_date.year, client.start_date.month):
        metrics.forget_client(ctx, client.id)  # their kept metrics move to another cohort
    client.start_date = start_date
    client.updated_at = ctx.now()
    steps = plan.step_by_key(ctx.program_of(client))
    moved = 0
    plan_rows = ctx.session.scalars(
        select(Automation).where(
            Automation.client_id == client.id,
            Automation.source == Source.PLAN,
            Automation.status.in_([AutomationStatus.SCHEDULED, AutomationStatus.SKIPPED]),
        )
    ).all()
    for automation in plan_rows:
        step = steps.get(automation.key or "")
        if step is None:
            continue
        day = plan.step_date(start_date, step, ctx.program_of(client), client.held_days)
        at = at_send_hour(ctx, client, day)
        if automation.status == AutomationStatus.SCHEDULED:
            move(ctx, automation, at)
            moved += 1
        elif automation.executed_at is None and at >= ctx.now():
            # Skipped only because its moment had passed: the new start brings it back.
            automation.status = AutomationStatus.SCHEDULED
            automation.detail = ""
            move(ctx, automation, at)
            moved += 1
    return moved


def skip_month(ctx: Context, client: Client, month: int) -> Deliverable:
    """The month counts as done, without celebration; its automations are cancelled."""
    check_month(ctx, month, client)
    latest = latest_deliverable(ctx, client, month)
    if latest is not None and latest.status in rules.DONE:
        raise Conflict(f"M{month} is already {latest.status}")
    audit.record(
        ctx,
        client,
        f"M{month} skipped",
        {"status": str(latest.status) if latest else None},
        {"status": DeliverableStatus.SKIPPED.value},
    )
    for automation in pending(ctx, client, month=month):
        if automation.hold_id is None:
            finish(ctx, automation, AutomationStatus.CANCELLED, f"M{month} skipped")
    now = ctx.now()
    if latest is None:
        latest = Deliverable(
            client_id=client.id,
            month=month,
            version=1,
            title=ctx.program_of(client).month(month).title,
            content="",
            created_at=now,
        )
        ctx.session.add(latest)
    latest.status = DeliverableStatus.SKIPPED
    latest.reviewed_at = now
    ctx.session.flush()
    refresh_progress(ctx, client)
    return latest


def unskip(ctx: Context, client: Client, month: int) -> int:
    """Undo a skip within the grace period (`ACTION_EMAIL_GRACE_SECONDS`): the month is back
    as it was, and the automations the skip cancelled are scheduled again (a reminder whose
    moment has passed meanwhile is skipped, as when any plan is redrawn). Returns how many
    came back."""
    check_month(ctx, month)
    latest = latest_deliverable(ctx, client, month)
    if latest is None or latest.status != DeliverableStatus.SKIPPED or latest.reviewed_at is None:
        raise Conflict(f"M{month} is not skipped")
    grace = ctx.engine.action_email_grace
    if ctx.now() - latest.reviewed_at > grace:
        raise Conflict(
            f"the skip of M{month} can be undone for {int(grace.total_seconds())} seconds only; "
            "it is past that"
        )
    skipped_at = latest.reviewed_at
    record = ctx.session.scalar(
        select(ClientChange)
        .where(ClientChange.client_id == client.id, ClientChange.what == f"M{month} skipped")
        .order_by(ClientChange.at.desc(), ClientChange.id.desc())
    )
    prior = (record.before or {}).get("status") if record is not None else None
    if prior is None:
        ctx.session.delete(latest)
    else:
        latest.status = prior
        latest.reviewed_at = None
    back = 0
    for automation in ctx.session.scalars(
        select(Automation).where(
            Automation.client_id == client.id,
            Automation.month == month,
            Automation.status == AutomationStatus.CANCELLED,
            Automation.detail == f"M{month} skipped",
            Automation.updated_at >= skipped_at,
        )
    ):
        automation.status = AutomationStatus.SCHEDULED
        automation.detail = ""
        move(ctx, automation, automation.trigger_at, planned=automation.source == Source.PLAN)
        back += 1
    ctx.session.flush()
    refresh_progress(ctx, client)
    audit.record(
        ctx,
        client,
        f"M{month} skip undone",
        {"status": DeliverableStatus.SKIPPED.value},
        {"status": prior},
    )
    return back


def cancel(ctx: Context, automation: Automation, reason: str = "cancelled by an admin") -> None:
    if automation.status != AutomationStatus.SCHEDULED:
        raise Conflict(
            f"automation {automation.id} is {automation.status}; "
            "only a scheduled one can be cancelled"
        )
    finish(ctx, automation, AutomationStatus.CANCELLED, reason)
    audit.record(
        ctx,
        automation.client,
        f"{automation_name(automation.type, automation.template, automation.month)} cancelled",
        {"status": AutomationStatus.SCHEDULED.value},
        {"status": AutomationStatus.CANCELLED.value},
    )


def trigger_notice(ctx: Context, automation: Automation, admins: list[Admin]) -> str:
    """Said before an admin runs an automation now: who will receive what (`admins`: the
    active ones, read once for a page)."""
    name = automation_name(automation.type, automation.template, automation.month)
    if automation.template is None:
        if automation.type == AutomationType.GENERATE_DELIVERABLE:
            return (
                f"Run {name} now? The month is written now and the admins are asked to review it."
            )
        return f"Run {name} now?"
    to = emails.recipients(automation.client, Template(automation.template), admins)
    return f"Send {name} now? It goes to {', '.join(to) or 'nobody (no active admin)'}."


def trigger_now(ctx: Context, automation: Automation) -> None:
    """Run a scheduled automation now, or run a failed one again (with fresh retries)."""
    if automation.hold_id is None:
        refuse_on_hold(automation.client)
    if automation.status == AutomationStatus.FAILED:
        automation.status = AutomationStatus.SCHEDULED
        automation.retry_count = 0
        automation.error = None
        automation.detail = "run again by an admin"
    elif automation.status != AutomationStatus.SCHEDULED:
        raise Conflict(
            f"automation {automation.id} is {automation.status}; "
            "only a scheduled or failed one can be run now"
        )
    automation.payload = {**(automation.payload or {}), "urgent": True}
    before = automation.trigger_at
    move(ctx, automation, ctx.now(), planned=False)
    audit.record(
        ctx,
        automation.client,
        f"{automation_name(automation.type, automation.template, automation.month)} run now",
        {"trigger_at": before.isoformat()},
        {"trigger_at": ctx.now().isoformat()},
    )


def schedule_by_hand(
    ctx: Context,
    client: Client,
    type_: str,
    *,
    at: datetime | None = None,
    month: int | None = None,
    template: str | None = None,
) -> Automation:
    """An admin adds one automation to the client's schedule."""
    try:
        kind = AutomationType(type_)
    except ValueError:
        names = ", ".join(t.value for t in AutomationType if t is not AutomationType.UPDATE_STATUS)
        raise Invalid(f"type: unknown automation type {type_!r} (one of {names})", "type") from None
    if kind is AutomationType.UPDATE_STATUS:
        raise Invalid("type: holds end through pause/resume, not by hand", "type")
    if month is not None:
        check_month(ctx, month, client)
    chosen: Template | None = None
    if kind is AutomationType.GENERATE_DELIVERABLE:
        if month is None:
            raise Invalid("month: a generation needs a month", "month")
        if template:
            raise Invalid("template: a generation sends no template", "template")
    else:
        try:
            chosen = Template(template or "")
        except ValueError:
            raise Invalid(f"template: unknown template {template!r}", "template") from None
        if TEMPLATE_TYPE[chosen] is not kind:
            raise Invalid(
                f"template: {chosen} is sent by {TEMPLATE_TYPE[chosen]}, not {kind}", "template"
            )
        if chosen in (
            Template.WEEKLY_DIGEST,
            Template.AUTOMATION_FAILURE,
            Template.RESUME_REMINDER,
        ):
            raise Invalid(f"template: {chosen} is sent by the engine itself", "template")
        if month is None and chosen not in (Template.PAUSE_CONFIRMATION, Template.WELCOME_BACK):
            raise Invalid(f"month: {chosen} is about a month; give one", "month")
        if (
            chosen is Template.AT_RISK_CHECKIN
            and not ctx.program_of(client).schedule.at_risk_checkin_days
        ):
            raise Invalid(
                f"template: at-risk check-ins are off in {client.name}'s program version "
                f"{client.program_version or 1} (at_risk_checkin_days is 0)",
                "template",
            )
    when = at or ctx.now()
    if when < ctx.now() - timedelta(minutes=1):
        raise Invalid("at: must not be in the past", "at")
    made = schedule(ctx, client, kind, when, source=Source.MANUAL, month=month, template=chosen)
    audit.record(
        ctx,
        client,
        f"{automation_name(made.type, made.template, made.month)} scheduled by hand",
        {"trigger_at": None},
        {"trigger_at": when.isoformat()},
    )
    return made
