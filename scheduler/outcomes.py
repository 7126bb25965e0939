"""What an operation did, as people are told it: for each automation it created, moved or
ended, what will actually happen to it (sent now, after the grace period, held until the hold
ends, skipped because..., deferred by the frequency cap until..., scheduled for...). The
panel's messages, the API's `effects` and the command line's output all come from here, and
so does "what comes next" on a client's pages: one function decides what to tell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from scheduler import emails, lookups, plan, rules, timeline
from scheduler.engine import Context
from scheduler.lookups import Journey, at_send_hour, client_zone, journeys
from scheduler.models import Automation, Client, Email, Hold
from scheduler.vocab import (
    OPTIONAL_TEMPLATES,
    AutomationStatus,
    AutomationType,
    Template,
    automation_name,
)


@dataclass(frozen=True)
class Expected:
    """What will happen to one automation, as things stand."""

    automation_id: int
    name: str  # "Deliverable ready email to client (M1)"
    # now, grace, scheduled, held, waiting, deferred, skipped, cancelled, done, failed, running
    state: str
    at: datetime | None  # when it is expected to act, if that is known
    text: str  # "held until the hold ends on Monday 12 January 2026"
    # The condition the engine puts on it when its moment comes (`rules.condition`), if any.
    condition: str = ""

    @property
    def line(self) -> str:
        return f"{self.name}: {self.text}"


@dataclass(frozen=True)
class Outcome:
    """An operation's result and what it did to the schedule."""

    result: Any
    effects: list[Expected] = field(default_factory=list)

    def told(self, headline: str, most: int = 5) -> str:
        """The headline, then each effect (the first `most` of them): what a person is told
        after the action."""
        if not self.effects:
            return headline
        lines = [e.line for e in self.effects[:most]]
        if len(self.effects) > most:
            lines.append(f"and {len(self.effects) - most} more, in the schedule below")
        return headline + " " + "; ".join(lines) + "."


