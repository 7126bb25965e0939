"""`make bench`: Journey Engine against real PostgreSQL and Redis, printed as a table.

    python -m tests.bench [--steps ceilings,enroll,sweep,engine,pages,program,metrics,risk]
        [--clients 100000]

Steps:
- ceilings: what this machine allows, measured now: Dramatiq moving no-op messages with the
  engine's processes and threads, and PostgreSQL's single-row insert commits (pgbench);
- enroll: 10,000 new clients, then 10,000 already under way;
- sweep: the sweep over the automations of 100,000 clients;
- engine: the Procfile's worker (2 processes x 4 threads) over Redis, mail to an SMTP sink:
  trigger latency of lone automations, a 3,000-automation wave at one instant, and execution
  throughput on a 10,000-automation wave (with its ratio to the no-op ceiling);
- pages: the admin panel's pages with 100,000 clients;
- program: the impact preview of a program edit with 10,000 clients in flight, and its publish;
- metrics: the success metrics with 100,000 clients and a year of history: the worker's counting
  ahead, and every variant of their pages;
- risk: the daily refresh of every client's risk score with 10,000 clients with history, and
  the refresh an at-risk check-in batch makes.
Needs PostgreSQL at BENCH_POSTGRES_URL (default 127.0.0.1:5432, database `test`) and a
`redis-server` binary.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from scheduler.clock import ManualClock
from scheduler.engine import Dispatch, Unobservable
from scheduler.models import Admin
from scheduler.recovery import forget_dispatches
from scheduler.sweep import sweep
from tests.bench import ceilings, engine
from tests.bench.common import (
    app_for,
    count,
    drop_schema,
    enroll,
    fresh_schema,
    percentile,
    row,
    table,
)
from web import journey_context
from web.extensions import db

STEPS = ("ceilings", "enroll", "sweep", "engine", "pages", "program", "metrics", "risk")
PROCESSES, THREADS = 2, 4


class Instant(Unobservable):
    """Stands for workers that run every dispatched automation at once (sweep timing)."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def dispatch(self, items: list[Dispatch]) -> None:
        self.sent += [d.automation_id for d in items]


def bench_ceilings() -> float:
    noop = ceilings.noop_throughput(PROCESSES, THREADS)
    row(
        f"Dramatiq no-op ceiling, {PROCESSES} worker processes x {THREADS} threads",
        f"{noop:,.0f} messages/s",
        "",
        "a do-nothing actor through the same Redis setup: what the framework can carry here",
    )
    commits = ceilings.commit_rate()
    if commits is not None:
        row(
            "PostgreSQL commit ceiling (pgbench, 8 clients, single-row inserts)",
            f"{commits:,.0f} commits/s",
        )
    return noop


def bench_enroll(small: int) -> None:
    schema, url = fresh_schema("enroll")
    app = app_for(url)
    try:
        seconds = enroll(app, small, ahead=True)
        row(
            f"enroll {small:,} new clients, starting within 30 days ({32 * small:,} automations)",
            f"{seconds:.1f} s",
            "< 5 s",
            f"{small / seconds:,.0f} clients/s",
        )
        seconds = enroll(app, small)
        row(
            f"enroll {small:,} clients already under way, started up to 240 days ago "
            f"({32 * small:,} automations, past reminders logged as skipped)",
            f"{seconds:.1f} s",
            "",
            f"{small / seconds:,.0f} clients/s",
        )
    finally:
        with app.app_context():
            db.engine.dispose()
        drop_schema(schema)


