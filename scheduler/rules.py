"""The journey's decisions, as pure functions: whether an automation still has a reason to
act when its moment comes, who hears about it, what a month's completion brings, and when a
failed action is tried again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.program import Program
from scheduler.vocab import (
    ADMIN_TEMPLATES,
    CELEBRATION_TEMPLATES,
    OPTIONAL_TEMPLATES,
    REMINDER_TEMPLATES,
    AutomationType,
    DeliverableStatus,
    Template,
    automation_name,
)

DONE = (DeliverableStatus.DELIVERED, DeliverableStatus.SKIPPED)


@dataclass(frozen=True)
class MonthView:
    """What the rules know about one month: its newest deliverable's status, and whether the
    client has opened it."""

    status: DeliverableStatus | None = None
    opened: bool = False

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass(frozen=True)
class Risk:
    """A client's kept risk score (`scheduler.risk.kept_scores`, written by `risk.refresh`): how
    likely the model found the client to run more than 7 days late at the milestone of
    `month`, the probability from which it calls a client at risk, the reasons (the features
    that raise the score most) and when it was scored. No probability: no model is trained
    yet, or (`unscored`) the client has no kept score."""

    probability: float | None
    threshold: float = 1.0
    reasons: tuple[str, ...] = ()
    month: int | None = None
    scored_at: datetime | None = None
    unscored: bool = False

    @property
    def at_risk(self) -> bool:
        return self.probability is not None and self.probability >= self.threshold


def percent(share: float) -> int:
    """A share as a whole percent, never rounded up across a threshold (34.9% reads 34%)."""
    return int(100 * share + 1e-9)


@dataclass(frozen=True)
class Verdict:
    run: bool
    reason: str
    # Not now but at this moment (the frequency cap): the automation is scheduled again.
    defer_until: datetime | None = None


def run(reason: str) -> Verdict:
    return Verdict(True, reason)


def skip(reason: str) -> Verdict:
    return Verdict(False, reason)


def decide(
    type_: AutomationType,
    template: Template | None,
    month: int | None,
    this: MonthView,
    previous: MonthView | None,
    *,
    hold_active: bool = False,
    risk: Risk | None = None,
) -> Verdict:
    """Should this automation act now? `this` is its month, `previous` the month before;
    `risk` the client's kept risk score (None: their program plans no at-risk check-in)."""
    m = f"M{month}" if month else "the journey"
    if type_ is AutomationType.GENERATE_DELIVERABLE:
        if this.status is not None:
            return skip(f"a deliverable for {m} already exists ({this.status})")
        if previous is not None and not previous.done:
            return run(f"generate {m}; M{month - 1} is not delivered yet, admins are alerted")
        return run(f"generate {m}")
    if type_ is AutomationType.UPDATE_STATUS:
        return run("end the hold") if hold_active else skip("the hold has already ended")
    if template is Template.RESUME_REMINDER:
        return run("the hold ends soon") if hold_active else skip("the hold has already ended")
    if template in (Template.REMINDER_UPCOMING, Template.AT_RISK_CHECKIN):
        if this.status is DeliverableStatus.DELIVERED:
            return skip(f"{m} is already delivered")
        if this.status is DeliverableStatus.SKIPPED:
            return skip(f"{m} was skipped")
        if template is Template.AT_RISK_CHECKIN:
            return checkin(risk)
        return run(f"{m} is coming soon")
    if template is Template.REMINDER_OVERDUE:
        if this.status is not DeliverableStatus.DELIVERED:
            return skip(f"{m} is not delivered yet ({this.status or 'not generated'})")
        if this.opened:
            return skip(f"the client has already opened {m}")
        return run(f"{m} is delivered and not opened")
    if type_ is AutomationType.ESCALATE_TO_ADMIN and template is Template.ADMIN_ESCALATION:
        if this.status is DeliverableStatus.SKIPPED:
            return skip(f"{m} was skipped")
        if this.opened:
            return skip(f"the client has opened {m}")
        state = {
            None: "not generated",
            DeliverableStatus.GENERATING: "still generating",
            DeliverableStatus.PENDING_REVIEW: "still in review",
            DeliverableStatus.REJECTED: "rejected, awaiting revision",
            DeliverableStatus.DELIVERED: "delivered, not opened",
        }[this.status]
        return run(f"{m} is overdue: {state}")
    if template is Template.REVISION_REMINDER:
        if this.status is DeliverableStatus.REJECTED:
            return run(f"{m} is still rejected")
        return skip(f"{m} is no longer rejected ({this.status or 'not generated'})")
    return run(f"sent: {automation_name(type_, template)}" if template else automation_name(type_))


def checkin(risk: Risk | None) -> Verdict:
    """The at-risk check-in goes to a client whose kept score (refreshed as it runs) is at
    risk."""
    if risk is None:
        return skip("the client's program version plans no at-risk check-in")
    if risk.unscored:
        return skip("the client has no risk score yet (every active client is scored daily)")
    if risk.probability is None:
        return skip("no risk model is trained yet, so no client counts as at risk")
    score = (
        f"{percent(risk.probability)}% likely to run more than 7 days late "
        f"(at risk from {percent(risk.threshold)}%"
    )
    if not risk.at_risk:
        return skip(f"the client is not at risk: {score})")
    why = f"; why: {', '.join(risk.reasons)}" if risk.reasons else ""
    return run(f"the client is at risk: {score}{why})")


