"""Who hears what: the client's preferences, the frequency cap, and the coach who gets a
client's admin emails."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from scheduler import controls, review
from scheduler.models import Admin
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import LogStatus, Template
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


def by_hand(harness, client, template, when, type_="SEND_REMINDER", month=1):
    return harness.do(
        controls.schedule_by_hand, client, type_, template=template, month=month, at=when
    )


def test_reminders_off_skips_reminders_but_transactional_emails_go(harness):
    client = harness.enroll(date(2026, 1, 10))
    client.reminders_enabled = False
    db.session.commit()
    harness.run_until(at(2026, 1, 10, 9, 30))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert upcoming.status == S.SKIPPED
    assert upcoming.detail == "the client turned reminders off"
    assert harness.emails(Template.REMINDER_UPCOMING) == []
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(seconds=1))
    assert len(harness.emails(Template.DELIVERABLE_READY)) == 1  # transactional: it goes
    harness.run_for(timedelta(days=1))
    assert len(harness.emails(Template.MONTH_COMPLETE)) == 1  # celebrations are still on


def test_unsubscribed_clients_get_no_optional_email(harness):
    client = harness.enroll(date(2026, 1, 10))
    client.unsubscribed_at = harness.clock.now()
    db.session.commit()
    harness.run_until(at(2026, 1, 10, 9, 30))
    harness.do(review.approve, client, 1)
    harness.run_for(timedelta(days=1))
    celebration = harness.one(client, template=Template.MONTH_COMPLETE, month=1)
    assert celebration.status == S.SKIPPED
    assert "unsubscribed" in celebration.detail
    assert [e.template for e in harness.emails() if e.to_address == client.email] == [
        Template.DELIVERABLE_READY
    ]


def test_the_frequency_cap_defers_the_third_optional_email_of_a_day(harness):
    client = harness.enroll(date(2026, 3, 1))
    first = at(2026, 1, 5, 9)
    for minutes in (0, 10, 20):
        by_hand(harness, client, "REMINDER_UPCOMING", first + timedelta(minutes=minutes))
    harness.run_until(first + timedelta(hours=1))
    sent = harness.emails(Template.REMINDER_UPCOMING)
    assert len(sent) == 2
    third = [a for a in harness.automations(client, source="MANUAL") if a.status == S.SCHEDULED]
    assert len(third) == 1
    assert third[0].trigger_at == first + timedelta(hours=24)  # when the first leaves the window
    deferred = [log for log in harness.logs(client) if log.status == LogStatus.DEFERRED]
    assert len(deferred) == 1 and "frequency cap" in deferred[0].detail
    # A transactional email is not held back by the cap.
    harness.do(controls.pause, client, reason="Travel")
    harness.run_for(timedelta(minutes=1))
    assert len(harness.emails(Template.PAUSE_CONFIRMATION)) == 1
    harness.do(controls.resume, client)
    harness.run_until(first + timedelta(hours=25))
    assert len(harness.emails(Template.REMINDER_UPCOMING)) == 3  # deferred, not dropped


def test_admin_emails_go_to_the_clients_coach_or_else_every_admin(harness):
    harness.add_admin("second@example.com")
    coach = Admin(email="coach2@example.com", name="Coach", timezone="UTC", active=True)
    coach.created_at = harness.clock.now()
    db.session.add(coach)
    db.session.commit()
    coached = harness.enroll(date(2026, 1, 10), email="a@example.com", name="Ann Coached")
    alone = harness.enroll(date(2026, 1, 10), email="b@example.com", name="Bob Alone")
    coached.coach_id = coach.id
    db.session.commit()
    harness.run_until(at(2026, 1, 17, 9, 30))  # escalations: nobody opened M1
    to = {
        e.client_id: sorted(
            x.to_address
            for x in harness.emails(Template.ADMIN_ESCALATION)
            if x.client_id == e.client_id
        )
        for e in harness.emails(Template.ADMIN_ESCALATION)
    }
    assert to[coached.id] == ["coach2@example.com"]
    assert to[alone.id] == sorted(["coach@example.com", "coach2@example.com", "second@example.com"])
    # A coach who left: the client's admin emails go to everyone again.
    coach.active = False
    db.session.commit()
    asked = harness.emails(Template.REVIEW_NEEDED)
    assert {e.to_address for e in asked if e.client_id == coached.id} == {"coach2@example.com"}
    harness.do(review.reject, coached, 1, notes="Tighten the plan")
    harness.run_for(timedelta(days=4))
    revision = [e for e in harness.emails(Template.REVISION_REMINDER) if e.client_id == coached.id]
    assert sorted(e.to_address for e in revision) == ["coach@example.com", "second@example.com"]