def bench_sweep(clients: int) -> None:
    """The sweep over every automation of `clients` clients, planned as of a day ago: 60 sweeps
    a minute apart, then one every 20 minutes of (simulated) time across the day, so that each
    zone's 9:00 wave enters the horizon in some sweep."""
    schema, url = fresh_schema("sweep")
    then = datetime.now(UTC) - timedelta(hours=24)
    clock = ManualClock(then)
    workers = Instant()
    app = app_for(url, clock, workers)
    try:
        seconds = enroll(app, clients)
        total = count(app)
        row(
            f"enroll {clients:,} clients ({total:,} automations)",
            f"{seconds:.1f} s",
            "",
            f"{clients / seconds:,.0f} clients/s",
        )
        with app.app_context():
            db.session.execute(
                text(
                    "UPDATE automations SET status = 'COMPLETED', executed_at = trigger_at "
                    "WHERE status = 'SCHEDULED' AND trigger_at < :then"
                ),
                {"then": then},
            )
            db.session.add(
                Admin(
                    email="coach@example.com", name="", timezone="UTC", active=True, created_at=then
                )
            )
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for name in ("automations", "clients", "automation_logs"):
                    conn.execute(text(f"VACUUM ANALYZE {name}"))
            forget_dispatches(journey_context())
            db.session.commit()
            timings, waves = [], []
            for step in range(60 + 72):
                started = time.perf_counter()
                report = sweep(journey_context())
                timings.append((time.perf_counter() - started) * 1000)
                waves.append(report.dispatched)
                if workers.sent:  # ...and the stand-in workers run what it sent
                    db.session.execute(
                        text(
                            "UPDATE automations SET status = 'COMPLETED', executed_at = "
                            "trigger_at WHERE id = ANY(:ids)"
                        ),
                        {"ids": workers.sent},
                    )
                    db.session.commit()
                    workers.sent = []
                db.session.remove()
                minutes = step + 1 if step < 60 else 60 + 20 * (step - 59)
                clock.set(then + timedelta(minutes=minutes))
        slowest = timings.index(max(timings))
        row(
            f"sweep over {total:,} automations",
            f"{statistics.median(timings):.0f} ms median, {percentile(timings, 0.95):.0f} ms "
            f"p95, {max(timings):.0f} ms max",
            "< 200 ms",
            f"{len(timings)} sweeps dispatched {sum(waves):,}; the slowest (sweep "
            f"{slowest + 1}) dispatched {waves[slowest]:,}; largest batch {max(waves):,}",
        )
    finally:
        with app.app_context():
            db.engine.dispose()
        drop_schema(schema)


def bench_engine(noop: float | None, wave_size: int, throughput_size: int) -> None:
    running = engine.start(clients=2_000, processes=PROCESSES, threads=THREADS)
    try:
        late = engine.lone_latency(running)
        row(
            f"trigger latency, {len(late)} lone automations (delayed messages)",
            engine.summary(late),
            "p99 < 1 s",
            "5-minute polling: p50 150 s, p99 297 s",
        )
        late, _ = engine.wave(running, wave_size)
        row(
            f"a wave of {wave_size:,} automations due at one instant: how late each ran",
            engine.summary(late),
            "last < 10 s",
            "the last one is the wave's tail",
        )
        before = engine.cpu_seconds(running)
        late, rate = engine.wave(running, throughput_size)
        used = engine.cpu_per_automation(before, engine.cpu_seconds(running), throughput_size)
        ratio = f"; {rate / noop:.2f} of the no-op ceiling" if noop else ""
        row(
            f"execution throughput, {PROCESSES} worker processes x {THREADS} threads",
            f"{rate:,.0f} automations/s",
            ">= 500/s, >= 0.25 of the ceiling",
            f"a {throughput_size:,}-email wave, mail to a local SMTP sink{ratio}; "
            f"{running.sink.received:,} emails received in the run",
        )
        row("CPU per automation in that wave, by process", used, "", "what limits throughput")
    finally:
        engine.stop(running)


def bench_pages(clients: int) -> None:
    from tests.bench.pages import COUNTED
    from tests.bench.pages import bench_pages as pages

    for name, p50, p95 in pages(clients):
        if name == COUNTED:
            row(f"{name}, {clients:,} clients", f"{p50:,.0f} ms", "", "the page reads them")
            continue
        row(
            f"panel page: {name}, {clients:,} clients",
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms",
            "< 100 ms",
            "logged in, through the app",
        )


def bench_program(clients: int) -> None:
    from tests.bench.program import bench_program as program

    for cells in program(clients):
        row(*cells)


def bench_metrics(clients: int) -> None:
    from tests.bench.metrics import bench_metrics as measured

    for cells in measured(clients):
        row(*cells)


def bench_risk(clients: int) -> None:
    from tests.bench.risk import bench_risk as measured

    for cells in measured(clients):
        row(*cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--wave", type=int, default=3_000)
    parser.add_argument("--throughput", type=int, default=10_000)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"of {', '.join(STEPS)}")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if steps - set(STEPS):
        parser.error(f"--steps: choose from {', '.join(STEPS)}")
    print(
        f"Journey Engine benchmark: {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    noop = bench_ceilings() if "ceilings" in steps else None
    if "enroll" in steps:
        bench_enroll(args.small)
    if "sweep" in steps:
        bench_sweep(args.clients)
    if "engine" in steps:
        bench_engine(noop, args.wave, args.throughput)
    if "pages" in steps:
        bench_pages(args.clients)
    if "program" in steps:
        bench_program(args.small)
    if "metrics" in steps:
        bench_metrics(args.clients)
    if "risk" in steps:
        bench_risk(args.small)
    print("\n" + table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
