"""A client's journey as a person reads it: each month's date and state, what comes next,
and what happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from scheduler import lookups, plan, risk, rules
from scheduler.engine import Context
from scheduler.lookups import Journey, client_zone, month_views
from scheduler.models import Automation, AutomationLog, Client, Hold
from scheduler.vocab import AutomationStatus, AutomationType, DeliverableStatus


@dataclass(frozen=True)
class MonthDate:
    """A month's milestone as the journey stands, with an open hold taken into account: the
    days the hold is expected to move it (its end date known), or `waiting` when the hold has
    no end date and the date moves by however long it lasts."""

    date: date
    moved_by: int = 0
    waiting: bool = False

    @property
    def note(self) -> str:
        """What a person is told beside the date, if anything."""
        if self.waiting:
            return "on hold: dates move when the hold ends"
        if self.moved_by:
            return f"moved {self.moved_by} day{'s' if self.moved_by != 1 else ''} by the hold"
        return ""


@dataclass(frozen=True)
class MonthLine:
    month: int
    title: str
    date: date
    state: str
    opened: bool
    moved_by: int = 0
    waiting: bool = False

    @property
    def note(self) -> str:
        return MonthDate(self.date, self.moved_by, self.waiting).note


@dataclass(frozen=True)
class Timeline:
    client: Client
    done: int
    current: int
    percent: int
    months: list[MonthLine]
    upcoming: list[Automation]
    holds: list[Hold]
    history: list[AutomationLog]
    # The client's kept risk score (`risk.kept_scores`; None: not scored), as the check-in decides.
    risk: rules.Risk | None = None


STATE = {
    None: "scheduled",
    DeliverableStatus.GENERATING: "generating",
    DeliverableStatus.PENDING_REVIEW: "pending review",
    DeliverableStatus.DELIVERED: "delivered",
    DeliverableStatus.REJECTED: "rejected",
    DeliverableStatus.SKIPPED: "skipped",
}


def hold_shift(hold: Hold | None) -> int | None:
    """How many days an open hold will move the pending journey when it ends: its planned
    length, or None when it has no end date (0 when there is no open hold)."""
    if hold is None or hold.ended_at is not None:
        return 0
    if hold.until is None:
        return None
    return plan.days_between(hold.start_date, hold.until)


def projected_dates(
    ctx: Context, client: Client, hold: Hold | None = None, journey: Journey | None = None
) -> dict[int, MonthDate]:
    """THE projection of each month's milestone, for every surface (panel, portal, emails,
    API): the local date of its planned generation, and, while a hold is open (or for `hold`,
    an example one), the days that hold will move the months still to come. Reads `journey`
    when the caller has it (many clients at once), else loads it."""
    journey = journey or lookups.journey(ctx, client)
    tz = client_zone(client)
    program = ctx.program_of(client)
    dates = {
        step.month: plan.step_date(client.start_date, step, program, client.held_days)
        for step in plan.journey_steps(program)
        if step.type is AutomationType.GENERATE_DELIVERABLE
    }
    statuses: dict[int, str] = {}
    for month, trigger_at, status in journey.generations:
        dates[month] = plan.local_date(trigger_at, tz)
        statuses[month] = status
    if hold is None and client.paused_at is not None:
        hold = journey.open_hold
    shift = hold_shift(hold)
    return {month: projected(day, statuses.get(month), shift) for month, day in dates.items()}


def projected(day: date, generation: str | None, shift: int | None) -> MonthDate:
    """A month's milestone as the journey stands: `day` (the local date of its planned
    generation, whose status is `generation`, or the plan's date when it has none), moved by
    an open hold's `shift` (`hold_shift`) while that generation is still to come."""
    if generation != AutomationStatus.SCHEDULED or shift == 0:
        return MonthDate(day)
    if shift is None:
        return MonthDate(day, waiting=True)
    return MonthDate(day + timedelta(days=shift), moved_by=shift)


