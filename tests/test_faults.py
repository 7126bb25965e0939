"""Exactly once in effect, with real processes: Dramatiq workers over a Redis server of our
own, a sweeper, PostgreSQL, and an SMTP sink. Messages are delivered many times at once, workers
are killed with SIGKILL mid-run, Redis restarts empty, PostgreSQL refuses connections; after each,
every due automation has run once, none twice, none is lost.

Each fault runs several rounds; the counts are printed (pytest -s shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url

from scheduler import controls, enrollment
from scheduler.clock import SystemClock
from scheduler.models import (
    Admin,
    Automation,
    AutomationLog,
    Base,
    Client,
    Email,
    Heartbeat,
    Worker,
)
from scheduler.vocab import AutomationStatus
from tests.cluster import Processes, Proxy, RedisServer, SmtpSink, free_port, wait_for
from tests.conftest import PG_URL, sa_url, unavailable
from tests.harness import NoTransport
from web import create_app, journey_context
from web.extensions import db

# With parallel test workers, the tests that start processes or share Redis's database 15 run
# on one worker, one after another (timing and a shared database stay theirs alone).
pytestmark = [pytest.mark.xdist_group("processes"), pytest.mark.slow]
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

    def wave(self, clients: int, at: datetime) -> list[int]:
        """Clients who start next month, each with one reminder due at `at` (one instant: they
        travel together, in batches)."""
        tag = uuid.uuid4().hex[:6]
        with self.app.app_context():
            ctx = journey_context()
            start = datetime.now(UTC).date() + timedelta(days=40)
            made = enrollment.enroll_many(
                ctx,
                [
                    enrollment.Enrollment(
                        f"Wave {tag} {i}", f"w{i}.{tag}@example.com", start, "UTC"
                    )
                    for i in range(clients)
                ],
            )
            for client in made:
                controls.schedule_by_hand(
                    ctx, client, "SEND_REMINDER", at=at, month=1, template="REMINDER_UPCOMING"
                )
            ctx.commit()
            return [c.id for c in made]

    def workers(self) -> dict[str, str]:
        with self.app.app_context():
            found = dict(db.session.execute(select(Worker.id, Worker.state)).all())
            db.session.remove()
            return found

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
        "WORKER_BEAT_SECONDS": "1",
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


def test_the_scheduler_waits_out_a_redis_outage_and_sweeps_once_it_is_back(cluster):
    """periodiq sends the sweep at start and every minute; with Redis down it waits (it used
    to die), and the sweep it could not send goes once Redis is back, fresh enough that the
    worker runs it."""
    cluster.redis.kill()
    scheduler = cluster.processes.start_scheduler()
    log = cluster.processes.logs / "scheduler.log"
    wait_for(lambda: "Redis is unreachable" in log.read_text(), 60, "the scheduler to try")
    time.sleep(3)
    assert scheduler.poll() is None, log.read_text()[-2000:]
    back = datetime.now(UTC)
    cluster.redis.start()
    broker = RedisBroker(url=cluster.redis_url)
    wait_for(lambda: broker.client.llen("dramatiq:sweep") >= 1, 30, "the sweep message")
    [raw] = broker.client.hvals("dramatiq:sweep.msgs")[:1]
    scheduled = datetime.fromisoformat(Message.decode(raw).options["scheduled_at"])
    assert scheduled >= back - timedelta(seconds=1)
    assert broker.client.llen("dramatiq:sweep") <= 2  # once (twice if a minute began meanwhile)
    broker.close()
    assert log.read_text().count("Redis is unreachable") == 1  # logged once per outage
    cluster.processes.start_worker()

    def swept() -> bool:
        with cluster.app.app_context():
            beat = db.session.get(Heartbeat, "sweep")
            db.session.remove()
            return beat is not None and beat.at >= back

    wait_for(swept, 60, "the sweep to run")
    assert scheduler.poll() is None


def test_a_worker_told_to_stop_hands_back_what_it_has_not_started(cluster):
    """SIGTERM (to the whole process group, as platforms send it) in the middle of a wave: the
    busy worker finishes the automation it is on, hands back the rest of its batches and
    exits cleanly; the other worker runs them at once (not after a lease), each once."""
    for _ in range(2):
        cluster.processes.start_worker()
    wait_for(lambda: len(cluster.workers()) == 2, 60, "two workers beating")
    cluster.sink.delay = 0.05  # a slow mail server: a batch of 50 takes 2.5 s
    at = datetime.now(UTC) + timedelta(seconds=4)
    ids = cluster.wave(200, at)
    wait_for(lambda: len(cluster.sink.received) >= 10, 60, "the wave to start")
    stopping = busiest(cluster)
    told = time.monotonic()
    cluster.processes.sigterm(stopping)
    assert stopping.wait(timeout=30) == 0  # within a platform's grace, cleanly
    stopped_after = time.monotonic() - told
    name = f"worker{cluster.processes.workers.index(stopping)}.log"
    log = (cluster.processes.logs / name).read_text()
    handed = sum(
        int(line.split("handed back ")[1].split(" ")[0])
        for line in log.splitlines()
        if "handed back" in line
    )
    wait_for(lambda: cluster.settled(ids), 60, "every automation")
    drained_after = max(cluster.sink.times) - told
    with cluster.app.app_context():
        states = dict(db.session.execute(select(Worker.id, Worker.state)).all())
        db.session.remove()
    # The stopping worker finishes at most its 4 threads' current automations; every email
    # after those is a handed-back automation that the other worker ran.
    after = sorted(at - told for at in cluster.sink.times if at > told)
    handed_back_ran = after[4]
    print(
        f"\nSIGTERM mid-wave: stopped in {stopped_after:.1f} s, handed back {handed}, the first "
        f"handed back ran {handed_back_ran:.1f} s after the signal, the wave done "
        f"{drained_after:.1f} s after it"
    )
    assert handed > 0
    assert sorted(states.values()) == ["RUNNING", "STOPPED"]
    assert handed_back_ran < 4  # within seconds, not after the 8 s lease
    keys = cluster.sink.keys
    assert len(keys) == len(set(keys)) == 200  # each reminder once


def busiest(cluster: Cluster) -> subprocess.Popen[bytes]:
    """The worker (its process group's leader) running the most automations now."""
    with cluster.app.app_context():
        pid = db.session.scalar(
            select(Worker.pid)
            .join(Automation, Automation.claimed_by == Worker.id)
            .where(Automation.status == "RUNNING")
            .group_by(Worker.pid)
            .order_by(func.count().desc())
            .limit(1)
        )
        db.session.remove()
    assert pid is not None, "no worker is running anything"
    parent = int(Path(f"/proc/{pid}/status").read_text().split("PPid:")[1].split()[0])
    return next(w for w in cluster.processes.workers if w.pid in (pid, parent))


def test_metrics_scraped_from_a_worker_and_the_web_process(cluster, tmp_path):
    """The worker exports Dramatiq's metrics and the engine's counters on its port; the web
    process's /metrics (with its token) states what /healthz states; JSON logs carry ids."""
    port = free_port()
    cluster.processes.start_worker(
        {
            "WORKER_METRICS_PORT": str(port),
            "dramatiq_prom_db": str(tmp_path / "prometheus"),
            "LOG_FORMAT": "json",
        }
    )
    at = datetime.now(UTC) + timedelta(seconds=4)
    ids = cluster.wave(20, at)
    with cluster.app.app_context():
        first = db.session.get(Client, ids[0]).email
        db.session.remove()
    cluster.sink.refuse = {first}  # this one fails: retried in 15 minutes, logged
    wait_for(lambda: cluster.settled(ids), 60, "the wave")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return answer.read().decode()

    def executions() -> float:
        from prometheus_client.parser import text_string_to_metric_families

        return sum(
            sample.value
            for family in text_string_to_metric_families(scrape())
            for sample in family.samples
            if sample.name == "journey_executions_total"
            and sample.labels == {"type": "SEND_REMINDER", "outcome": "COMPLETED"}
        )

    def counted() -> bool:
        try:
            return executions() == 19
        except OSError:
            return False

    wait_for(counted, 30, "the worker's metrics")
    worker = scrape()
    assert "dramatiq_messages_total" in worker and "journey_email_send_seconds_count" in worker
    lines = (cluster.processes.logs / "worker0.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    failed = [r for r in records if "failed" in r["message"] and r["level"] == "WARNING"]
    assert failed and {"automation_id", "client_id", "message_id"} <= set(failed[0]), records
    assert failed[0]["client_id"] == ids[0]

    cluster.app.config["METRICS_TOKEN"] = "t" * 40
    web = cluster.app.test_client()
    assert web.get("/metrics").status_code == 401
    answer = web.get("/metrics", headers={"Authorization": "Bearer " + "t" * 40})
    assert answer.status_code == 200, answer.get_data(True)
    metrics = answer.get_data(True)
    health = web.get("/healthz").get_json()
    assert f"journey_automations_overdue {float(health['backlog']['overdue'])}" in metrics
    assert 'journey_workers{state="RUNNING"} 1.0' in metrics


def test_an_evicting_redis_is_reported_and_what_it_evicts_is_sent_again(cluster):
    """With maxmemory-policy allkeys-lru and too little memory, Redis drops waiting messages
    silently: the worker warns at start (REDIS_EVICTION=refuse refuses), /healthz shows the
    policy, and the engine notices the eviction and sends everything again."""
    cluster.redis.kill()
    cluster.redis.options = ["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]
    cluster.redis.start()
    refused = cluster.processes.start_worker({"REDIS_EVICTION": "refuse"})
    assert refused.wait(timeout=60) != 0
    assert "maxmemory-policy is allkeys-lru" in (cluster.processes.logs / "worker0.log").read_text()
    # One worker, holding one delayed message at a time: the rest wait in Redis.
    cluster.processes.start_worker({"dramatiq_delay_queue_prefetch": "1"})
    log = cluster.processes.logs / "worker1.log"
    wait_for(lambda: "maxmemory-policy is allkeys-lru" in log.read_text(), 60, "the warning")
    at = datetime.now(UTC) + timedelta(seconds=25)
    ids = cluster.wave(60, at)
    with cluster.app.app_context():  # sent as delayed messages by the worker's next round
        db.session.execute(
            update(Automation).where(Automation.client_id.in_(ids)).values(dispatched_at=None)
        )
        db.session.commit()
        db.session.remove()
    broker = RedisBroker(url=cluster.redis_url)
    wait_for(
        lambda: broker.client.hlen("dramatiq:automations.DQ.msgs") >= 1, 30, "delayed messages"
    )
    junk = "x" * 100_000
    for i in range(200):  # far more than 4 MB: Redis evicts
        broker.client.set(f"junk:{i}", junk)
    assert broker.client.info("stats")["evicted_keys"] > 0
    # Whichever keys LRU chose, the waiting messages are among the lost ones here.
    broker.client.delete("dramatiq:automations.DQ", "dramatiq:automations.DQ.msgs")
    broker.close()
    cluster.app.config["REDIS_URL"] = cluster.redis_url
    health = cluster.app.test_client().get("/healthz").get_json()
    assert health["broker"]["maxmemory_policy"] == "allkeys-lru" and health["broker"]["evicts"]
    wait_for(lambda: datetime.now(UTC) > at and cluster.settled(ids), 90, "every automation")
    counts = cluster.audit(ids)
    assert counts["lost"] == 0 and counts["executed_twice"] == 0
    assert len(cluster.sink.keys) == len(set(cluster.sink.keys)) == 60


def test_messages_of_the_previous_and_the_next_release_during_a_rolling_deploy(cluster):
    """During a rolling deploy workers of two releases share the queues. A message in the
    previous release's format (one automation) runs; one in a format newer than this worker
    knows is left without crashing the worker, and its automation runs from the re-dispatch
    that follows; each once."""
    worker = cluster.processes.start_worker()
    [client] = cluster.load(1)
    with cluster.app.app_context():
        ctx = journey_context()
        person = ctx.session.get(Client, client)
        made = [
            controls.schedule_by_hand(
                ctx, person, "SEND_REMINDER", template="REMINDER_UPCOMING", month=month
            )
            for month in (4, 5)
        ]
        ctx.commit()
        (old, new) = [(a.id, a.version) for a in made]
        db.session.remove()
    broker = RedisBroker(url=cluster.redis_url)
    broker.declare_queue("automations")
    broker.enqueue(Message("automations", "run_automation", old, {}, {}))
    broker.enqueue(Message("automations", "run_automations", ([list(new)],), {"format": 99}, {}))
    broker.close()

    def completed() -> bool:
        with cluster.app.app_context():
            done = db.session.scalars(
                select(Automation.status).where(Automation.id.in_([old[0], new[0]]))
            ).all()
            db.session.remove()
            return list(done) == ["COMPLETED", "COMPLETED"]

    wait_for(completed, 60, "both automations")
    log = (cluster.processes.logs / "worker0.log").read_text()
    assert "message format 99 is newer than this worker's" in log
    assert worker.poll() is None, "the worker kept running"
    with cluster.app.app_context():
        for automation_id, _ in (old, new):
            logs = db.session.scalar(
                select(func.count()).where(AutomationLog.automation_id == automation_id)
            )
            emails = db.session.scalars(
                select(Email.message_id).where(Email.automation_id == automation_id)
            ).all()
            assert logs == 1 and len(emails) == 1
            assert cluster.sink.counts()[emails[0]] == 1
        db.session.remove()
