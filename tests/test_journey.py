"""The journey rules, applied to the database (SQLite and PostgreSQL), through the real
engine: enrollment, events, admin controls, retries."""

from datetime import UTC, date, datetime, timedelta

import pytest

from scheduler import controls, enrollment, errors, execute, lookups, review
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import AutomationType as T
from scheduler.vocab import DeliverableStatus as D
from scheduler.vocab import Template

NY = "America/New_York"


def at(*args):
    return datetime(*args, tzinfo=UTC)


# -- enrollment ---------------------------------------------------------------------------------


def test_enrollment_plans_every_step_at_the_send_hour_in_the_client_zone(harness):
    client = harness.enroll(date(2026, 1, 5), NY)
    planned = harness.automations(client)
    assert len(planned) == 32
    assert all(a.status == S.SCHEDULED for a in planned)
    gen = {a.month: a.trigger_at for a in planned if a.type == T.GENERATE_DELIVERABLE}
    assert gen[1] == at(2026, 1, 5, 14)  # 09:00 EST
    assert gen[4] == at(2026, 4, 5, 13)  # 09:00 EDT
    assert gen[8] == at(2026, 8, 3, 13)
    upcoming2 = harness.one(client, template=Template.REMINDER_UPCOMING, month=2)
    assert upcoming2.trigger_at == at(2026, 2, 1, 14)
    escalation1 = harness.one(client, template=Template.ADMIN_ESCALATION, month=1)
    assert escalation1.trigger_at == at(2026, 1, 12, 14)


def test_enrolling_late_skips_past_reminders_and_generates_at_once(harness):
    harness.clock.set(at(2026, 2, 10, 12))
    client = harness.enroll(date(2026, 1, 5), NY)  # M2's milestone (Feb 4) is past
    skipped = harness.automations(client, status=S.SKIPPED)
    assert {(a.template, a.month) for a in skipped} == {
        (Template.REMINDER_UPCOMING, 1),
        (Template.REMINDER_OVERDUE, 1),
        (Template.ADMIN_ESCALATION, 1),
        (Template.REMINDER_UPCOMING, 2),
        (Template.REMINDER_OVERDUE, 2),
    }
    assert all("had passed" in a.detail for a in skipped)
    # Both due generations were handed to the transport at once.
    due = {
        a.month
        for a in harness.automations(client, type=T.GENERATE_DELIVERABLE)
        if a.trigger_at <= harness.clock.now()
    }
    assert due == {1, 2}
    dispatched = {aid for aid, _, _ in harness.transport.sent}
    assert {
        a.id for a in harness.automations(client, type=T.GENERATE_DELIVERABLE) if a.month in due
    } <= dispatched
    harness.run_for(timedelta(minutes=1))
    assert harness.deliverable(client, 1).status == D.PENDING_REVIEW
    assert harness.deliverable(client, 2).status == D.PENDING_REVIEW
    # No reminder was sent late.
    assert not harness.emails(Template.REMINDER_UPCOMING)


def test_enrollment_refuses_bad_input_and_duplicates(harness):
    harness.enroll(date(2026, 1, 5))
    with pytest.raises(errors.Conflict, match="already enrolled"):
        harness.enroll(date(2026, 1, 5), email="SARAH@example.com ")
    with pytest.raises(errors.Invalid, match="timezone"):
        harness.enroll(date(2026, 1, 5), timezone="Mars/Olympus", email="x@example.com")
    with pytest.raises(errors.Invalid, match="email"):
        harness.enroll(date(2026, 1, 5), email="not-an-email")
    with pytest.raises(errors.Invalid, match="name"):
        harness.enroll(date(2026, 1, 5), email="y@example.com", name="   ")
    with pytest.raises(errors.Invalid, match="control characters"):
        harness.enroll(date(2026, 1, 5), email="z@example.com", name="Eve\x00")


def test_planning_twice_schedules_nothing_more(harness):
    client = harness.enroll(date(2026, 1, 5))
    assert harness.do(enrollment.plan_journey, [client]) == 0
    assert len(harness.automations(client)) == 32


# -- a month, end to end ----------------------------------------------------------------------


