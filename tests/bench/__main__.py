"""`make bench`: Journey Engine against real PostgreSQL and Redis, printed as a table.

    python -m tests.bench [--clients 100000] [--small 10000] [--workers 2]

Steps: enroll 10,000 new clients, then 10,000 already under way; enroll 100,000 clients as if
24 hours ago; time the sweep over that table; measure the trigger latency of delayed messages on
a quiet system; let 2 worker processes drain the 24-hour backlog (mail to a local SMTP sink) and
report the throughput; time the admin panel's pages with 10,000 clients. Needs PostgreSQL at
BENCH_POSTGRES_URL (default 127.0.0.1:5432, database `test`) and a `redis-server` binary.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from scheduler import controls, enrollment
from scheduler.clock import ManualClock, SystemClock
from scheduler.engine import Dispatch, Unobservable
from scheduler.models import Admin, Automation, Base
from scheduler.recovery import forget_dispatches
from scheduler.sweep import sweep
from scheduler.vocab import AutomationStatus
from tests.cluster import Processes, RedisServer, SmtpSink, wait_for
from tests.harness import NoTransport
from web import create_app, journey_context
from web.extensions import db

PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Paris",
    "Asia/Tokyo",
    "UTC",
    "America/Los_Angeles",
    "Australia/Sydney",
    "America/Sao_Paulo",
]
RESULTS: list[tuple[str, str, str, str]] = []
STEPS = ("enroll", "large", "latency", "drain", "pages")


class Instant(Unobservable):
    """Stands for workers that run every dispatched automation at once (sweep timing)."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def dispatch(self, items: Sequence[Dispatch]) -> None:
        self.sent += [d.automation_id for d in items]


def row(what: str, value: str, target: str = "", note: str = "") -> None:
    RESULTS.append((what, value, target, note))
    print(f"  {what}: {value}  {note}", flush=True)


def schema_url(schema: str) -> str:
    url = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def fresh_schema(schema: str) -> str:
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = create_engine(schema_url(schema))
    Base.metadata.create_all(engine)
    engine.dispose()
    return schema_url(schema)


def drop_schema(schema: str) -> None:
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def enroll(app, clients: int, spread_days: int = 240, ahead: bool = False) -> float:
    """Clients whose start dates spread over the last `spread_days` days (every stage of the
    journey is represented; past reminders are recorded as skipped), or with `ahead` over the
    next 30 days (new clients: the usual enrollment). Returns seconds."""
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:6]
    with app.app_context():
        ctx = journey_context()
        today = ctx.now().date()
        people = [
            enrollment.Enrollment(
                f"Client {i}",
                f"c{i}.{tag}@example.com",
                today + timedelta(days=rng.randrange(1, 31))
                if ahead
                else today - timedelta(days=rng.randrange(spread_days)),
                rng.choice(ZONES),
            )
            for i in range(clients)
        ]
        started = time.perf_counter()
        for i in range(0, clients, 1000):
            enrollment.enroll_many(ctx, people[i : i + 1000])
            ctx.commit()
        return time.perf_counter() - started


