"""Exactly once in effect, with real processes: Dramatiq workers over a Redis server of our
own, a sweeper, PostgreSQL, and an SMTP sink. Messages are delivered many times at once, workers
are killed with SIGKILL mid-run, Redis restarts empty, PostgreSQL refuses connections; after each,
every due automation has run once, none twice, none is lost.

Each fault runs several rounds; the counts are printed (pytest -s shows them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from scheduler import controls, enrollment
from scheduler.clock import SystemClock
from scheduler.models import Admin, Automation, AutomationLog, Base, Client, Email
from scheduler.vocab import AutomationStatus
from tests.cluster import Processes, Proxy, RedisServer, SmtpSink, wait_for
from tests.conftest import PG_URL, sa_url, unavailable
from tests.harness import NoTransport
from web import create_app, journey_context
from web.extensions import db

pytestmark = pytest.mark.slow
ROUNDS = int(os.environ.get("FAULT_ROUNDS", "3"))
FINAL = ("COMPLETED", "SKIPPED", "FAILED")


@dataclass
class Cluster:
    app: object
    redis: RedisServer
    sink: SmtpSink
    proxy: Proxy
    processes: Processes
    redis_url: str

    def load(self, clients: int) -> list[int]:
        """Clients who started 65 days ago: months 1-3 are due now (generation, review email,
        escalations): 8 automations run and 5 emails each; 8 past reminders are skipped."""
        tag = uuid.uuid4().hex[:6]
        with self.app.app_context():
            ctx = journey_context()
            start = datetime.now(UTC).date() - timedelta(days=65)
            made = enrollment.enroll_many(
                ctx,
                [
                    enrollment.Enrollment(
                        f"Client {tag} {i}", f"c{i}.{tag}@example.com", start, "UTC"
                    )
                    for i in range(clients)
                ],
            )
            ctx.commit()
            return [c.id for c in made]

    def settled(self, ids: list[int]) -> bool:
        with self.app.app_context():
            waiting = db.session.scalar(
                select(func.count())
                .select_from(Automation)
                .where(
                    Automation.client_id.in_(ids),
                    (Automation.status == AutomationStatus.RUNNING)
                    | (
                        (Automation.status == AutomationStatus.SCHEDULED)
                        & (Automation.trigger_at <= datetime.now(UTC))
                    ),
                )
            )
            db.session.remove()
            return waiting == 0

    def audit(self, ids: list[int]) -> dict[str, int]:
        """What happened to these clients' due automations and emails."""
        with self.app.app_context():
            finished = db.session.execute(
                select(Automation.id, Automation.status).where(
                    Automation.client_id.in_(ids), Automation.status.in_(FINAL)
                )
            ).all()
            outcomes = dict(
                db.session.execute(
                    select(AutomationLog.automation_id, func.count())
                    .where(AutomationLog.client_id.in_(ids), AutomationLog.status.in_(FINAL))
                    .group_by(AutomationLog.automation_id)
                ).all()
            )
            emails = db.session.execute(
                select(Email.message_id, Email.status).where(Email.client_id.in_(ids))
            ).all()
            unfinished = db.session.execute(
                select(
                    Automation.id,
                    Automation.status,
                    Automation.type,
                    Automation.template,
                    Automation.retry_count,
                    Automation.error,
                    Automation.trigger_at,
                ).where(Automation.client_id.in_(ids), Automation.status.not_in(FINAL))
            ).all()
            db.session.remove()
        for row in unfinished:  # shown by pytest when a check fails
            print("not finished:", *row)
        received = self.sink.counts()
        return {
            "automations": len(finished),
            "executed_twice": sum(1 for n in outcomes.values() if n > 1),
            "lost": sum(1 for aid, _ in finished if outcomes.get(aid, 0) == 0),
            "failed": sum(1 for _, status in finished if status == "FAILED"),
            "emails": len(emails),
            "emails_unsent": sum(1 for _, status in emails if status != "SENT"),
            "emails_missing": sum(1 for mid, _ in emails if received[mid] == 0),
            "emails_duplicated": sum(max(0, received[mid] - 1) for mid, _ in emails),
        }


