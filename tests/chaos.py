"""`make chaos`: the Procfile's processes (Dramatiq workers and periodiq) on real PostgreSQL and
Redis, mail to an SMTP sink, while faults strike: kill -9 of workers, SIGTERM (a platform's
restart), Redis restarted empty, PostgreSQL refusing connections. Then it waits for the backlog
to drain and prints what happened to every automation and email.

    python -m tests.chaos [--automations 10000] [--kills 100] [--sigterms 20]
                          [--redis-restarts 20] [--pg-outages 20] [--workers 2] [--gap 1.25]

A two-minute version runs in the test suite (tests/test_chaos.py). Needs PostgreSQL at
TEST_POSTGRES_URL (default 127.0.0.1:5432, database `test`) and a `redis-server` binary.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from scheduler import enrollment
from scheduler.clock import SystemClock
from scheduler.models import Admin, Automation, AutomationLog, Base, Email, Worker
from scheduler.schedule import bulk_insert
from tests.cluster import Processes, Proxy, RedisServer, SmtpSink, wait_for
from tests.harness import NoTransport
from web import create_app, journey_context
from web.extensions import db

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
    "postgresql+psycopg://", "postgresql://", 1
)
FINAL = ("COMPLETED", "SKIPPED", "FAILED")
PER_CLIENT = 5  # reminders each client gets during the run (the frequency cap is raised)


@dataclass(frozen=True)
class Plan:
    automations: int = 10_000
    kills: int = 100
    sigterms: int = 20
    redis_restarts: int = 20
    pg_outages: int = 20
    outage_seconds: tuple[int, int] = (5, 30)
    workers: int = 2
    seed: int = 7
    # Seconds between one fault's end and the next fault (a random pause up to twice this):
    # short, faults compound (a worker killed again while it starts); longer, each fault's
    # recovery shows on its own.
    gap: float = 1.25

    @classmethod
    def small(cls) -> Plan:
        """About two minutes: what `make test` runs."""
        return cls(600, kills=4, sigterms=2, redis_restarts=2, pg_outages=2, outage_seconds=(5, 8))

    def faults(self) -> list[str]:
        kinds = (
            ["kill"] * self.kills
            + ["sigterm"] * self.sigterms
            + ["redis"] * self.redis_restarts
            + ["postgres"] * self.pg_outages
        )
        random.Random(self.seed).shuffle(kinds)
        return kinds


@dataclass
class Fault:
    kind: str
    start: datetime
    end: datetime
    detail: str = ""


@dataclass
class Run:
    plan: Plan
    faults: list[Fault] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    drain_seconds: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)


def schema_url(schema: str) -> str:
    url = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def run(plan: Plan, logs: Path | None = None, say: Any = print) -> Run:
    """Carry out the plan; returns what happened (`Run.results` holds the table's figures)."""
    logs = logs or Path(tempfile.mkdtemp(prefix="journey-chaos-"))
    logs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(plan.seed)
    schema = f"chaos_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(schema_url(schema))
    Base.metadata.create_all(engine)
    engine.dispose()
    url = make_url(schema_url(schema))
    redis, sink = RedisServer(), SmtpSink()
    redis.start()
    sink.controller.start()
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "DATABASE_"))}
    env |= {
        "DATABASE_URL": url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        ),
        "REDIS_URL": redis.url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "MAIL_DEFAULT_SENDER": "Journey <journey@coach.example>",
        "TZ": "UTC",
        "JOURNEY_TEST_LOGS": str(logs),
        "EMAIL_FREQUENCY_CAP": "100",
        "SECRET_KEY": env.get("SECRET_KEY") or uuid.uuid4().hex * 2,
    }
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
            "REDIS_URL": None,
            "SECRET_KEY": env["SECRET_KEY"],
        },
        clock=SystemClock(),
        dispatcher=NoTransport(),
    )
    processes = Processes(env)
    result = Run(plan)
    try:
        faults = plan.faults()
        # Each fault takes a few seconds (an outage, its length); the automations fall due
        # across the whole stretch, so that faults strike while they are due.
        low, high = plan.outage_seconds
        expected = (4 + plan.gap) * (len(faults) - plan.pg_outages) + plan.pg_outages * (
            (low + high) / 2 + 2 + plan.gap
        )
        start = datetime.now(UTC) + timedelta(seconds=20)
        stretch = max(60.0, expected * 1.1)
        ids = load(app, plan.automations, start, stretch)
        say(f"chaos: {plan.automations:,} automations over {stretch:.0f} s; {len(faults)} faults")
        for _ in range(plan.workers):
            processes.start_worker()
        processes.start_scheduler()
        killed: set[int] = set()
        while datetime.now(UTC) < start:
            time.sleep(0.2)
        for kind in faults:
            result.unexpected_exits += exits(processes, killed)
            result.faults.append(strike(kind, processes, proxy, redis, killed, rng, plan))
            time.sleep(rng.uniform(0.4 * plan.gap, 1.6 * plan.gap))
        last = datetime.now(UTC)
        say(f"chaos: faults over at {last:%H:%M:%S}; waiting for the backlog to drain")
        wait_for(lambda: drained(app, ids), 1800, "the backlog to drain")
        result.drain_seconds = (datetime.now(UTC) - last).total_seconds()
        result.unexpected_exits += exits(processes, killed)
        time.sleep(2)  # let the last emails land
        result.results = audit(app, ids, sink, result.faults)
    finally:
        processes.stop()
        redis.kill()
        sink.controller.stop()
        with app.app_context():
            db.engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    return result