def count(app, *where) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Automation).where(*where))
        db.session.remove()
        return int(n or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"which steps, comma-separated (default: all of {', '.join(STEPS)}; "
        "drain needs large)",
    )
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if steps - set(STEPS) or ("drain" in steps and "large" not in steps):
        parser.error(f"--steps: choose from {', '.join(STEPS)} (drain needs large)")
    run = uuid.uuid4().hex[:6]
    print(
        f"Journey Engine benchmark: {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )

    if "enroll" in steps:
        # 1. Enrollment, 10,000 clients.
        schema = f"bench_{run}_small"
        url = fresh_schema(schema)
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None},
            clock=SystemClock(),
            dispatcher=NoTransport(),
        )
        seconds = enroll(app, args.small, ahead=True)
        row(
            f"enroll {args.small:,} new clients, starting within 30 days "
            f"({32 * args.small:,} automations)",
            f"{seconds:.1f} s",
            "< 10 s",
            f"{args.small / seconds:,.0f} clients/s",
        )
        seconds = enroll(app, args.small)
        row(
            f"enroll {args.small:,} clients already under way, started up to 240 days ago "
            f"({32 * args.small:,} automations, past reminders logged as skipped)",
            f"{seconds:.1f} s",
            "",
            f"{args.small / seconds:,.0f} clients/s",
        )
        with app.app_context():
            db.engine.dispose()
        drop_schema(schema)

    url = ""  # the large table's, when there is one (the drain runs on it)
    if "large" in steps:
        # 2. Enrollment, 100,000 clients, planned as of 24 hours ago (for the backlog below).
        schema = f"bench_{run}_large"
        url = fresh_schema(schema)
        then = datetime.now(UTC) - timedelta(hours=24)
        clock = ManualClock(then)
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None},
            clock=clock,
            dispatcher=NoTransport(),
        )
        seconds = enroll(app, args.clients)
        total = count(app)
        row(
            f"enroll {args.clients:,} clients ({total:,} automations)",
            f"{seconds:.1f} s",
            "",
            f"{args.clients / seconds:,.0f} clients/s",
        )
        with app.app_context():
            # Up to 24 hours ago the engine ran as it should: what was due then is history.
            db.session.execute(
                text(
                    "UPDATE automations SET status = 'COMPLETED', executed_at = trigger_at "
                    "WHERE status = 'SCHEDULED' AND trigger_at < :then"
                ),
                {"then": then},
            )
            db.session.commit()
            # ...and autovacuum would have cleared the rows that left the due index.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("automations", "clients", "automation_logs"):
                    conn.execute(text(f"VACUUM ANALYZE {table}"))
            db.session.add(
                Admin(
                    email="coach@example.com", name="", timezone="UTC", active=True, created_at=then
                )
            )
            db.session.commit()

        # 3. The sweep over that table: 60 sweeps a minute apart, then one every 20 minutes of
        # (simulated) time across the next day, so that each zone's 9:00 wave of automations enters
        # the one-hour horizon in some sweep (that sweep dispatches the whole wave).
        timings = []
        waves: list[int] = []  # how many each sweep dispatched
        dispatched = 0
        workers = Instant()
        ran: list[int] = []
        app.extensions["journey"].dispatcher = workers
        with app.app_context():
            for step in range(60 + 72):
                started = time.perf_counter()
                report = sweep(journey_context())
                timings.append((time.perf_counter() - started) * 1000)
                dispatched += report.dispatched
                waves.append(report.dispatched)
                if workers.sent:  # ...and the workers run what it sent
                    db.session.execute(
                        text(
                            "UPDATE automations SET status = 'COMPLETED', executed_at = trigger_at "
                            "WHERE id = ANY(:ids)"
                        ),
                        {"ids": workers.sent},
                    )
                    db.session.commit()
                    ran += workers.sent
                    workers.sent = []
                db.session.remove()
                minutes = step + 1 if step < 60 else 60 + 20 * (step - 59)
                clock.set(then + timedelta(minutes=minutes))
            # Undo the stand-in workers: the same 24 hours are the backlog drained below.
            db.session.execute(
                text(
                    "UPDATE automations SET status = 'SCHEDULED', executed_at = NULL "
                    "WHERE id = ANY(:ids)"
                ),
                {"ids": ran},
            )
            db.session.commit()
            forget_dispatches(journey_context())
        app.extensions["journey"].dispatcher = NoTransport()
        row(
            f"sweep over {total:,} automations",
            f"{statistics.median(timings):.0f} ms median, "
            f"{sorted(timings)[int(len(timings) * 0.95) - 1]:.0f} ms p95, "
            f"{max(timings):.0f} ms max ({max(timings[1:]):.0f} ms after the first)",
            "< 200 ms",
            f"{len(timings)} sweeps dispatched {dispatched:,}; the slowest (sweep "
            f"{timings.index(max(timings)) + 1}) dispatched {waves[timings.index(max(timings))]:,}"
            f"; largest batch {max(waves):,}",
        )

    if steps & {"latency", "drain"}:
        # Redis, an SMTP sink, and the environment of the worker and sweeper processes.
        redis = RedisServer()
        redis.start()
        sink = SmtpSink()
        sink.controller.start()
        logs = Path(os.environ.get("BENCH_LOGS", "/tmp")) / f"journey-bench-{run}"
        logs.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "DATABASE_"))}
        env |= {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(sink.port),
            "TZ": "UTC",
            # Throughput counts executions: none is deferred by the per-client frequency cap.
            "EMAIL_FREQUENCY_CAP": "100",
            "JOURNEY_TEST_LOGS": str(logs),
            "MAIL_DEFAULT_SENDER": "Journey <journey@coach.example>",
        }
        processes = Processes(env)
        try:
            if "latency" in steps:
                # 4. Trigger latency on a quiet system: 300 delayed messages through Redis.
                latency_schema = f"bench_{run}_latency"
                quiet_url = fresh_schema(latency_schema)
                quiet = create_app(
                    {"SQLALCHEMY_DATABASE_URI": quiet_url, "REDIS_URL": None},
                    clock=SystemClock(),
                    dispatcher=NoTransport(),
                )
                quiet.extensions["journey"].horizon = timedelta(0)  # the sweeper sends them
                with quiet.app_context():
                    ctx = journey_context()
                    later = datetime.now(UTC).date() + timedelta(days=30)
                    people = enrollment.enroll_many(
                        ctx,
                        [
                            enrollment.Enrollment(f"Quiet {i}", f"q{i}@example.com", later, "UTC")
                            for i in range(300)
                        ],
                    )
                    ctx.commit()
                    base = datetime.now(UTC) + timedelta(seconds=20)
                    ids = [
                        controls.schedule_by_hand(
                            ctx,
                            client,
                            "SEND_REMINDER",
                            template="REMINDER_UPCOMING",
                            month=1,
                            at=base + timedelta(milliseconds=random.Random(i).randrange(20_000)),
                        ).id
                        for i, client in enumerate(people)
                    ]
                    ctx.commit()
                    db.session.remove()
                quiet_processes = Processes(env | {"DATABASE_URL": quiet_url})
                for _ in range(args.workers):
                    quiet_processes.start_worker()
                quiet_processes.start_sweeper(every=1)
                try:
                    wait_for(
                        lambda: (
                            count(
                                quiet, Automation.id.in_(ids), Automation.executed_at.is_not(None)
                            )
                            == len(ids)
                        ),
                        180,
                        "the delayed automations",
                    )
                finally:
                    quiet_processes.stop()
                with quiet.app_context():
                    rows = db.session.execute(
                        select(Automation.trigger_at, Automation.executed_at).where(
                            Automation.id.in_(ids)
                        )
                    ).all()
                    db.engine.dispose()
                drop_schema(latency_schema)
                latency = sorted((done - due).total_seconds() for due, done in rows)
                p50 = latency[len(latency) // 2]
                p99 = latency[int(len(latency) * 0.99) - 1]
                row(
                    f"trigger latency, {len(latency)} delayed messages",
                    f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms",
                    "p99 < 1 s",
                    "5-minute polling: p50 150 s, p99 297 s",
                )

            if "drain" in steps:
                # 5. The outage is over: drain the 24-hour backlog with real workers over Redis.
                now = datetime.now(UTC)
                backlog = count(
                    app,
                    Automation.status == AutomationStatus.SCHEDULED,
                    Automation.trigger_at <= now,
                )
                for _ in range(args.workers):
                    processes.start_worker()
                time.sleep(3)  # let the workers boot before the clock starts
                started = time.perf_counter()
                processes.start_sweeper(every=1)

                def drained() -> bool:
                    time.sleep(0.5)  # each look is two index scans: do not steal the workers' CPU
                    return (
                        count(
                            app,
                            Automation.status == AutomationStatus.SCHEDULED,
                            Automation.trigger_at <= now,
                        )
                        == 0
                        and count(app, Automation.status == AutomationStatus.RUNNING) == 0
                    )

                wait_for(drained, 3600, "the backlog to drain")
                drain = time.perf_counter() - started
                executed = count(app, Automation.executed_at >= now)
                row(
                    f"drain a 24 h backlog, {args.clients:,} clients ({backlog:,} due, "
                    f"{executed:,} run with follow-ups)",
                    f"{drain:.1f} s",
                    "",
                    f"{len(sink.received) - 300:,} emails",
                )
                row(
                    f"execution throughput, {args.workers} worker processes x 4 threads",
                    f"{executed / drain:,.0f} automations/s",
                    ">= 500/s",
                    "mail to a local SMTP sink",
                )
        finally:
            processes.stop()
            redis.kill()
            sink.controller.stop()

    if "large" in steps:
        with app.app_context():
            db.engine.dispose()
        drop_schema(schema)

    if "pages" in steps:
        # 6. The admin panel's pages with 10,000 clients.
        from tests.bench.pages import bench_pages

        for name, p50, p95 in bench_pages(args.small):
            row(
                f"panel page: {name}, {args.small:,} clients",
                f"p50 {p50:.0f} ms, p95 {p95:.0f} ms",
                "< 100 ms",
                "logged in, through the app",
            )

    print("\n| Measure | Result | Target | Note |\n| --- | --- | --- | --- |")
    for what, value, target, note in RESULTS:
        print(f"| {what} | {value} | {target} | {note} |")


if __name__ == "__main__":
    sys.exit(main())
