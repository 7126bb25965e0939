"""What every benchmark step shares: a fresh PostgreSQL schema, an app on it, clients enrolled
in bulk, counts, and the results table."""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from scheduler import enrollment
from scheduler.clock import Clock, SystemClock
from scheduler.engine import Dispatcher
from scheduler.models import Automation, Base
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
SECRET = "bench-" + "k" * 40  # the processes refuse to start on Redis without a real key


def row(what: str, value: str, target: str = "", note: str = "") -> None:
    """One line of the results table (printed as it comes, and again at the end)."""
    RESULTS.append((what, value, target, note))
    print(f"  {what}: {value}" + (f"  (target {target})" if target else ""), flush=True)


def table() -> str:
    lines = ["| Measure | Result | Target | Note |", "| --- | --- | --- | --- |"]
    lines += [f"| {what} | {value} | {target} | {note} |" for what, value, target, note in RESULTS]
    return "\n".join(lines)


def sa(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def schema_url(schema: str) -> str:
    url = make_url(sa(PG_URL)).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def fresh_schema(name: str) -> tuple[str, str]:
    """A new schema with the engine's tables; returns (its name, its SQLAlchemy URL)."""
    schema = f"bench_{uuid.uuid4().hex[:6]}_{name}"
    admin = create_engine(sa(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = create_engine(schema_url(schema))
    Base.metadata.create_all(engine)
    engine.dispose()
    return schema, schema_url(schema)


def drop_schema(schema: str) -> None:
    admin = create_engine(sa(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def app_for(url: str, clock: Clock | None = None, dispatcher: Dispatcher | None = None) -> Any:
    """The app on a schema, with no broker of its own unless a dispatcher is given."""
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None, "SECRET_KEY": SECRET},
        clock=clock or SystemClock(),
        dispatcher=dispatcher or NoTransport(),
    )


def enroll(app: Any, clients: int, spread_days: int = 240, ahead: bool = False) -> float:
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
        elapsed = time.perf_counter() - started
        db.session.remove()
        return elapsed


def count(app: Any, *where: Any) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Automation).where(*where))
        db.session.remove()
        return int(n or 0)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))] if ordered else 0.0


def time_page(
    web: Any, path: str, runs: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    """p50 and p95 in milliseconds of `runs` GETs of `path` (after two that warm the caches)."""
    times = []
    for _ in range(runs + 2):
        started = time.perf_counter()
        answer = web.get(path, headers=headers or {})
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    times = sorted(times[2:])
    return statistics.median(times), times[int(len(times) * 0.95) - 1]
