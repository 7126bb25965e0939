"""The names the engine speaks: automation types and statuses, deliverable statuses, templates."""

from __future__ import annotations

from enum import StrEnum


class AutomationType(StrEnum):
    GENERATE_DELIVERABLE = "GENERATE_DELIVERABLE"
    SEND_REMINDER = "SEND_REMINDER"
    SEND_NOTIFICATION = "SEND_NOTIFICATION"
    SEND_CELEBRATION = "SEND_CELEBRATION"
    ESCALATE_TO_ADMIN = "ESCALATE_TO_ADMIN"
    UPDATE_STATUS = "UPDATE_STATUS"


class AutomationStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


PENDING = (AutomationStatus.SCHEDULED,)
FINISHED = (
    AutomationStatus.COMPLETED,
    AutomationStatus.SKIPPED,
    AutomationStatus.FAILED,
    AutomationStatus.CANCELLED,
)


class LogStatus(StrEnum):
    """What one execution, skip or cancellation came to (one `automation_logs` row)."""

    COMPLETED = "COMPLETED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"
    DEFERRED = "DEFERRED"  # held back by the frequency cap, to go at a later moment
    CANCELLED = "CANCELLED"


class Source(StrEnum):
    """Who put an automation on the schedule."""

    PLAN = "PLAN"  # the journey plan made at enrollment
    EVENT = "EVENT"  # a rule reacting to an event (approval, hold, failure...)
    MANUAL = "MANUAL"  # an admin, by hand


class DeliverableStatus(StrEnum):
    GENERATING = "GENERATING"
    PENDING_REVIEW = "PENDING_REVIEW"
    DELIVERED = "DELIVERED"
    REJECTED = "REJECTED"
    SKIPPED = "SKIPPED"


class Template(StrEnum):
    REMINDER_UPCOMING = "REMINDER_UPCOMING"
    AT_RISK_CHECKIN = "AT_RISK_CHECKIN"
    DELIVERABLE_READY = "DELIVERABLE_READY"
    REMINDER_OVERDUE = "REMINDER_OVERDUE"
    ADMIN_ESCALATION = "ADMIN_ESCALATION"
    MONTH_COMPLETE = "MONTH_COMPLETE"
    HALFWAY = "HALFWAY"
    PROGRAM_COMPLETE = "PROGRAM_COMPLETE"
    PAUSE_CONFIRMATION = "PAUSE_CONFIRMATION"
    RESUME_REMINDER = "RESUME_REMINDER"
    WELCOME_BACK = "WELCOME_BACK"
    REVISION_REMINDER = "REVISION_REMINDER"
    REVIEW_NEEDED = "REVIEW_NEEDED"
    AUTOMATION_FAILURE = "AUTOMATION_FAILURE"
    WEEKLY_DIGEST = "WEEKLY_DIGEST"


class Lane(StrEnum):
    """How an automation travels to a worker: generations (slow, outside services) have a queue
    of their own so that they never hold up emails, and within it a generation someone asked
    for now goes before scheduled ones."""

    AUTOMATIONS = "automations"
    GENERATION = "generation"
    GENERATION_NOW = "generation-now"


def lane(type_: str, *, urgent: bool = False) -> Lane:
    """The lane of an automation of type `type_`; `urgent` when a person asked for it now."""
    if type_ != AutomationType.GENERATE_DELIVERABLE:
        return Lane.AUTOMATIONS
    return Lane.GENERATION_NOW if urgent else Lane.GENERATION


# Who receives each template: the client, or the admins.
ADMIN_TEMPLATES = frozenset(
    {
        Template.ADMIN_ESCALATION,
        Template.REVISION_REMINDER,
        Template.REVIEW_NEEDED,
        Template.AUTOMATION_FAILURE,
        Template.WEEKLY_DIGEST,
    }
)

# Client emails a client cannot turn off: they carry the service itself (a deliverable, a
# change to their own journey). The rest are optional: preferences and the frequency cap apply.
TRANSACTIONAL_TEMPLATES = frozenset(
    {
        Template.DELIVERABLE_READY,
        Template.PAUSE_CONFIRMATION,
        Template.RESUME_REMINDER,
        Template.WELCOME_BACK,
    }
)
REMINDER_TEMPLATES = frozenset(
    {Template.REMINDER_UPCOMING, Template.REMINDER_OVERDUE, Template.AT_RISK_CHECKIN}
)
CELEBRATION_TEMPLATES = frozenset(
    {Template.MONTH_COMPLETE, Template.HALFWAY, Template.PROGRAM_COMPLETE}
)
OPTIONAL_TEMPLATES = REMINDER_TEMPLATES | CELEBRATION_TEMPLATES

