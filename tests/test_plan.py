"""The journey's dates and instants (pure functions)."""

from datetime import UTC, date, datetime

import pytest

from scheduler import plan
from scheduler.program import load_program
from scheduler.vocab import AutomationType, Template

PROGRAM = load_program()
NY = plan.zone("America/New_York")


@pytest.mark.parametrize(
    "month, expected",
    [(1, date(2026, 1, 5)), (2, date(2026, 2, 4)), (4, date(2026, 4, 5)), (8, date(2026, 8, 3))],
)
def test_milestone_is_start_plus_30_days_per_month(month, expected):
    assert plan.milestone_date(date(2026, 1, 5), month, PROGRAM) == expected


def test_plan_has_four_steps_per_month_at_their_offsets():
    steps = plan.journey_steps(PROGRAM)
    assert len(steps) == 4 * 8
    assert len({s.key for s in steps}) == len(steps)
    month3 = [s for s in steps if s.month == 3]
    assert [(s.type, s.template, s.offset_days) for s in month3] == [
        (AutomationType.SEND_REMINDER, Template.REMINDER_UPCOMING, -3),
        (AutomationType.GENERATE_DELIVERABLE, None, 0),
        (AutomationType.SEND_REMINDER, Template.REMINDER_OVERDUE, 3),
        (AutomationType.ESCALATE_TO_ADMIN, Template.ADMIN_ESCALATION, 7),
    ]


def test_step_date_counts_offsets_and_held_days():
    step = plan.step_by_key(PROGRAM)["plan:REMINDER_OVERDUE:2"]
    assert plan.step_date(date(2026, 1, 5), step, PROGRAM) == date(2026, 2, 7)
    assert plan.step_date(date(2026, 1, 5), step, PROGRAM, held_days=14) == date(2026, 2, 21)


def test_send_instant_follows_daylight_saving():
    assert plan.send_instant(date(2026, 1, 15), NY, 9) == datetime(2026, 1, 15, 14, tzinfo=UTC)
    assert plan.send_instant(date(2026, 7, 15), NY, 9) == datetime(2026, 7, 15, 13, tzinfo=UTC)
    # The days of the change: 9:00 is 9:00 local on both sides.
    assert plan.send_instant(date(2026, 3, 8), NY, 9) == datetime(2026, 3, 8, 13, tzinfo=UTC)
    assert plan.send_instant(date(2026, 11, 1), NY, 9) == datetime(2026, 11, 1, 14, tzinfo=UTC)


def test_send_instant_in_the_spring_gap_lands_after_it():
    # 02:30 does not exist in New York on 2026-03-08: read with the offset before the change.
    at = plan.send_instant(date(2026, 3, 8), NY, 2, 30)
    assert at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert at.astimezone(NY).hour == 3


def test_send_instant_when_ambiguous_is_the_first_occurrence():
    at = plan.send_instant(date(2026, 11, 1), NY, 1, 30)
    assert at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_shift_local_keeps_the_wall_clock_across_dst():
    before = datetime(2026, 3, 1, 14, tzinfo=UTC)  # 09:00 EST
    after = plan.shift_local(before, NY, 14)
    assert after == datetime(2026, 3, 15, 13, tzinfo=UTC)  # 09:00 EDT
    assert after.astimezone(NY).hour == 9


def test_days_between_is_whole_local_days():
    assert plan.days_between(date(2026, 3, 1), date(2026, 3, 15)) == 14
    assert plan.days_between(date(2026, 3, 1), date(2026, 3, 1)) == 0


def test_time_zone_must_be_iana():
    assert plan.zone("Europe/Paris").key == "Europe/Paris"
    for bad in ("Mars/Olympus", "", "../etc/passwd", "Not a zone"):
        with pytest.raises(ValueError, match="unknown time zone"):
            plan.zone(bad)


def test_only_reminders_and_escalations_are_skipped_when_late():
    assert plan.skips_when_late(AutomationType.SEND_REMINDER)
    assert plan.skips_when_late(AutomationType.ESCALATE_TO_ADMIN)
    assert not plan.skips_when_late(AutomationType.GENERATE_DELIVERABLE)
    assert not plan.skips_when_late(AutomationType.SEND_CELEBRATION)