def test_month_one_upcoming_generation_review_approval_celebration(harness):
    client = harness.enroll(date(2026, 1, 10), NY)
    harness.run_until(at(2026, 1, 7, 14, 1))
    upcoming = harness.emails(Template.REMINDER_UPCOMING)
    assert [e.to_address for e in upcoming] == ["sarah@example.com"]
    assert "Month 1" in upcoming[0].subject
    harness.run_until(at(2026, 1, 10, 14, 1))
    d = harness.deliverable(client, 1)
    assert d.status == D.PENDING_REVIEW and "Month 1" in d.title and d.content
    assert [e.to_address for e in harness.emails(Template.REVIEW_NEEDED)] == ["coach@example.com"]
    assert not harness.emails(Template.ADMIN_ESCALATION)  # month 1 has no month before it

    harness.clock.set(at(2026, 1, 11, 16))
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(seconds=1))
    assert harness.refresh(d).status == D.DELIVERED
    ready = harness.emails(Template.DELIVERABLE_READY)
    assert len(ready) == 1 and ready[0].sent_at == at(2026, 1, 11, 16)
    celebration = harness.one(client, type=T.SEND_CELEBRATION, month=1)
    assert celebration.template == Template.MONTH_COMPLETE
    assert celebration.trigger_at == at(2026, 1, 12, 14)  # next day, 09:00 New York
    harness.run_until(at(2026, 1, 12, 15))
    assert len(harness.emails(Template.MONTH_COMPLETE)) == 1


def test_overdue_reminder_when_delivered_and_unopened(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 10, 10))
    harness.do(review.approve, client, 1)
    harness.run_until(at(2026, 1, 13, 10))
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    assert overdue.status == S.COMPLETED
    assert len(harness.emails(Template.REMINDER_OVERDUE)) == 1


def test_overdue_reminder_skipped_when_not_delivered_but_escalation_runs(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 17, 10))
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    assert overdue.status == S.SKIPPED and "not delivered" in overdue.detail
    escalation = harness.one(client, template=Template.ADMIN_ESCALATION, month=1)
    assert escalation.status == S.COMPLETED and "still in review" in escalation.detail
    assert [e.to_address for e in harness.emails(Template.ADMIN_ESCALATION)] == [
        "coach@example.com"
    ]


def test_opening_cancels_overdue_reminder_and_escalation(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 10, 10))
    harness.do(review.approve, client, 1)
    harness.clock.set(at(2026, 1, 11, 8))
    harness.do(review.open_deliverable, client, 1)
    assert harness.deliverable(client, 1).opened_at == at(2026, 1, 11, 8)
    assert harness.one(client, template=Template.REMINDER_OVERDUE, month=1).status == S.CANCELLED
    assert harness.one(client, template=Template.ADMIN_ESCALATION, month=1).status == S.CANCELLED
    harness.clock.set(at(2026, 1, 12, 8))
    harness.do(review.open_deliverable, client, 1)  # a second open changes nothing
    assert harness.deliverable(client, 1).opened_at == at(2026, 1, 11, 8)
    harness.run_until(at(2026, 1, 20))
    assert not harness.emails(Template.REMINDER_OVERDUE)
    assert not harness.emails(Template.ADMIN_ESCALATION)


def test_upcoming_reminder_skipped_when_already_delivered(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.do(review.generate_by_hand, client, 2)
    harness.run_for(timedelta(seconds=1))
    harness.do(review.approve, client, 2)
    harness.run_until(at(2026, 2, 7, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=2)
    assert upcoming.status == S.SKIPPED and "already delivered" in upcoming.detail


def test_generation_escalates_when_the_month_before_is_not_delivered(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 2, 9, 10))  # M2 generation; M1 still in review
    assert harness.deliverable(client, 2).status == D.PENDING_REVIEW
    behind = harness.one(client, key="behind:1")
    assert behind.type == T.ESCALATE_TO_ADMIN and behind.month == 1 and behind.status == S.COMPLETED
    assert behind.payload["reason"] == "M2 is due and M1 is not delivered"


def test_halfway_and_program_complete_celebrations(harness):
    client = harness.enroll(date(2026, 1, 1))
    for month in range(1, 9):
        harness.do(review.generate_by_hand, client, month)
        harness.run_for(timedelta(seconds=1))
        harness.do(review.approve, client, month)
    templates = {a.month: a.template for a in harness.automations(client, type=T.SEND_CELEBRATION)}
    assert templates[4] == Template.HALFWAY
    assert templates[8] == Template.PROGRAM_COMPLETE
    assert {templates[m] for m in (1, 2, 3, 5, 6, 7)} == {Template.MONTH_COMPLETE}
    assert harness.refresh(client).completed_at is not None


def test_rejection_reminds_admins_three_days_later_if_still_rejected(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 10, 10))
    harness.clock.set(at(2026, 1, 10, 15))
    harness.do(review.reject, client, 1, "Make the plan more concrete")
    d = harness.deliverable(client, 1)
    assert d.status == D.REJECTED and d.reviewer_notes == "Make the plan more concrete"
    reminder = harness.one(client, template=Template.REVISION_REMINDER)
    assert reminder.trigger_at == at(2026, 1, 13, 9)
    harness.run_until(at(2026, 1, 13, 10))
    sent = harness.emails(Template.REVISION_REMINDER)
    assert len(sent) == 1 and "Make the plan more concrete" in sent[0].text_body

    # A second rejection, then approval before the reminder: it is skipped.
    harness.do(review.generate_by_hand, client, 1, "more concrete")
    harness.run_for(timedelta(seconds=1))
    assert harness.deliverable(client, 1).version == 2
    harness.do(review.reject, client, 1, "still vague")
    harness.do(review.approve, client, 1)
    harness.run_until(at(2026, 1, 20))
    second = harness.one(client, key="revision:1:v2")
    assert second.status == S.SKIPPED and "no longer rejected" in second.detail


