"""The journey's decisions (pure functions)."""

from datetime import UTC, datetime, timedelta

import pytest

from scheduler import rules
from scheduler.program import load_program
from scheduler.rules import MonthView
from scheduler.vocab import AutomationType as T
from scheduler.vocab import DeliverableStatus as D
from scheduler.vocab import Template

PROGRAM = load_program()
NOTHING = MonthView()
REVIEW = MonthView(D.PENDING_REVIEW)
DELIVERED = MonthView(D.DELIVERED)
OPENED = MonthView(D.DELIVERED, opened=True)
SKIPPED = MonthView(D.SKIPPED)


def decide(type_, template, this, previous=None, **kw):
    return rules.decide(type_, template, 3, this, previous, **kw)


def test_generation_runs_once_per_month():
    assert decide(T.GENERATE_DELIVERABLE, None, NOTHING, DELIVERED).run
    verdict = decide(T.GENERATE_DELIVERABLE, None, REVIEW, DELIVERED)
    assert not verdict.run and "already exists" in verdict.reason


def test_generation_runs_even_when_the_month_before_is_not_delivered():
    verdict = decide(T.GENERATE_DELIVERABLE, None, NOTHING, REVIEW)
    assert verdict.run and "not delivered" in verdict.reason
    assert rules.escalate_behind(REVIEW)
    assert rules.escalate_behind(NOTHING)
    assert not rules.escalate_behind(DELIVERED)
    assert not rules.escalate_behind(SKIPPED)
    assert not rules.escalate_behind(None)


@pytest.mark.parametrize(
    "view, runs", [(NOTHING, True), (REVIEW, True), (DELIVERED, False), (SKIPPED, False)]
)
def test_upcoming_reminder_is_skipped_once_delivered(view, runs):
    assert decide(T.SEND_REMINDER, Template.REMINDER_UPCOMING, view).run is runs


@pytest.mark.parametrize(
    "view, runs", [(NOTHING, False), (REVIEW, False), (DELIVERED, True), (OPENED, False)]
)
def test_overdue_reminder_only_when_delivered_and_unopened(view, runs):
    assert decide(T.SEND_REMINDER, Template.REMINDER_OVERDUE, view).run is runs


@pytest.mark.parametrize(
    "view, runs, words",
    [
        (NOTHING, True, "not generated"),
        (REVIEW, True, "still in review"),
        (DELIVERED, True, "not opened"),
        (OPENED, False, "opened"),
        (SKIPPED, False, "skipped"),
    ],
)
def test_escalation_whenever_the_client_has_not_opened(view, runs, words):
    verdict = decide(T.ESCALATE_TO_ADMIN, Template.ADMIN_ESCALATION, view)
    assert verdict.run is runs and words in verdict.reason


def test_revision_reminder_only_while_still_rejected():
    assert decide(T.SEND_REMINDER, Template.REVISION_REMINDER, MonthView(D.REJECTED)).run
    assert not decide(T.SEND_REMINDER, Template.REVISION_REMINDER, DELIVERED).run
    assert not decide(T.SEND_REMINDER, Template.REVISION_REMINDER, REVIEW).run


def test_hold_automations_need_the_hold_still_on():
    assert decide(T.UPDATE_STATUS, None, NOTHING, hold_active=True).run
    assert not decide(T.UPDATE_STATUS, None, NOTHING, hold_active=False).run
    assert decide(T.SEND_REMINDER, Template.RESUME_REMINDER, NOTHING, hold_active=True).run
    assert not decide(T.SEND_REMINDER, Template.RESUME_REMINDER, NOTHING).run


def test_notifications_and_celebrations_always_run():
    assert decide(T.SEND_CELEBRATION, Template.MONTH_COMPLETE, DELIVERED).run
    assert decide(T.SEND_NOTIFICATION, Template.DELIVERABLE_READY, DELIVERED).run


def test_celebration_choice():
    assert rules.celebration_for(1, PROGRAM) is Template.MONTH_COMPLETE
    assert rules.celebration_for(4, PROGRAM) is Template.HALFWAY
    assert rules.celebration_for(7, PROGRAM) is Template.MONTH_COMPLETE
    assert rules.celebration_for(8, PROGRAM) is Template.PROGRAM_COMPLETE


def test_retry_every_15_minutes_three_times_then_give_up():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules.retry_at(now, 0, 3, PROGRAM) == now + timedelta(minutes=15)
    assert rules.retry_at(now, 2, 3, PROGRAM) == now + timedelta(minutes=15)
    assert rules.retry_at(now, 3, 3, PROGRAM) is None


def test_progress_and_completion():
    months = {1: DELIVERED, 2: SKIPPED, 3: REVIEW}
    assert rules.progress(months, PROGRAM) == (2, 3, 25)
    assert rules.progress({}, PROGRAM) == (0, 1, 0)
    assert not rules.complete(months, PROGRAM)
    assert rules.complete({m: OPENED for m in range(1, 9)}, PROGRAM)


def test_who_receives_what():
    assert rules.to_admins(Template.ADMIN_ESCALATION)
    assert rules.to_admins(Template.REVIEW_NEEDED)
    assert not rules.to_admins(Template.DELIVERABLE_READY)
    assert not rules.to_admins(Template.PAUSE_CONFIRMATION)


# -- preferences and the frequency cap -----------------------------------------------------------


def test_preferences_never_hold_back_transactional_or_admin_emails():
    off = rules.Preferences(reminders=False, celebrations=False, unsubscribed=True)
    for template in (
        Template.DELIVERABLE_READY,
        Template.PAUSE_CONFIRMATION,
        Template.REVIEW_NEEDED,
    ):
        assert rules.unwanted(template, off) is None
    assert rules.unwanted(Template.REMINDER_OVERDUE, rules.Preferences(reminders=False))
    assert rules.unwanted(Template.HALFWAY, rules.Preferences(reminders=False)) is None
    assert rules.unwanted(Template.HALFWAY, rules.Preferences(celebrations=False))
    assert "unsubscribed" in rules.unwanted(Template.REMINDER_UPCOMING, off)


def test_the_cap_counts_a_rolling_day_of_optional_emails():
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    hours = [now - timedelta(hours=h) for h in (1, 5, 30)]
    assert rules.capped_until(Template.MONTH_COMPLETE, hours, 3, now) is None
    assert rules.capped_until(Template.MONTH_COMPLETE, hours, 2, now) == hours[1] + timedelta(
        days=1
    )
    assert rules.capped_until(Template.MONTH_COMPLETE, hours, 1, now) == hours[0] + timedelta(
        days=1
    )
    assert rules.capped_until(Template.DELIVERABLE_READY, hours, 1, now) is None


def test_a_skipped_month_is_not_the_current_month():
    assert rules.progress({1: REVIEW, 8: SKIPPED}, PROGRAM) == (1, 1, 12)
    assert rules.progress({1: SKIPPED, 2: SKIPPED}, PROGRAM) == (2, 3, 25)
    assert rules.progress({1: DELIVERED, 2: REVIEW}, PROGRAM) == (1, 2, 12)