# The automation type that carries each template.
TEMPLATE_TYPE: dict[Template, AutomationType] = {
    Template.REMINDER_UPCOMING: AutomationType.SEND_REMINDER,
    Template.AT_RISK_CHECKIN: AutomationType.SEND_REMINDER,
    Template.REMINDER_OVERDUE: AutomationType.SEND_REMINDER,
    Template.RESUME_REMINDER: AutomationType.SEND_REMINDER,
    Template.REVISION_REMINDER: AutomationType.SEND_REMINDER,
    Template.DELIVERABLE_READY: AutomationType.SEND_NOTIFICATION,
    Template.REVIEW_NEEDED: AutomationType.SEND_NOTIFICATION,
    Template.PAUSE_CONFIRMATION: AutomationType.SEND_NOTIFICATION,
    Template.WELCOME_BACK: AutomationType.SEND_NOTIFICATION,
    Template.AUTOMATION_FAILURE: AutomationType.SEND_NOTIFICATION,
    Template.WEEKLY_DIGEST: AutomationType.SEND_NOTIFICATION,
    Template.MONTH_COMPLETE: AutomationType.SEND_CELEBRATION,
    Template.HALFWAY: AutomationType.SEND_CELEBRATION,
    Template.PROGRAM_COMPLETE: AutomationType.SEND_CELEBRATION,
    Template.ADMIN_ESCALATION: AutomationType.ESCALATE_TO_ADMIN,
}


# -- what people read -------------------------------------------------------------------------
# The codes above are stable (the API, the log filters and the database use them); people read
# the labels below, on every surface alike. docs/architecture.md lists both side by side.


class ClientStatus(StrEnum):
    """Where a client stands (the rule is `scheduler.overview.status_sql`)."""

    ON_TRACK = "on_track"
    OVERDUE = "overdue"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"


STATUS_LABELS: dict[ClientStatus, str] = {
    ClientStatus.ON_TRACK: "on track",
    ClientStatus.OVERDUE: "overdue",
    ClientStatus.ON_HOLD: "on hold",
    ClientStatus.COMPLETED: "completed",
}

# What each automation is called where a person reads it (panel, emails, digest, portal).
TEMPLATE_NAMES: dict[Template, str] = {
    Template.REMINDER_UPCOMING: "Upcoming reminder to client",
    Template.AT_RISK_CHECKIN: "At-risk check-in to client",
    Template.DELIVERABLE_READY: "Deliverable ready email to client",
    Template.REMINDER_OVERDUE: "Overdue reminder to client",
    Template.ADMIN_ESCALATION: "Escalation to admins",
    Template.MONTH_COMPLETE: "Month complete celebration",
    Template.HALFWAY: "Halfway celebration",
    Template.PROGRAM_COMPLETE: "Program complete celebration",
    Template.PAUSE_CONFIRMATION: "Hold confirmation to client",
    Template.RESUME_REMINDER: "Resuming-soon reminder to client",
    Template.WELCOME_BACK: "Welcome back email to client",
    Template.REVISION_REMINDER: "Revision reminder to admins",
    Template.REVIEW_NEEDED: "Review request to admins",
    Template.AUTOMATION_FAILURE: "Failure alert to admins",
    Template.WEEKLY_DIGEST: "Weekly digest to admins",
}
TYPE_NAMES: dict[AutomationType, str] = {
    AutomationType.GENERATE_DELIVERABLE: "Deliverable generation",
    AutomationType.SEND_REMINDER: "Reminder",
    AutomationType.SEND_NOTIFICATION: "Notification",
    AutomationType.SEND_CELEBRATION: "Celebration",
    AutomationType.ESCALATE_TO_ADMIN: "Escalation to admins",
    AutomationType.UPDATE_STATUS: "Hold ends",
}
LOG_STATUS_LABELS: dict[str, str] = {
    "SCHEDULED": "scheduled",
    "RUNNING": "running",
    "COMPLETED": "done",
    "SKIPPED": "skipped",
    "FAILED": "failed",
    "RETRYING": "retrying",
    "DEFERRED": "deferred",
    "CANCELLED": "cancelled",
}


def automation_name(type_: str, template: str | None = None, month: int | None = None) -> str:
    """An automation as a person reads it: "Overdue reminder to client (M2)", "Hold ends"."""
    name = TEMPLATE_NAMES[Template(template)] if template else TYPE_NAMES[AutomationType(type_)]
    return f"{name} (M{month})" if month else name


def status_label(code: str) -> str:
    return STATUS_LABELS[ClientStatus(code)]