def carry_out(ctx: Context, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """Run `operation(ctx, *args, **kwargs)` and tell what it did to the schedule."""
    start = len(ctx.touched)
    result = operation(ctx, *args, **kwargs)
    ctx.session.flush()
    touched: dict[int, Automation] = {}
    for automation in ctx.touched[start:]:
        touched[automation.id] = automation
    return Outcome(result, expectations(ctx, list(touched.values())))


def expectations(ctx: Context, automations: list[Automation]) -> list[Expected]:
    clients = list({a.client_id: a.client for a in automations}.values())
    found = journeys(ctx, clients)
    return [
        expect(ctx, a, a.client, found[a.client_id].open_hold, found[a.client_id])
        for a in automations
    ]


def local(ctx: Context, client: Client, instant: datetime) -> str:
    """An instant in the client's zone, the way their emails write dates, with the time."""
    moment = instant.astimezone(client_zone(client))
    return f"{emails.day(moment.date(), client.timezone)} at {moment:%H:%M}"


def expect(
    ctx: Context,
    automation: Automation,
    client: Client,
    hold: Hold | None,
    journey: Journey | None = None,
) -> Expected:
    """What will happen to `automation`: THE answer every surface gives. A pending step that
    will not act as things stand says why, in the words the engine will log when it skips it
    (`lookups.verdict`, the engine's own decision)."""
    name = automation_name(automation.type, automation.template, automation.month)
    template = Template(automation.template) if automation.template else None
    condition = rules.condition(AutomationType(automation.type), template, automation.month)

    def said(state: str, text: str, at: datetime | None = None) -> Expected:
        return Expected(automation.id, name, state, at, text, condition)

    status = automation.status
    if status == AutomationStatus.SKIPPED:
        return said("skipped", f"skipped because {automation.detail}")
    if status == AutomationStatus.CANCELLED:
        return said("cancelled", f"cancelled: {automation.detail}")
    if status == AutomationStatus.COMPLETED:
        return said("done", "done", automation.executed_at)
    if status == AutomationStatus.FAILED:
        return said("failed", f"failed: {automation.error or automation.detail}")
    if status == AutomationStatus.RUNNING:
        return said("running", "running now")
    now = ctx.now()
    at = automation.trigger_at
    journey = journey or lookups.journey(ctx, client)
    verdict = lookups.verdict(automation, journey)
    month = automation.month
    this = journey.views.get(month, rules.MonthView()) if month else rules.MonthView()
    if rules.settled(verdict, template, this) or (not verdict.run and at <= now):
        return said("skipped", f"will be skipped because {verdict.reason}", at)
    # A check-in is decided on the client's risk score, refreshed when it runs: foretold on
    # the kept score, the one the journey page's risk card shows.
    standing = ""
    if template is Template.AT_RISK_CHECKIN:
        if not verdict.run:
            text = f"on the latest risk score, will be skipped because {verdict.reason}"
            return said("skipped", text, at)
        standing = f"; on the latest risk score it goes, because {verdict.reason}"
    if client.paused_at is not None and automation.hold_id is None:
        shift = timeline.hold_shift(hold)
        if hold is None or shift is None:
            return said("waiting", "held: it waits for the hold to end (no end date is set)")
        assert hold.until is not None
        moved = plan.shift_local(at, client_zone(client), shift)
        ends = at_send_hour(ctx, client, hold.until)
        until = emails.day(hold.until, client.timezone)
        if moved >= ends:
            return said(
                "held",
                f"held until the hold ends on {until}: goes {local(ctx, client, moved)}",
                moved,
            )
        if plan.skips_when_late(AutomationType(automation.type)):
            return said(
                "held", f"held by the hold, and skipped when it ends on {until}: too late by then"
            )
        return said("held", f"held until the hold ends on {until}, then goes at once", ends)
    unwanted = rules.unwanted(template, emails.preferences(client)) if template else None
    if unwanted is not None:
        return said("skipped", f"will be skipped because {unwanted}", at)
    if at <= now:
        capped = frequency_cap(ctx, automation, client, template, now)
        if capped is not None:
            return said(
                "deferred",
                f"deferred by the frequency cap until {local(ctx, client, capped)}",
                capped,
            )
        return said("now", "goes now", now)
    grace = ctx.engine.action_email_grace
    if grace and automation.source != "PLAN" and at - now <= grace:
        minutes = max(1, round(grace.total_seconds() / 60))
        return said(
            "grace",
            f"goes at {local(ctx, client, at)}, after a {minutes}-minute grace period "
            "(undo before then and nothing is sent)",
            at,
        )
    return said("scheduled", f"scheduled for {local(ctx, client, at)}{standing}", at)


def frequency_cap(
    ctx: Context, automation: Automation, client: Client, template: Template | None, now: datetime
) -> datetime | None:
    """When the frequency cap would let this email go, if not now (`rules.capped_until`)."""
    if template is None or template not in OPTIONAL_TEMPLATES:
        return None
    sent = ctx.session.scalars(
        select(Email.created_at).where(
            Email.client_id == client.id,
            Email.template.in_([str(t) for t in OPTIONAL_TEMPLATES]),
            Email.created_at > now - rules.CAP_WINDOW,
        )
    ).all()
    return rules.capped_until(template, sent, ctx.frequency_cap_of(client), now)


def upcoming(
    ctx: Context, client: Client, automations: list[Automation], journey: Journey | None = None
) -> list[Expected]:
    """What will happen to each of the client's pending automations."""
    journey = journey or lookups.journey(ctx, client)
    hold = journey.open_hold if client.paused_at else None
    return [expect(ctx, a, client, hold, journey) for a in automations]


def next_for(
    ctx: Context, client: Client, automations: list[Automation], journey: Journey | None = None
) -> Expected | None:
    """What comes next for the client: the first pending automation that will act, by when it
    is expected to (what waits for a hold with no end date comes last)."""
    found = [e for e in upcoming(ctx, client, automations, journey) if e.state != "skipped"]
    if not found:
        return None
    return min(found, key=lambda e: (e.at is None, e.at or datetime.max.replace(tzinfo=None)))