def test_business_plan_approval_generates_month_one_at_once(harness):
    client = harness.enroll(date(2026, 1, 20))
    harness.clock.set(at(2026, 1, 3, 12))
    harness.do(review.approve_business_plan, client)
    harness.run_for(timedelta(seconds=1))
    d = harness.deliverable(client, 1)
    assert d.status == D.PENDING_REVIEW and d.generated_at == at(2026, 1, 3, 12)
    harness.do(review.approve_business_plan, client)  # again: nothing more
    harness.run_until(at(2026, 1, 21))
    assert harness.generator.calls == 1
    gen = harness.one(client, type=T.GENERATE_DELIVERABLE, month=1)
    assert gen.status == S.COMPLETED


def test_generating_by_hand_cancels_the_scheduled_generation_and_never_twice(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.do(review.generate_by_hand, client, 3)
    harness.run_for(timedelta(seconds=1))
    d = harness.deliverable(client, 3)
    assert d.manual and d.status == D.PENDING_REVIEW
    planned = harness.one(client, key="plan:GENERATE_DELIVERABLE:3")
    assert planned.status == S.CANCELLED and "by hand" in planned.detail
    with pytest.raises(errors.Conflict, match="never generated twice"):
        harness.do(review.generate_by_hand, client, 3)
    harness.run_until(at(2026, 3, 15))
    assert (
        len(
            [
                x
                for x in harness.automations(client, type=T.GENERATE_DELIVERABLE, month=3)
                if x.status == S.COMPLETED
            ]
        )
        == 1
    )


# -- holds --------------------------------------------------------------------------------------


def test_nothing_fires_on_hold_and_resume_shifts_by_whole_days(harness):
    client = harness.enroll(date(2026, 1, 10), NY)
    harness.run_until(at(2026, 1, 10, 15))
    before = {a.id: a.trigger_at for a in harness.automations(client, status=S.SCHEDULED)}
    harness.clock.set(at(2026, 1, 11, 17))  # noon in New York
    harness.do(controls.pause, client, reason="Family")
    assert [e.template for e in harness.emails()][-1] != Template.PAUSE_CONFIRMATION
    harness.run_for(timedelta(seconds=1))
    assert harness.emails(Template.PAUSE_CONFIRMATION)[0].to_address == "sarah@example.com"
    harness.run_until(at(2026, 2, 1, 18))  # 21 days later; nothing of the journey ran
    assert not harness.emails(Template.REMINDER_OVERDUE)
    assert not harness.emails(Template.ADMIN_ESCALATION)
    hold = harness.do(controls.resume, client)
    assert hold.days == 21 and harness.refresh(client).held_days == 21
    for a in harness.automations(client, status=S.SCHEDULED):
        if a.id in before:
            assert a.trigger_at.astimezone(lookups.client_zone(client)).hour == 9
            assert (a.trigger_at.date() - before[a.id].date()).days == 21
    harness.run_for(timedelta(seconds=1))
    welcome = harness.emails(Template.WELCOME_BACK)
    assert len(welcome) == 1 and "Month 2" in welcome[0].text_body


def test_messages_sent_before_a_pause_do_nothing(harness):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    old_version = upcoming.version
    harness.clock.set(at(2026, 1, 6))
    harness.do(controls.pause, client)
    harness.clock.set(at(2026, 1, 7, 9, 5))
    assert execute.run(harness.ctx, upcoming.id, old_version) is None
    assert harness.refresh(upcoming).status == S.SCHEDULED


def test_hold_with_end_date_ends_by_itself_with_reminder(harness):
    client = harness.enroll(date(2026, 1, 10), NY)
    harness.clock.set(at(2026, 1, 12, 15))
    harness.do(controls.pause, client, until=date(2026, 1, 26), reason="Travel")
    end = harness.one(client, type=T.UPDATE_STATUS)
    assert end.trigger_at == at(2026, 1, 26, 14)
    remind = harness.one(client, template=Template.RESUME_REMINDER)
    assert remind.trigger_at == at(2026, 1, 23, 14)
    harness.run_until(at(2026, 1, 27))
    assert harness.refresh(client).paused_at is None
    hold = client.holds[-1]
    assert hold.ended_by == "schedule" and hold.days == 14
    templates = [e.template for e in harness.emails() if e.to_address == "sarah@example.com"]
    assert templates.index(Template.PAUSE_CONFIRMATION) < templates.index(Template.RESUME_REMINDER)
    assert templates.index(Template.RESUME_REMINDER) < templates.index(Template.WELCOME_BACK)
    # M2 moved by the hold's 14 days.
    gen2 = harness.one(client, key="plan:GENERATE_DELIVERABLE:2")
    assert gen2.trigger_at == at(2026, 2, 23, 14)


def test_resuming_early_cancels_the_hold_automations(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 12, 12))
    harness.do(controls.pause, client, until=date(2026, 2, 1))
    harness.clock.set(at(2026, 1, 15, 12))
    harness.do(controls.resume, client)
    assert harness.one(client, type=T.UPDATE_STATUS).status == S.CANCELLED
    assert harness.one(client, template=Template.RESUME_REMINDER).status == S.CANCELLED