def condition(type_: AutomationType, template: Template | None, month: int | None) -> str:
    """The condition `decide` puts on this step, in plain words ("" when it always acts)."""
    m = f"M{month}" if month else "the month"
    if type_ is AutomationType.GENERATE_DELIVERABLE:
        return f"only if {m} has no deliverable yet"
    if type_ is AutomationType.UPDATE_STATUS or template is Template.RESUME_REMINDER:
        return "only if the hold is still open"
    if template is Template.REMINDER_UPCOMING:
        return f"only if {m} is not delivered or skipped by then"
    if template is Template.AT_RISK_CHECKIN:
        return (
            f"only if the client is at risk then (their risk score, refreshed as it runs, at "
            f"or above the model's threshold) and {m} is not delivered or skipped"
        )
    if template is Template.REMINDER_OVERDUE:
        return f"only if {m} is delivered and not opened by then"
    if template is Template.ADMIN_ESCALATION:
        return f"only if the client has not opened {m} by then (and it was not skipped)"
    if template is Template.REVISION_REMINDER:
        return f"only if {m} is still rejected then"
    return ""


def settled(verdict: Verdict, template: Template | None, this: MonthView) -> bool:
    """Whether a verdict reached now still holds when the step's moment comes. A skip stays a
    skip (a delivered month stays delivered, an open is never undone), except an overdue
    reminder's for a month not delivered yet (it may be delivered by then) and an at-risk
    check-in's for a month not done (the client's risk score may change by then)."""
    if verdict.run:
        return False
    if template is Template.AT_RISK_CHECKIN:
        return this.done
    return not (
        template is Template.REMINDER_OVERDUE and this.status is not DeliverableStatus.DELIVERED
    )


def escalate_behind(previous: MonthView | None) -> bool:
    """Generating a month alerts admins when the month before is neither delivered nor skipped."""
    return previous is not None and not previous.done


def celebration_for(month: int, program: Program) -> Template:
    """Completing a month: the program-complete celebration for the last month, the halfway
    one for the halfway month, the month-complete one otherwise."""
    if month == program.length:
        return Template.PROGRAM_COMPLETE
    if month == program.schedule.halfway_month:
        return Template.HALFWAY
    return Template.MONTH_COMPLETE


def to_admins(template: Template) -> bool:
    return template in ADMIN_TEMPLATES


def retry_at(
    now: datetime, retries_so_far: int, max_retries: int, program: Program
) -> datetime | None:
    """When a failed action is tried again, or None when its retries are used up."""
    if retries_so_far >= max_retries:
        return None
    return now + timedelta(minutes=program.schedule.retry_delay_minutes)


def progress(months: Mapping[int, MonthView], program: Program) -> tuple[int, int, int]:
    """(months done, current month, percent done). The current month is the latest month that
    has a deliverable (generated or delivered; a skipped month is passed over, not worked on),
    or the first month not skipped before any."""
    done = sum(1 for view in months.values() if view.done)
    skipped = {m for m, view in months.items() if view.status is DeliverableStatus.SKIPPED}
    started = [m for m, view in months.items() if view.status is not None and m not in skipped]
    current = max(started, default=1)
    while current in skipped and current < program.length:
        current += 1
    return done, min(current, program.length), round(100 * done / program.length)


def complete(months: Mapping[int, MonthView], program: Program) -> bool:
    return all(months.get(m, MonthView()).done for m in range(1, program.length + 1))


# -- what a client agreed to receive -----------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    reminders: bool = True
    celebrations: bool = True
    unsubscribed: bool = False


def unwanted(template: Template, prefs: Preferences) -> str | None:
    """Why the client does not want this email, or None when it goes. Transactional emails
    (and admin emails) always go."""
    if template not in OPTIONAL_TEMPLATES:
        return None
    if prefs.unsubscribed:
        return "the client unsubscribed from optional emails"
    if template in REMINDER_TEMPLATES and not prefs.reminders:
        return "the client turned reminders off"
    if template in CELEBRATION_TEMPLATES and not prefs.celebrations:
        return "the client turned celebrations off"
    return None


CAP_WINDOW = timedelta(hours=24)


def capped_until(
    template: Template, sent: Sequence[datetime], cap: int, now: datetime
) -> datetime | None:
    """Frequency cap: at most `cap` optional emails to one client in any rolling 24 hours.
    `sent` holds when the client's optional emails went (any order). Returns when this one may
    go, if not now."""
    if template not in OPTIONAL_TEMPLATES:
        return None
    recent = sorted(at for at in sent if now - CAP_WINDOW < at <= now)
    if len(recent) < cap:
        return None
    # The window frees a place when the oldest email that keeps it full leaves it.
    return recent[len(recent) - cap] + CAP_WINDOW
