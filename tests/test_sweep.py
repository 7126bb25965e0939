"""The sweep feeds the horizon, re-sends what was lost, takes back what a dead worker held;
claims are atomic under concurrent deliveries."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update

from scheduler import controls, execute, recovery
from scheduler.models import Automation, Worker
from scheduler.recovery import forget_dispatches
from scheduler.sweep import sweep
from scheduler.vocab import AutomationStatus as S
from scheduler.vocab import Template
from tests.harness import Transport
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
    harness.clock.set(at(2026, 1, 7, 9, 0, 30))
    assert sweep(harness.ctx).dispatched == 0  # not yet: it may still be on its way
    harness.clock.set(at(2026, 1, 7, 9, 1, 30))
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
    harness.clock.set(at(2026, 1, 7, 9, 2))
    assert sweep(harness.ctx).dispatched == 0  # queued, not lost
    harness.clock.set(at(2026, 1, 7, 9, 9, 30))
    assert sweep(harness.ctx).dispatched == 0
    harness.clock.set(at(2026, 1, 7, 9, 11))  # ten times the usual wait: presumed lost
    assert sweep(harness.ctx).dispatched == 1
    harness.transport.busy = 0
    harness.clock.set(at(2026, 1, 7, 9, 12, 30))  # idle workers: the usual minute
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
    assert execute.claim(harness.ctx, [(upcoming.id, upcoming.version)])  # ...the worker dies
    harness.clock.advance(timedelta(seconds=15))
    assert sweep(harness.ctx).reclaimed == 0
    harness.clock.advance(timedelta(seconds=6))  # 21 s: the 20 s lease ran out
    assert sweep(harness.ctx).reclaimed == 1
    db.session.refresh(upcoming)
    assert upcoming.status == S.SCHEDULED and upcoming.claimed_by is None
    assert execute.run(harness.ctx, upcoming.id, upcoming.version - 1) is None  # old message
    harness.run_for(timedelta(seconds=1))
    assert len(harness.emails(Template.REMINDER_UPCOMING)) == 1


def test_a_live_worker_keeps_its_lease_by_beating(harness):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.clock.set(at(2026, 1, 7, 9))
    assert execute.claim(harness.ctx, [(upcoming.id, upcoming.version)])
    engine = harness.app.extensions["journey"]
    engine.in_flight.add([upcoming.id])  # ...and runs it, for long (a slow generation, say)
    for _ in range(12):  # a minute of beats
        harness.clock.advance(timedelta(seconds=5))
        recovery.beat(harness.ctx)
        assert sweep(harness.ctx).reclaimed == 0
    db.session.refresh(upcoming)
    assert upcoming.status == S.RUNNING
    # The worker finishes it: its own version, so its record counts.
    assert execute.execute(harness.ctx, upcoming.id).status == S.COMPLETED


def test_a_claim_whose_run_died_is_not_renewed_by_the_living_worker(harness):
    """A run that died with an error (the database went away mid-run) leaves its automation
    RUNNING; the worker lives on and beats, but renews only what it is running."""
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.clock.set(at(2026, 1, 7, 9))
    assert execute.claim(harness.ctx, [(upcoming.id, upcoming.version)])
    for _ in range(5):
        harness.clock.advance(timedelta(seconds=5))
        recovery.beat(harness.ctx)
    assert sweep(harness.ctx).reclaimed == 1


def test_a_worker_that_lost_its_claim_cannot_overwrite_the_new_holders_run(harness):
    client = harness.enroll(date(2026, 1, 10))
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    harness.clock.set(at(2026, 1, 7, 9))
    assert execute.claim(harness.ctx, [(upcoming.id, upcoming.version)])
    sending = harness.mailer.send

    def stall_past_the_lease(message):
        # While this worker sends, it stalls past its lease (a database outage, say) and
        # another process takes the automation back and runs it.
        sending(message)
        harness.clock.advance(timedelta(seconds=30))
        with harness.app.app_context():
            assert recovery.recover(journey_context()).leases == 1

    harness.mailer.send = stall_past_the_lease
    assert execute.execute(harness.ctx, upcoming.id) is None  # its record is dropped
    harness.mailer.send = sending
    sweep(harness.ctx)
    harness.run_for(timedelta(seconds=1))
    again = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert again.status == S.COMPLETED and again.retry_count == 0
    assert len(harness.mailer.sent) == 1  # the new holder found the email sent
    assert [e.status for e in harness.emails(Template.REMINDER_UPCOMING)] == ["SENT"]


def test_in_a_batch_only_the_run_taken_over_is_dropped(harness):
    """A batch's endings are written together; when one of its automations was taken over
    meanwhile, the others' records stand and the taken one's is dropped, and its new holder
    does not send its email again."""
    clients = [
        harness.enroll(date(2026, 1, 10), email=f"c{i}@example.com", name=f"C {i}")
        for i in range(3)
    ]
    upcoming = [harness.one(c, template=Template.REMINDER_UPCOMING, month=1) for c in clients]
    harness.clock.set(at(2026, 1, 7, 9))
    taken = upcoming[1]
    sending = harness.mailer.send

    def take_one_over(message):
        sending(message)
        if len(harness.mailer.sent) == 2:  # another worker takes this one back meanwhile
            with db.engine.begin() as conn:
                conn.execute(
                    update(Automation)
                    .where(Automation.id == taken.id)
                    .values(
                        status=S.SCHEDULED,
                        version=Automation.version + 1,
                        claimed_by=None,
                        lease_until=None,
                        dispatched_at=None,
                    )
                )

    harness.mailer.send = take_one_over
    done = execute.run_batch(harness.ctx, [(a.id, a.version) for a in upcoming])
    harness.mailer.send = sending
    assert sorted(a.id for a in done) == sorted(a.id for a in upcoming if a is not taken)
    db.session.expire_all()
    assert [harness.refresh(a).status for a in upcoming] == [S.COMPLETED, S.SCHEDULED, S.COMPLETED]
    assert [len(harness.logs(c)) for c in clients] == [1, 0, 1]
    sweep(harness.ctx)
    harness.run_for(timedelta(seconds=1))
    assert harness.refresh(taken).status == S.COMPLETED
    assert len(harness.mailer.sent) == 3  # its new holder found its email sent
    assert [e.status for e in harness.emails(Template.REMINDER_UPCOMING)] == ["SENT"] * 3


class Broker(Transport):
    """A transport whose broker can restart and whose workers can die holding messages."""

    def __init__(self) -> None:
        super().__init__()
        self.life = "one"
        self.held: dict[str, list[tuple[int, int]]] = {}
        self.quiet: dict[str, float] = {}  # worker -> seconds the broker has not heard from it

    def epoch(self) -> str | None:
        return self.life

    def silent(self, seconds):
        return [worker for worker, quiet in self.quiet.items() if quiet >= seconds]

    def stranded(self, workers):
        return [pair for worker in workers for pair in self.held.pop(worker, [])]


def test_messages_a_dead_worker_held_are_sent_again_within_a_lease(harness):
    broker = Broker()
    harness.app.extensions["journey"].dispatcher = broker
    normal_horizon(harness)
    client = harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8, 30))
    sweep(harness.ctx)
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    assert upcoming.id in {a for a, _, _ in broker.sent}
    # A worker takes the delayed message from the broker, beats for a while, and dies.
    other = harness.app.extensions["journey"]
    dead_worker = "worker-that-dies"
    mine = other.worker_id
    other.worker_id = dead_worker
    recovery.beat(harness.ctx)
    other.worker_id = mine
    broker.held[dead_worker] = [(upcoming.id, upcoming.version)]
    harness.clock.advance(timedelta(seconds=10))
    assert recovery.recover(harness.ctx).dead == ()
    harness.clock.advance(timedelta(seconds=15))  # silent for 25 s: dead
    found = recovery.recover(harness.ctx)
    assert found.dead == (dead_worker,) and found.stranded == 1
    sent_before = len(broker.sent)
    assert sweep(harness.ctx).dispatched == 1
    db.session.refresh(upcoming)
    assert broker.sent[sent_before:] == [(upcoming.id, upcoming.version, upcoming.trigger_at)]
    assert db.session.get(Worker, dead_worker).state == "DEAD"


def test_messages_of_a_worker_killed_before_its_first_beat_are_sent_again(harness):
    """A worker can take messages from the broker before it first beats in the database; the
    broker's own heartbeats tell that it died."""
    broker = Broker()
    harness.app.extensions["journey"].dispatcher = broker
    normal_horizon(harness)
    client = harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8, 30))
    sweep(harness.ctx)
    upcoming = harness.one(client, template=Template.REMINDER_UPCOMING, month=1)
    broker.held["never-beat"] = [(upcoming.id, upcoming.version)]
    broker.quiet["never-beat"] = 10
    assert recovery.recover(harness.ctx).stranded == 0  # quiet for less than a lease
    broker.quiet["never-beat"] = 25
    found = recovery.recover(harness.ctx)
    assert found.dead == () and found.stranded == 1
    sent_before = len(broker.sent)
    assert sweep(harness.ctx).dispatched == 1
    db.session.refresh(upcoming)
    assert broker.sent[sent_before:] == [(upcoming.id, upcoming.version, upcoming.trigger_at)]
    assert recovery.recover(harness.ctx).stranded == 0  # taken once


def test_a_broker_restart_sends_every_dispatched_automation_again(harness):
    broker = Broker()
    harness.app.extensions["journey"].dispatcher = broker
    normal_horizon(harness)
    harness.enroll(date(2026, 1, 10))
    harness.clock.set(at(2026, 1, 7, 8, 30))
    assert sweep(harness.ctx).dispatched == 1
    assert sweep(harness.ctx).dispatched == 0
    broker.life = "two"  # Redis restarted empty
    assert recovery.recover(harness.ctx).restarted
    assert not recovery.recover(harness.ctx).restarted  # once
    assert sweep(harness.ctx).dispatched == 1


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