def month_dates(ctx: Context, client: Client, hold: Hold | None = None) -> dict[int, date]:
    """Each month's projected milestone date (see `projected_dates`)."""
    return {m: d.date for m, d in projected_dates(ctx, client, hold).items()}


def build(ctx: Context, client: Client, *, days_ahead: int = 30, history: int = 50) -> Timeline:
    views = month_views(ctx, client)
    done, current, percent = rules.progress(views, ctx.program_of(client))
    dates = projected_dates(ctx, client)
    paused = client.paused_at is not None
    lines = []
    for month in ctx.program_of(client).months:
        view = views.get(month.number, rules.MonthView())
        state = STATE[view.status]
        if paused and view.status is None:
            state = "on hold"
        when = dates[month.number]
        lines.append(
            MonthLine(
                month.number,
                month.title,
                when.date,
                state,
                view.opened,
                when.moved_by,
                when.waiting,
            )
        )
    horizon: datetime = ctx.now() + timedelta(days=days_ahead)
    upcoming = list(
        ctx.session.scalars(
            select(Automation)
            .where(
                Automation.client_id == client.id,
                Automation.status == AutomationStatus.SCHEDULED,
                Automation.trigger_at <= horizon,
            )
            .order_by(Automation.trigger_at, Automation.id)
        )
    )
    logs = list(
        ctx.session.scalars(
            select(AutomationLog)
            .where(AutomationLog.client_id == client.id)
            .order_by(AutomationLog.at.desc(), AutomationLog.id.desc())
            .limit(history)
        )
    )
    holds = list(
        ctx.session.scalars(
            select(Hold).where(Hold.client_id == client.id).order_by(Hold.started_at)
        )
    )
    score = risk.kept_scores(ctx, [client.id]).get(client.id)
    return Timeline(client, done, current, percent, lines, upcoming, holds, logs, score)


# -- the journey drawn as a strip along the calendar -------------------------------------------


@dataclass(frozen=True)
class Block:
    """A stretch of the strip, in percent of its width."""

    left: float
    width: float
    start: date
    end: date
    label: str = ""
    state: str = ""
    open: bool = False  # a hold with no end date: drawn up to today


@dataclass(frozen=True)
class Strip:
    start: date
    end: date
    months: list[Block]
    holds: list[Block]  # drawn in a lane of their own, under the months: no label is hidden
    today: float | None


def strip(
    months: list[MonthLine], holds: list[Hold], start_date: date, today: date, month_days: int
) -> Strip:
    """The journey as a horizontal strip: each month a block from its (projected) date to the
    next month's, each hold that moved the journey a block from its first day to its last (an
    open one to its planned end, or to today). Everything lies within 0-100%."""
    spans: list[tuple[date, date, bool]] = []
    for h in holds:
        if h.ended_at is not None:
            if not h.days or h.end_date is None or h.end_date <= h.start_date:
                continue  # undone, or ended the day it began: it moved nothing
            spans.append((h.start_date, h.end_date, False))
        else:
            end = h.until or today
            spans.append(
                (h.start_date, max(end, h.start_date + timedelta(days=1)), h.until is None)
            )
    first = min([start_date, months[0].date, *[a for a, _, _ in spans]])
    last = max([months[-1].date + timedelta(days=month_days), *[b for _, b, _ in spans]])
    span = max((last - first).days, 1)

    def pct(day: date) -> float:
        return round(min(max(100 * (day - first).days / span, 0.0), 100.0), 2)

    def block(a: date, b: date, **extra: Any) -> Block:
        left = pct(a)
        return Block(left, round(max(pct(b) - left, min(0.5, 100 - left)), 2), a, b, **extra)

    blocks = []
    for i, m in enumerate(months):
        stop = months[i + 1].date if i + 1 < len(months) else m.date + timedelta(days=month_days)
        blocks.append(block(m.date, max(stop, m.date), label=f"M{m.month}", state=m.state))
    gaps = [block(a, b, label="hold", state="on hold", open=o) for a, b, o in spans]
    return Strip(first, last, blocks, gaps, pct(today) if first <= today <= last else None)