def test_pause_refusals(harness):
    client = harness.enroll(date(2026, 1, 10))
    with pytest.raises(errors.Conflict, match="not on hold"):
        harness.do(controls.resume, client)
    with pytest.raises(errors.Invalid, match="after today"):
        harness.do(controls.pause, client, until=date(2026, 1, 1))
    harness.do(controls.pause, client)
    with pytest.raises(errors.Conflict, match="already on hold"):
        harness.do(controls.pause, client)
    assert len(client.holds) == 1


def test_reminder_whose_moment_passed_during_a_same_day_hold_is_skipped(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8))
    harness.do(controls.pause, client)
    harness.clock.set(at(2026, 1, 7, 11))
    harness.do(controls.resume, client)
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert upcoming.status == S.SKIPPED and "passed" in upcoming.detail


# -- adjusting, skipping, manual control ---------------------------------------------------------


def test_adjusting_the_start_recomputes_pending_steps_and_keeps_holds(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 2))
    harness.do(controls.pause, client)
    harness.clock.set(at(2026, 1, 5))
    harness.do(controls.resume, client)  # 3 days held
    moved = harness.do(controls.adjust, client, date(2026, 2, 1))
    assert moved == 32
    gen1 = harness.one(client, key="plan:GENERATE_DELIVERABLE:1")
    gen3 = harness.one(client, key="plan:GENERATE_DELIVERABLE:3")
    assert gen1.trigger_at == at(2026, 2, 4, 9)  # Feb 1 + 3 held days
    assert gen3.trigger_at == at(2026, 4, 5, 9)
    assert harness.do(controls.adjust, client, date(2026, 2, 1)) == 0  # same date: nothing moves


def test_adjusting_earlier_skips_reminders_now_past_and_generates_at_once(harness):
    client = harness.enroll(date(2026, 1, 20))
    harness.clock.set(at(2026, 1, 19))
    harness.do(controls.adjust, client, date(2026, 1, 10))
    assert harness.one(client, template=Template.REMINDER_UPCOMING, month=1).status == S.SKIPPED
    gen1 = harness.one(client, key="plan:GENERATE_DELIVERABLE:1")
    assert gen1.trigger_at < harness.clock.now()
    harness.run_for(timedelta(seconds=1))
    assert harness.deliverable(client, 1).status == D.PENDING_REVIEW


def test_adjusting_later_brings_back_reminders_skipped_for_being_late(harness):
    harness.clock.set(at(2026, 1, 12))
    client = harness.enroll(date(2026, 1, 10))
    assert harness.one(client, template=Template.REMINDER_UPCOMING, month=1).status == S.SKIPPED
    harness.do(controls.adjust, client, date(2026, 1, 20))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert upcoming.status == S.SCHEDULED and upcoming.trigger_at == at(2026, 1, 17, 9)


