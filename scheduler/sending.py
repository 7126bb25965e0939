"""Carrying out the automations that send an email, many at a time (a batch a broker message
carried, or one): one read of what the rules need for all their clients, one insert of their
outbox rows, their transmissions one after another over the worker thread's SMTP connection,
one write of how each ended.

Exactly once in effect, as one at a time: the outbox rows are committed before anything is
sent and marked SENDING (committed) before the first transmission, so a re-run sends only what
was not confirmed (and says when a message may have gone twice); every automation is written
back at the version it was claimed at, so a worker that lost its claim changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import scoped_session
from sqlalchemy.orm.exc import StaleDataError

from scheduler import emails, endings, lookups, risk, rules, webhook
from scheduler.engine import Context
from scheduler.errors import Changed
from scheduler.models import Admin, Automation, Email
from scheduler.schedule import give_ids
from scheduler.vocab import OPTIONAL_TEMPLATES, AutomationType, Template

log = logging.getLogger(__name__)

EMAIL_TYPES = frozenset(
    {
        AutomationType.SEND_REMINDER,
        AutomationType.SEND_NOTIFICATION,
        AutomationType.SEND_CELEBRATION,
        AutomationType.ESCALATE_TO_ADMIN,
    }
)


@dataclass
class Plan:
    """What one automation comes to: a verdict that ends it now, or rows to send."""

    automation: Automation
    verdict: rules.Verdict
    rows: list[Email] = field(default_factory=list)
    error: BaseException | None = None  # the transmission (or rendering) that failed


def run(
    ctx: Context, automations: Sequence[Automation], stopping: Callable[[], bool]
) -> tuple[list[Automation], list[int]]:
    """Carry out these claimed email automations. Returns those that ended (completed,
    skipped, deferred, retrying, failed), and the ids of those to hand back because the worker
    was told to stop before their emails went."""
    versions = {a.id: a.version for a in automations}
    # What this unit of work wrote stays as it is in memory across its commits: the rows are
    # this worker's, and every write of an automation says the version it read, so a change
    # by another process shows as a conflict, not as a stale read.
    session = ctx.session() if isinstance(ctx.session, scoped_session) else ctx.session
    keep, session.expire_on_commit = session.expire_on_commit, False
    try:
        return carry_out(ctx, automations, versions, stopping)
    finally:
        session.expire_on_commit = keep


def carry_out(
    ctx: Context,
    automations: Sequence[Automation],
    versions: dict[int, int],
    stopping: Callable[[], bool],
) -> tuple[list[Automation], list[int]]:
    plans = decide(ctx, automations)
    ctx.commit()  # the outbox rows exist before anything is sent
    sending = [p for p in plans if p.rows]
    unsent = [r for p in sending for r in p.rows if r.status != "SENT"]
    emails.begin(ctx, unsent)
    for row in unsent:
        row.attempts += 1
    ctx.commit()
    stopped = transmit(ctx, sending, stopping)
    back = [p.automation.id for p in stopped]
    if stopped:  # not tried: nothing went, they are not "possibly sent"
        for plan in stopped:
            for row in plan.rows:
                if row.status == "SENDING" and row.uncertain_at is None:
                    row.status = "PENDING"
        ctx.commit()
    done = [p for p in plans if p.automation.id not in back]
    return finish(ctx, done, versions), back


def decide(ctx: Context, automations: Sequence[Automation]) -> list[Plan]:
    """Each automation's verdict (the rules, the client's preferences, the frequency cap) and,
    for those that send, their outbox rows (existing ones kept: a re-run sends only what was
    not sent)."""
    clients = {a.client_id: a.client for a in automations}
    # A check-in is decided on the client's kept risk score, refreshed first: the score it
    # decides on is the one every surface shows from then on.
    checkins = {a.client_id for a in automations if a.template == Template.AT_RISK_CHECKIN}
    if checkins:
        risk.refresh(ctx, list(checkins))
    journeys = lookups.journeys(ctx, list(clients.values()), scored=checkins)
    admins = emails.active_admins(ctx)
    ids = [a.id for a in automations]
    recent = emails.recent_optional(ctx, list(clients), ids)
    existing: dict[tuple[int, str], Email] = {
        (row.automation_id, row.to_address): row
        for row in ctx.session.scalars(select(Email).where(Email.automation_id.in_(ids)))
    }
    plans = []
    with ctx.session.no_autoflush:  # the new rows go in one statement, numbered together
        for automation in automations:
            plans.append(plan_for(ctx, automation, journeys, admins, recent, existing))
    give_ids(ctx, [row for plan in plans for row in plan.rows if row.id is None])
    return plans


def plan_for(
    ctx: Context,
    automation: Automation,
    journeys: dict[int, lookups.Journey],
    admins: Sequence[Admin],
    recent: dict[int, list[datetime]],
    existing: dict[tuple[int, str], Email],
) -> Plan:
    """One automation's verdict and, if it sends, its outbox rows (added to the session)."""
    client, journey = automation.client, journeys[automation.client_id]
    template = Template(automation.template or "")
    plan = Plan(automation, lookups.verdict(automation, journey))
    if not plan.verdict.run:
        return plan
    held = emails.held_back(ctx, client, template, recent[client.id])
    if held is not None:
        plan.verdict = held
        return plan
    addresses = emails.recipients(client, template, admins)
    if addresses and template in webhook.ALERTS and ctx.engine.alert_webhook_url:
        addresses.append(webhook.ADDRESS)
    if not addresses:
        plan.verdict = rules.skip("nobody to send it to (no active admin)")
        return plan
    try:
        for address in addresses:
            row = existing.get((automation.id, address))
            if row is None:
                row = emails.outbox_row(ctx, automation, client, template, address, journey)
                ctx.session.add(row)
            plan.rows.append(row)
    except Exception as exc:  # a template that cannot render: the automation fails
        plan.rows, plan.error = [], exc
        return plan
    if template in OPTIONAL_TEMPLATES:
        recent[client.id].append(ctx.now())  # the cap counts this one for the next
    return plan