def load(app: Any, count: int, start: datetime, stretch: float) -> list[int]:
    """`count` reminders for `count / PER_CLIENT` clients (who start next month), due at random
    moments from `start` over `stretch` seconds; returns their ids."""
    rng = random.Random(1)
    with app.app_context():
        ctx = journey_context()
        db.session.add(
            Admin(email="coach@example.com", name="", timezone="UTC", active=True, created_at=start)
        )
        later = start.date() + timedelta(days=40)
        people = [
            enrollment.Enrollment(f"Client {i}", f"c{i}@example.com", later, "UTC")
            for i in range(-(-count // PER_CLIENT))
        ]
        clients = enrollment.enroll_many(ctx, people)
        now = datetime.now(UTC)
        rows = [
            {
                "client_id": clients[i // PER_CLIENT].id,
                "type": "SEND_REMINDER",
                "month": 1 + i % PER_CLIENT,
                "template": "REMINDER_UPCOMING",
                "key": f"chaos:{i}",
                "source": "MANUAL",
                "status": "SCHEDULED",
                "version": 1,
                "trigger_at": start + timedelta(seconds=rng.uniform(0, stretch)),
                "retry_count": 0,
                "max_retries": 3,
                "payload": {},
                "detail": "",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        bulk_insert(ctx, Automation.__table__, rows)
        ctx.commit()
        ids = list(db.session.scalars(select(Automation.id).where(Automation.key.like("chaos:%"))))
        db.session.remove()
    return ids


def strike(
    kind: str,
    processes: Processes,
    proxy: Proxy,
    redis: RedisServer,
    killed: set[int],
    rng: random.Random,
    plan: Plan,
) -> Fault:
    began = datetime.now(UTC)
    detail = ""
    if kind in ("kill", "sigterm"):
        live = [w for w in processes.workers if w.poll() is None]
        victim = rng.choice(live)
        killed.add(victim.pid)
        if kind == "kill":
            processes.kill9(victim)
        else:
            processes.sigterm(victim)
            try:
                code = victim.wait(timeout=30)
                detail = f"exit {code}"
            except Exception:
                processes.kill9(victim)
                detail = "killed after 30 s"
        time.sleep(rng.uniform(0.5, 2.5))  # the platform starts its replacement
        processes.start_worker()
    elif kind == "redis":
        redis.kill()
        time.sleep(1)
        redis.start()
    elif kind == "postgres":
        seconds = rng.uniform(*plan.outage_seconds)
        detail = f"{seconds:.0f} s"
        proxy.outage(seconds)
    return Fault(kind, began, datetime.now(UTC), detail)


def exits(processes: Processes, killed: set[int]) -> list[str]:
    """Processes that ended without being killed by the run."""
    found = []
    everyone = [*processes.workers, *([processes.scheduler] if processes.scheduler else [])]
    for process in everyone:
        if process.poll() is not None and process.pid not in killed:
            killed.add(process.pid)
            found.append(f"{' '.join(map(str, process.args[-4:]))} (exit {process.returncode})")
    return found


def drained(app: Any, ids: list[int]) -> bool:
    time.sleep(1)
    with app.app_context():
        waiting = db.session.scalar(
            select(func.count()).where(Automation.id.in_(ids), Automation.status.not_in(FINAL))
        )
        db.session.remove()
    return waiting == 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def audit(app: Any, ids: list[int], sink: SmtpSink, faults: list[Fault]) -> dict[str, Any]:
    with app.app_context():
        rows = db.session.execute(
            select(
                Automation.id, Automation.status, Automation.trigger_at, Automation.executed_at
            ).where(Automation.id.in_(ids))
        ).all()
        finals = dict(
            db.session.execute(
                select(AutomationLog.automation_id, func.count())
                .where(AutomationLog.automation_id.in_(ids), AutomationLog.status.in_(FINAL))
                .group_by(AutomationLog.automation_id)
            ).all()
        )
        emails = db.session.execute(
            select(Email.key, Email.message_id, Email.status, Email.uncertain_at).where(
                Email.automation_id.in_(ids)
            )
        ).all()
        states = Counter(db.session.scalars(select(Worker.state)))
        db.session.remove()
    by_key = Counter(sink.keys)
    by_id = sink.counts()
    ours = {key for key, *_ in emails}
    duplicated_keys = {k for k in ours if by_key[k] > 1}
    uncertain = {key for key, _, _, at in emails if at is not None}
    lateness = [(done - due).total_seconds() for _, status, due, done in rows if done is not None]
    struck = [f for f in faults if f.kind in ("kill", "sigterm", "redis")]

    def during(due: datetime) -> bool:
        return any(
            f.start - timedelta(seconds=5) <= due <= f.end + timedelta(seconds=30) for f in struck
        )

    late_in_faults = [
        (done - due).total_seconds() for _, _, due, done in rows if done is not None and during(due)
    ]
    return {
        "due": len(rows),
        "executed": sum(1 for _, status, _, _ in rows if status in ("COMPLETED", "SKIPPED")),
        "executed twice": sum(1 for n in finals.values() if n > 1),
        "lost": sum(1 for i, status, _, _ in rows if status not in FINAL or finals.get(i, 0) == 0),
        "failed": sum(1 for _, status, _, _ in rows if status == "FAILED"),
        "emails expected": len(emails),
        "emails received": sum(1 for k in ours if by_key[k] > 0),
        "duplicated (X-Journey-Key)": sum(max(0, by_key[k] - 1) for k in ours),
        "duplicated (Message-ID)": sum(max(0, by_id[m] - 1) for _, m, _, _ in emails),
        "duplicates recorded as possibly sent twice": len(duplicated_keys & uncertain),
        "missing": sum(1 for k in ours if by_key[k] == 0),
        "lateness p50 / p99 / max (s)": (
            f"{percentile(lateness, 0.5):.1f} / {percentile(lateness, 0.99):.1f} / "
            f"{max(lateness, default=0):.1f}"
        ),
        "lateness due in kill/SIGTERM/Redis faults, p99 / max (s)": (
            f"{percentile(late_in_faults, 0.99):.1f} / {max(late_in_faults, default=0):.1f}"
            f" ({len(late_in_faults):,} automations)"
        ),
        "p99 in faults": percentile(late_in_faults, 0.99),
        "max in faults": max(late_in_faults, default=0.0),
        "workers at the end": dict(states),
        "_duplicated_unrecorded": sorted(duplicated_keys - uncertain),
    }


def table(result: Run) -> str:
    kinds = Counter(f.kind for f in result.faults)
    outages = [(f.end - f.start).total_seconds() for f in result.faults if f.kind == "postgres"]
    lines = [
        "| Measure | Value |",
        "| --- | --- |",
        f"| faults | {kinds['kill']} kill -9, {kinds['sigterm']} SIGTERM, "
        f"{kinds['redis']} Redis restarts (empty), {kinds['postgres']} PostgreSQL outages"
        + (f" ({min(outages):.0f}-{max(outages):.0f} s)" if outages else "")
        + " |",
    ]
    for key, value in result.results.items():
        if not key.startswith("_") and key not in ("p99 in faults", "max in faults"):
            lines.append(f"| {key} | {value} |")
    lines.append(f"| time to drain after the last fault | {result.drain_seconds:.0f} s |")
    lines.append(
        f"| processes that exited on their own | {len(result.unexpected_exits)}"
        + (f": {'; '.join(result.unexpected_exits)}" if result.unexpected_exits else "")
        + " |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Plan()
    parser.add_argument("--automations", type=int, default=defaults.automations)
    parser.add_argument("--kills", type=int, default=defaults.kills)
    parser.add_argument("--sigterms", type=int, default=defaults.sigterms)
    parser.add_argument("--redis-restarts", type=int, default=defaults.redis_restarts)
    parser.add_argument("--pg-outages", type=int, default=defaults.pg_outages)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--gap", type=float, default=defaults.gap, help="seconds between faults")
    args = parser.parse_args()
    plan = Plan(
        args.automations,
        kills=args.kills,
        sigterms=args.sigterms,
        redis_restarts=args.redis_restarts,
        pg_outages=args.pg_outages,
        workers=args.workers,
        seed=args.seed,
        gap=args.gap,
    )
    started = time.monotonic()
    result = run(plan)
    print(f"\nchaos run: {(time.monotonic() - started) / 60:.1f} minutes\n")
    print(table(result))
    bad = result.results
    ok = (
        bad["lost"] == 0
        and bad["executed twice"] == 0
        and bad["missing"] == 0
        and not bad["_duplicated_unrecorded"]
        and not result.unexpected_exits
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
