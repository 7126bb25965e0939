"""The engine at work: the Procfile's worker (`dramatiq web.worker`, 2 processes x 4 threads)
over a Redis of its own, mail to an SMTP sink on loopback. Automations are written due at a
moment, undispatched: the workers' own rounds send them, as in production."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from sqlalchemy import select

from scheduler import enrollment
from scheduler.models import Admin, Automation, Worker
from scheduler.schedule import bulk_insert
from tests.bench.common import SECRET, app_for, drop_schema, fresh_schema, percentile
from tests.bench.sink import Sink
from tests.cluster import ROOT, RedisServer, free_port, procfile, wait_for, worker_command
from web import journey_context
from web.extensions import db


@dataclass
class Engine:
    app: Any
    schema: str
    redis: RedisServer
    sink: Sink
    workers: subprocess.Popen[bytes]
    clients: list[int]

    def reminders(self, moments: list[datetime]) -> list[int]:
        """One reminder email per moment, for clients in turn; returns their ids."""
        tag = uuid.uuid4().hex[:8]
        now = datetime.now(UTC)
        rows = [
            {
                "client_id": self.clients[i % len(self.clients)],
                "type": "SEND_REMINDER",
                "month": 1 + (i // len(self.clients)) % 8,
                "template": "REMINDER_UPCOMING",
                "key": f"bench:{tag}:{i}",
                "source": "MANUAL",
                "status": "SCHEDULED",
                "version": 1,
                "trigger_at": at,
                "retry_count": 0,
                "max_retries": 3,
                "payload": {},
                "detail": "",
                "created_at": now,
                "updated_at": now,
            }
            for i, at in enumerate(moments)
        ]
        with self.app.app_context():
            ctx = journey_context()
            for start in range(0, len(rows), 5000):
                bulk_insert(ctx, Automation.__table__, rows[start : start + 5000])
            ctx.commit()
            ids = list(
                db.session.scalars(
                    select(Automation.id).where(Automation.key.like(f"bench:{tag}:%"))
                )
            )
            db.session.remove()
        return ids

    def lateness(self, ids: list[int], timeout: float) -> list[float]:
        """Seconds each ran after its moment, once all have run."""

        def done() -> bool:
            time.sleep(0.5)
            with self.app.app_context():
                waiting = db.session.scalar(
                    select(Automation.id)
                    .where(Automation.id.in_(ids), Automation.executed_at.is_(None))
                    .limit(1)
                )
                db.session.remove()
            return waiting is None

        wait_for(done, timeout, f"{len(ids)} automations")
        with self.app.app_context():
            rows = db.session.execute(
                select(Automation.trigger_at, Automation.executed_at).where(Automation.id.in_(ids))
            ).all()
            db.session.remove()
        return [(ran - due).total_seconds() for due, ran in rows]


def start(clients: int, processes: int, threads: int) -> Engine:
    schema, url = fresh_schema("engine")
    redis, sink = RedisServer(), Sink(free_port())
    redis.start()
    app = app_for(url)
    with app.app_context():
        ctx = journey_context()
        db.session.add(
            Admin(
                email="coach@example.com",
                name="",
                timezone="UTC",
                active=True,
                created_at=ctx.now(),
            )
        )
        later = ctx.now().date() + timedelta(days=40)
        people = [
            enrollment.Enrollment(f"Client {i}", f"c{i}@example.com", later, "UTC")
            for i in range(clients)
        ]
        made = []
        for i in range(0, clients, 1000):
            made += [c.id for c in enrollment.enroll_many(ctx, people[i : i + 1000])]
            ctx.commit()
        db.session.remove()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "DATABASE_"))}
    env |= {
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://", 1),
        "REDIS_URL": redis.url,
        "SECRET_KEY": SECRET,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "MAIL_DEFAULT_SENDER": "Journey <journey@coach.example>",
        "TZ": "UTC",
        "EMAIL_FREQUENCY_CAP": "100",  # throughput counts executions, none deferred by the cap
        **procfile("worker")[0],
    }
    workers = subprocess.Popen(
        [sys.executable, "-m", *worker_command(processes, threads)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    engine = Engine(app, schema, redis, sink, workers, made)

    def beating() -> bool:
        with app.app_context():
            n = len(db.session.scalars(select(Worker.id).where(Worker.state == "RUNNING")).all())
            db.session.remove()
        return n >= processes

    wait_for(beating, 120, "the workers to beat")
    return engine


def stop(engine: Engine) -> None:
    os.killpg(engine.workers.pid, 9)
    engine.workers.wait()
    engine.redis.kill()
    engine.sink.stop()
    with engine.app.app_context():
        db.engine.dispose()
    drop_schema(engine.schema)


def lone_latency(engine: Engine, count: int = 300) -> list[float]:
    """Reminders at random moments over 20 s: each alone at its moment."""
    rng = random.Random(3)
    base = datetime.now(UTC) + timedelta(seconds=20)
    moments = [base + timedelta(milliseconds=rng.randrange(20_000)) for _ in range(count)]
    return engine.lateness(engine.reminders(moments), 180)


def wave(engine: Engine, count: int) -> tuple[list[float], float]:
    """`count` reminders due at one moment: each one's lateness, and automations per second
    from that moment to the last one's run."""
    at = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
    late = engine.lateness(engine.reminders([at] * count), 1800)
    return late, count / max(late)


def cpu_seconds(engine: Engine) -> dict[str, float]:
    """CPU time used so far by each part of the setup: the worker processes, PostgreSQL's
    processes (every backend, so other load on the server counts too), this Redis, and the
    SMTP sink's process."""
    workers = psutil.Process(engine.workers.pid)
    parts = {
        "workers": [workers, *workers.children(recursive=True)],
        "Redis": [psutil.Process(engine.redis.process.pid)],
        "SMTP sink": [psutil.Process(engine.sink.pid)],
        "PostgreSQL": [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"],
    }
    used: dict[str, float] = {}
    for name, processes in parts.items():
        used[name] = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:  # gone meanwhile
                continue
            used[name] += times.user + times.system
    return used


def cpu_per_automation(before: dict[str, float], after: dict[str, float], count: int) -> str:
    return ", ".join(
        f"{name} {(after[name] - before[name]) / count * 1000:.2f} ms" for name in after
    )


def summary(late: list[float]) -> str:
    return (
        f"p50 {percentile(late, 0.5) * 1000:.0f} ms, p99 {percentile(late, 0.99) * 1000:.0f} ms, "
        f"max {max(late) * 1000:.0f} ms"
    )