def test_skipping_a_month_cancels_it_and_counts_it_done_without_celebration(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.do(controls.skip_month, client, 2)
    for a in harness.automations(client, month=2):
        assert a.status == S.CANCELLED and "skipped" in a.detail
    assert harness.deliverable(client, 2).status == D.SKIPPED
    assert not harness.automations(client, type=T.SEND_CELEBRATION)
    with pytest.raises(errors.Conflict, match="already SKIPPED"):
        harness.do(controls.skip_month, client, 2)
    with pytest.raises(errors.Invalid, match="month"):
        harness.do(controls.skip_month, client, 9)


def test_cancel_trigger_and_schedule_by_hand(harness):
    client = harness.enroll(date(2026, 3, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.do(controls.trigger_now, upcoming)
    harness.run_for(timedelta(seconds=1))
    assert harness.refresh(upcoming).status == S.COMPLETED
    with pytest.raises(errors.Conflict, match="COMPLETED"):
        harness.do(controls.cancel, upcoming)
    overdue = harness.one(client, template=Template.REMINDER_OVERDUE, month=1)
    harness.do(controls.cancel, overdue)
    assert harness.refresh(overdue).status == S.CANCELLED
    manual = harness.do(
        controls.schedule_by_hand,
        client,
        "SEND_REMINDER",
        template="REMINDER_UPCOMING",
        month=2,
        at=at(2026, 1, 2, 12),
    )
    assert manual.source == "MANUAL"
    harness.run_until(at(2026, 1, 2, 13))
    assert harness.refresh(manual).status == S.COMPLETED
    with pytest.raises(errors.Invalid, match="template"):
        harness.do(controls.schedule_by_hand, client, "SEND_REMINDER", template="NOPE", month=1)
    with pytest.raises(errors.Invalid, match="type"):
        harness.do(controls.schedule_by_hand, client, "LAUNCH_ROCKET")


# -- failures and retries ----------------------------------------------------------------------


def test_generation_failure_is_retried_every_15_minutes_then_fails_loudly(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.generator.fail_next = 10
    harness.run_until(at(2026, 1, 10, 10))
    gen = harness.one(client, key="plan:GENERATE_DELIVERABLE:1")
    assert gen.status == S.FAILED and gen.retry_count == 3
    assert "generator exploded" in gen.error
    attempts = [log.at for log in harness.logs(client) if log.automation_id == gen.id]
    assert attempts == [at(2026, 1, 10, 9) + timedelta(minutes=15 * i) for i in range(4)]
    failure = harness.emails(Template.AUTOMATION_FAILURE)
    assert [e.to_address for e in failure] == ["coach@example.com"]
    assert harness.deliverable(client, 1) is None
    # An admin runs it again once the cause is fixed.
    harness.generator.fail_next = 0
    harness.do(controls.trigger_now, gen)
    harness.run_for(timedelta(seconds=1))
    assert harness.refresh(gen).status == S.COMPLETED
    assert harness.deliverable(client, 1).status == D.PENDING_REVIEW


def test_a_retry_that_succeeds_generates_once(harness):
    client = harness.enroll(date(2026, 1, 10))
    harness.generator.fail_next = 2
    harness.run_until(at(2026, 1, 10, 10))
    gen = harness.one(client, key="plan:GENERATE_DELIVERABLE:1")
    assert gen.status == S.COMPLETED and gen.retry_count == 2
    assert gen.executed_at == at(2026, 1, 10, 9, 30)
    assert not harness.emails(Template.AUTOMATION_FAILURE)


def test_mail_failure_is_retried_and_never_sends_twice(harness):
    harness.add_admin("second@example.com")
    client = harness.enroll(date(2026, 1, 10))
    harness.run_until(at(2026, 1, 10, 8))
    harness.mailer.fail_next = 0
    # The review email goes to two admins; the second send fails once.
    original = harness.mailer.send
    calls = {"n": 0}

    def flaky(message):
        calls["n"] += 1
        if message.to == "second@example.com" and calls["n"] <= 2:
            raise ConnectionError("421 try again later")
        original(message)

    harness.mailer.send = flaky
    harness.run_until(at(2026, 1, 10, 10))
    needed = harness.one(client, template=Template.REVIEW_NEEDED)
    assert needed.status == S.COMPLETED and needed.retry_count == 1
    recipients = [m.to for m in harness.mailer.sent if "Review needed" in m.subject]
    assert sorted(recipients) == ["coach@example.com", "second@example.com"]


def test_the_same_message_delivered_twice_has_one_effect(harness):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.clock.set(at(2026, 1, 7, 10))
    first = execute.run(harness.ctx, upcoming.id, upcoming.version)
    second = execute.run(harness.ctx, upcoming.id, upcoming.version)
    assert first is not None and second is None
    assert len(harness.mailer.sent) == 1
    assert len([log for log in harness.logs(client) if log.automation_id == upcoming.id]) == 1
