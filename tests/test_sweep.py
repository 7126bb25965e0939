"""The sweep feeds the horizon, re-sends what was lost, takes back what a dead worker held;
claims are atomic under concurrent deliveries."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from scheduler import controls, execute
from scheduler.sweep import forget_dispatches, sweep
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import Template
from web import journey_context
from web.extensions import db


def at(*args):
    return datetime(*args, tzinfo=UTC)


def normal_horizon(harness):
    harness.app.extensions["journey"].horizon = timedelta(hours=1)


def test_only_what_falls_due_within_the_horizon_is_dispatched(harness):
    normal_horizon(harness)
    client = harness.enroll(date(2026, 1, 10))
    assert harness.transport.sent == []  # nothing within the hour
    harness.clock.set(at(2026, 1, 7, 8, 30))
    report = sweep(harness.ctx)
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert report.dispatched == 1
    assert harness.transport.sent == [(upcoming.id, upcoming.version, at(2026, 1, 7, 9))]
    assert sweep(harness.ctx).dispatched == 0  # in flight: not sent again


def test_a_lost_message_is_sent_again_once_overdue(harness):
    normal_horizon(harness)
    harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8, 30))
    sweep(harness.ctx)
    harness.transport.queue.clear()  # the broker lost it
    harness.clock.set(at(2026, 1, 7, 9, 1))
    assert sweep(harness.ctx).dispatched == 0  # not yet: it may still be on its way
    harness.clock.set(at(2026, 1, 7, 9, 3))
    report = sweep(harness.ctx)
    assert report.dispatched == 1 and report.overdue == 1
    harness.run_for(timedelta(seconds=1))
    assert len(harness.emails(Template.REMINDER_UPCOMING)) == 1
    assert sweep(harness.ctx).overdue == 0


def test_while_workers_are_behind_queued_messages_are_not_sent_again(harness):
    normal_horizon(harness)
    harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8, 30))
    sweep(harness.ctx)
    harness.transport.busy = 500  # messages wait in the queue: the workers are behind
    harness.clock.set(at(2026, 1, 7, 9, 3))
    assert sweep(harness.ctx).dispatched == 0  # queued, not lost
    harness.clock.set(at(2026, 1, 7, 9, 19))
    assert sweep(harness.ctx).dispatched == 0
    harness.clock.set(at(2026, 1, 7, 9, 21))  # ten times the usual wait: presumed lost
    assert sweep(harness.ctx).dispatched == 1
    harness.transport.busy = 0
    harness.clock.set(at(2026, 1, 7, 9, 24))  # idle workers: the usual two minutes
    assert sweep(harness.ctx).dispatched == 1


def test_paused_clients_are_left_alone_but_their_hold_is_not(harness):
    normal_horizon(harness)
    client = harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 5, 12))
    harness.do(controls.pause, client, until=date(2026, 1, 8))
    harness.transport.sent.clear()
    harness.clock.set(at(2026, 1, 7, 8, 30))  # the upcoming reminder would be due at 9:00
    sweep(harness.ctx)
    sent = {aid for aid, _, _ in harness.transport.sent}
    remind = harness.one(client, template=Template.RESUME_REMINDER)
    assert remind.status == S.SKIPPED  # Jan 5 was already past its 3-days-before moment
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert upcoming.id not in sent
    harness.clock.set(at(2026, 1, 8, 8, 30))
    sweep(harness.ctx)
    end = harness.one(client, type="UPDATE_STATUS")
    assert end.id in {aid for aid, _, _ in harness.transport.sent}


def test_a_dead_workers_automation_is_taken_back_after_its_lease(harness):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.clock.set(at(2026, 1, 7, 9))
    assert execute.claim(harness.ctx, upcoming.id, upcoming.version)  # ...and the worker dies
    harness.clock.set(at(2026, 1, 7, 9, 5))
    assert sweep(harness.ctx).reclaimed == 0
    harness.clock.set(at(2026, 1, 7, 9, 11))
    assert sweep(harness.ctx).reclaimed == 1
    db.session.refresh(upcoming)
    assert upcoming.status == S.SCHEDULED
    assert execute.run(harness.ctx, upcoming.id, upcoming.version - 1) is None  # old message
    harness.run_for(timedelta(seconds=1))
    assert len(harness.emails(Template.REMINDER_UPCOMING)) == 1


def test_embedded_start_forgets_dispatches_of_a_previous_process(harness):
    normal_horizon(harness)
    harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8, 30))
    sweep(harness.ctx)
    assert forget_dispatches(harness.ctx) == 1
    assert sweep(harness.ctx).dispatched == 1


def test_concurrent_deliveries_of_one_automation_have_one_effect(harness):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.clock.set(at(2026, 1, 7, 9))
    barrier = threading.Barrier(8)
    results: list[object] = []

    def deliver() -> None:
        with harness.app.app_context():
            barrier.wait()
            results.append(execute.run(journey_context(), upcoming.id, upcoming.version))
            db.session.remove()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert len(harness.mailer.sent) == 1
    logs = [entry for entry in harness.logs(client) if entry.automation_id == upcoming.id]
    assert [entry.status for entry in logs] == ["COMPLETED"]
