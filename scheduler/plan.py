"""Dates and instants of a journey: pure functions over the program and a client's calendar.

A journey step happens on a local date (the client's time zone) at the send hour. Holds push
every pending step later by the whole local days the client was paused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.program import Program
from scheduler.vocab import AutomationType, Template


@dataclass(frozen=True)
class Step:
    """One automation of the journey plan: what, for which month, how far from the milestone."""

    type: AutomationType
    month: int
    template: Template | None
    offset_days: int

    @property
    def key(self) -> str:
        """Identifies the step among a client's automations (one of each, ever)."""
        return step_key(self.template or self.type, self.month)


def step_key(what: str, month: int) -> str:
    """The key of the plan's step `what` (a template, or a type without one) for `month`."""
    return f"plan:{what}:{month}"


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; ValueError with a clear message if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Paris"
        ) from None


def milestone_date(start: date, month: int, program: Program) -> date:
    """Month `month`'s milestone: start + length * (month - 1) days."""
    return start + timedelta(days=program.schedule.month_length_days * (month - 1))


def journey_steps(program: Program) -> list[Step]:
    """Every step of the plan, in month order: the at-risk check-in (when the program sets
    `at_risk_checkin_days`; from M2 on, since M1 has no history to judge by), upcoming,
    generation, overdue, escalation."""
    s = program.schedule
    steps: list[Step] = []
    for month in range(1, program.length + 1):
        if s.at_risk_checkin_days and month > 1:
            steps.append(
                Step(
                    AutomationType.SEND_REMINDER,
                    month,
                    Template.AT_RISK_CHECKIN,
                    -s.at_risk_checkin_days,
                )
            )
        steps += [
            Step(
                AutomationType.SEND_REMINDER,
                month,
                Template.REMINDER_UPCOMING,
                -s.upcoming_reminder_days_before,
            ),
            Step(AutomationType.GENERATE_DELIVERABLE, month, None, 0),
            Step(
                AutomationType.SEND_REMINDER,
                month,
                Template.REMINDER_OVERDUE,
                s.overdue_reminder_days_after,
            ),
            Step(
                AutomationType.ESCALATE_TO_ADMIN,
                month,
                Template.ADMIN_ESCALATION,
                s.escalation_days_after,
            ),
        ]
    return steps


def step_by_key(program: Program) -> dict[str, Step]:
    return {step.key: step for step in journey_steps(program)}


def step_offsets(program: Program) -> list[tuple[Step, timedelta]]:
    """Every step of the plan with its distance from the start date (before holds): what
    enrollment plans and what a new program version replans."""
    epoch = date(2000, 1, 1)
    return [(step, step_date(epoch, step, program) - epoch) for step in journey_steps(program)]


def step_date(start: date, step: Step, program: Program, held_days: int = 0) -> date:
    """The local date of a step, after `held_days` of holds."""
    return milestone_date(start, step.month, program) + timedelta(days=step.offset_days + held_days)


def send_instant(day: date, tz: ZoneInfo, hour: int, minute: int = 0) -> datetime:
    """`hour`:`minute` local time on `day` in `tz`, as a UTC instant.

    DST: a wall time that does not exist (spring forward) is read with the offset in force
    before the change, so it lands just after the gap; an ambiguous one (fall back) is its
    first occurrence.
    """
    local = datetime.combine(day, time(hour, minute), tzinfo=tz)
    return local.astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def shift_local(instant: datetime, tz: ZoneInfo, days: int) -> datetime:
    """The same wall-clock time `days` local days later (DST-correct), in UTC."""
    local = instant.astimezone(tz)
    moved = datetime.combine(local.date() + timedelta(days=days), local.time(), tzinfo=tz)
    return moved.astimezone(UTC)


def days_between(first: date, last: date) -> int:
    """Whole local days from `first` to `last` (0 when the same day)."""
    return max(0, (last - first).days)


def skips_when_late(type_: AutomationType) -> bool:
    """Reminders and escalations are time-bound: planned after their moment, they are skipped,
    never sent late. Everything else (generation, notifications, celebrations) runs at once."""
    return type_ in (AutomationType.SEND_REMINDER, AutomationType.ESCALATE_TO_ADMIN)