@pytest.fixture
def cluster(pg_schema, tmp_path) -> Iterator[Cluster]:
    redis = RedisServer()
    if not redis.binary:
        unavailable("redis-server (the binary, to start and kill our own)", "not installed")
    schema = f"{pg_schema}_faults"
    admin = create_engine(sa_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(sa_url(PG_URL)).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    redis.start()
    sink = SmtpSink()
    sink.controller.start()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "DATABASE_"))}
    env |= {
        "DATABASE_URL": through_proxy.render_as_string(hide_password=False),
        "REDIS_URL": redis.url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "MAIL_DEFAULT_SENDER": "Journey <journey@coach.example>",
        "AUTOMATION_LEASE_SECONDS": "8",
        "REDISPATCH_AFTER_SECONDS": "2",
        "TZ": "UTC",
        "JOURNEY_TEST_LOGS": str(tmp_path),
        # These tests send several reminders to one client within seconds: no frequency cap.
        "EMAIL_FREQUENCY_CAP": "100",
    }
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False), "REDIS_URL": None},
        clock=SystemClock(),
        dispatcher=NoTransport(),
    )
    with app.app_context():
        db.session.add(
            Admin(
                email="coach@example.com",
                name="",
                timezone="UTC",
                active=True,
                created_at=datetime.now(UTC),
            )
        )
        db.session.commit()
    processes = Processes(env)
    cluster = Cluster(app, redis, sink, proxy, processes, redis.url)
    try:
        yield cluster
    finally:
        processes.stop()
        redis.kill()
        sink.controller.stop()
        with app.app_context():
            db.engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def progress(cluster: Cluster, ids: list[int], fraction: float) -> None:
    """Wait until `fraction` of the round's emails have arrived."""

    def far_enough() -> bool:
        return len(cluster.sink.received) >= start + fraction * 5 * len(ids)

    start = len(cluster.sink.received)
    wait_for(far_enough, 60, f"{fraction:.0%} of the emails")


def report(name: str, rounds: list[dict[str, int]]) -> None:
    keys = list(rounds[0])
    print(f"\n{name}")
    print("round  " + "  ".join(f"{k:>17}" for k in keys))
    for i, counts in enumerate(rounds, 1):
        print(f"{i:>5}  " + "  ".join(f"{counts[k]:>17}" for k in keys))


def check(counts: dict[str, int], clients: int) -> None:
    assert counts["automations"] == 16 * clients, counts  # 8 run, 8 skipped when planned
    assert counts["executed_twice"] == 0, counts
    assert counts["lost"] == 0, counts
    assert counts["failed"] == 0, counts
    assert counts["emails"] == 5 * clients, counts
    assert counts["emails_unsent"] == 0 and counts["emails_missing"] == 0, counts


def test_a_delayed_message_fires_at_its_moment(cluster):
    """The delayed message runs the automation at its moment, not at the next sweep (the sweep
    is stopped here). The latency itself is measured by `make bench`; the bound here only
    tells a delayed message from polling, on a machine that may be busy."""
    cluster.processes.start_worker()
    [client] = cluster.load(1)
    latencies = []
    for _ in range(3):
        at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "web.cli",
                "automations",
                "schedule",
                str(client),
                "--type",
                "SEND_REMINDER",
                "--template",
                "REMINDER_UPCOMING",
                "--month",
                "2",
                "--at",
                at.strftime("%Y-%m-%dT%H:%M:%S"),
            ],
            env=cluster.processes.env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        with cluster.app.app_context():
            automation = db.session.scalar(
                select(Automation)
                .where(Automation.client_id == client, Automation.source == "MANUAL")
                .order_by(Automation.id.desc())
                .limit(1)
            )
            automation_id = automation.id
            db.session.remove()

        def done(automation_id: int = automation_id) -> bool:
            with cluster.app.app_context():
                row = db.session.get(Automation, automation_id)
                finished = row.executed_at if row.status == "COMPLETED" else None
                db.session.remove()
                return finished is not None

        wait_for(done, 30, "the delayed automation")
        with cluster.app.app_context():
            row = db.session.get(Automation, automation_id)
            latencies.append((row.executed_at - row.trigger_at).total_seconds())
            db.session.remove()
    print(f"\ntrigger latency with a real worker: {', '.join(f'{x:.3f} s' for x in latencies)}")
    assert all(0 <= x < 5.0 for x in latencies), latencies