def transmit(ctx: Context, plans: Sequence[Plan], stopping: Callable[[], bool]) -> list[Plan]:
    """Send every row not yet sent, one after another; record what went in one statement.
    Returns the plans not started because the worker was told to stop."""
    sent: list[Email] = []
    stopped: list[Plan] = []
    for index, plan in enumerate(plans):
        if stopping():
            stopped = list(plans[index:])
            break
        for row in plan.rows:
            if row.status == "SENT":
                continue
            began = time.perf_counter()
            try:
                emails.transmit(ctx, row)
            except Exception as exc:
                emails.failed_send(row, exc)
                plan.error = exc
                continue
            ctx.engine.observer.timed("email", time.perf_counter() - began)
            sent.append(row)
    failures = [p for p in plans if p.error is not None and p not in stopped]
    if failures:
        ctx.commit()  # their errors, and refused rows back to PENDING
    if sent:
        emails.record_sent(ctx, sent)
    return stopped


def finish(ctx: Context, plans: Sequence[Plan], versions: dict[int, int]) -> list[Automation]:
    """How each automation ended, written in one commit; if one of them was taken over by
    another worker meanwhile, each is written on its own (the others' records stand)."""

    def verdict(plan: Plan) -> rules.Verdict:
        note = emails.uncertain(plan.rows)
        if note:
            return rules.Verdict(plan.verdict.run, f"{plan.verdict.reason}; {note}")
        return plan.verdict

    def write(plan: Plan) -> None:
        automation = plan.automation
        if plan.error is not None:
            endings.failed(ctx, automation, plan.error)
        elif plan.verdict.defer_until is not None:
            endings.defer(ctx, automation, plan.verdict)
        else:
            endings.finish_run(ctx, automation, verdict(plan))

    mine = [p for p in plans if endings.mine(ctx, p.automation)]
    mine = [p for p in mine if p.automation.version == versions[p.automation.id]]
    # Most runs simply ended: written together; failures and deferrals one by one.
    together = [p for p in mine if p.error is None and p.verdict.defer_until is None]
    try:
        endings.finish_runs(ctx, [(p.automation, verdict(p)) for p in together])
        for plan in mine:
            if plan not in together:
                write(plan)
        ctx.commit()
        ended = mine
    except (StaleDataError, Changed):
        ctx.rollback()
        ended = []
        for plan in mine:  # one at a time: only the one taken over is dropped
            automation = ctx.session.get(Automation, plan.automation.id, populate_existing=True)
            if automation is None or not endings.mine(ctx, automation):
                endings.lost(ctx, plan.automation.id)
                continue
            if automation.version != versions[automation.id]:
                endings.lost(ctx, automation.id)
                continue
            plan.automation = automation
            try:
                write(plan)
                ctx.commit()
                ended.append(plan)
            except (StaleDataError, Changed):
                endings.lost(ctx, automation.id)
    for plan in ended:
        ctx.engine.observer.executed(plan.automation.type, endings.outcome(plan.automation))
    for plan in plans:
        if plan not in mine:
            endings.lost(ctx, plan.automation.id)
    return [p.automation for p in ended]