@pytest.mark.parametrize("copies", [2, 5, 20])
def test_the_same_message_many_times_at_once_has_one_effect(cluster, copies):
    for _ in range(2):
        cluster.processes.start_worker()
    [client] = cluster.load(1)
    with cluster.app.app_context():
        ctx = journey_context()
        automation = controls.schedule_by_hand(
            ctx,
            ctx.session.get(Client, client),
            "SEND_REMINDER",
            template="REMINDER_UPCOMING",
            month=4,
        )
        ctx.commit()
        key = (automation.id, automation.version)
        db.session.remove()
    broker = RedisBroker(url=cluster.redis_url)
    broker.declare_queue("automations")
    for _ in range(copies):
        broker.enqueue(
            Message(
                queue_name="automations",
                actor_name="run_automation",
                args=key,
                kwargs={},
                options={},
            )
        )
    broker.close()

    def completed() -> bool:
        with cluster.app.app_context():
            status = db.session.get(Automation, key[0]).status
            db.session.remove()
            return status == "COMPLETED"

    wait_for(completed, 30, "the automation")
    time.sleep(1.5)  # let every copy be consumed
    with cluster.app.app_context():
        logs = db.session.scalar(select(func.count()).where(AutomationLog.automation_id == key[0]))
        emails = db.session.scalars(
            select(Email.message_id).where(Email.automation_id == key[0])
        ).all()
        db.session.remove()
    assert logs == 1
    assert len(emails) == 1 and cluster.sink.counts()[emails[0]] == 1


def test_workers_killed_mid_run(cluster):
    rounds = []
    cluster.processes.start_sweeper()
    for _ in range(ROUNDS):
        for _ in range(2):
            cluster.processes.start_worker()
        ids = cluster.load(30)
        progress(cluster, ids, 0.2)
        cluster.processes.kill9(cluster.processes.workers[-1])
        cluster.processes.start_worker()
        progress(cluster, ids, 0.5)
        cluster.processes.kill9(cluster.processes.workers[-2])
        wait_for(lambda ids=ids: cluster.settled(ids), 90, "every due automation")
        counts = cluster.audit(ids)
        rounds.append(counts)
        for worker in cluster.processes.workers:
            if worker.poll() is None:
                cluster.processes.kill9(worker)
        cluster.processes.workers.clear()
    report("kill -9 of a worker, twice a round", rounds)
    for counts in rounds:
        check(counts, 30)
        # SMTP has no exactly-once: a worker killed after the server accepted a message but
        # before the outbox recorded it re-sends it, with the same Message-ID.
        assert counts["emails_duplicated"] <= 8


def rounds_of(cluster: Cluster, fault: Callable[[], None]) -> list[dict[str, int]]:
    """Each round: 30 clients' due automations start running, `fault` strikes, and once all
    is settled the round is audited."""
    rounds = []
    cluster.processes.start_sweeper()
    for _ in range(2):
        cluster.processes.start_worker()
    for _ in range(ROUNDS):
        ids = cluster.load(30)
        progress(cluster, ids, 0.3)
        fault()
        wait_for(lambda ids=ids: cluster.settled(ids), 90, "every due automation")
        rounds.append(cluster.audit(ids))
    return rounds


def test_redis_restarts_empty(cluster):
    def restart() -> None:
        cluster.redis.kill()
        time.sleep(1)
        cluster.redis.start()

    rounds = rounds_of(cluster, restart)
    report("Redis killed and restarted empty mid-run", rounds)
    for counts in rounds:
        check(counts, 30)
        assert counts["emails_duplicated"] == 0


def test_postgres_refuses_connections_for_a_while(cluster):
    rounds = rounds_of(cluster, lambda: cluster.proxy.outage(3))
    report("PostgreSQL refusing connections for 3 s mid-run", rounds)
    for counts in rounds:
        check(counts, 30)
        # The outage is shorter than the time a worker holds on to record a sent email.
        assert counts["emails_duplicated"] == 0
