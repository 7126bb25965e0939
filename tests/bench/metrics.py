"""The success metrics with 100,000 clients and a year of history on PostgreSQL (`python -m
tests.bench.metrics [CLIENTS]`, also the `metrics` step of `make bench`: `python -m tests.bench
--steps metrics`).

The history is written straight in SQL (enrolling and running a year of journeys would take
hours): clients whose start dates spread over the last 365 days, each past month with its
planned generation, its log (upcoming reminder, generation, a retry now and then, a failure
now and then, delivery, celebration, skipped overdue reminder) and its deliverable; about
600,000 months, 3 million log rows. Then:
- the worker's counting ahead (`scheduler.precount.keep`): its first run over the whole year,
  a run a minute later, and the run after a day has passed (yesterday and today's hours to
  count);
- what a page costs when the worker has not counted: the first request after a day passed, and
  the first request of a 90-day window with nothing kept at all;
- each page (every variant: windows, coach, month, cohort, rows, funnels, the API) requested
  through the app, logged in, 20 times after two warm-up requests, and once alone before them
  (the single-request time); with the load average of the machine while they ran."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from werkzeug.security import generate_password_hash

from scheduler import metrics, precount
from scheduler.models import Admin, MetricPeriod
from tests.bench.common import app_for, drop_schema, fresh_schema, time_page
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, browser, log_in
from web import journey_context
from web.api.tokens import issue
from web.extensions import db

COACHES = 5

HISTORY = [
    # clients: start dates over the last 365 days; 1 in 6 without a coach; 1 in 17 turned
    # reminders off.
    """
    INSERT INTO clients (id, name, email, timezone, start_date, current_month, held_days,
        onboarding, business_plan, coach_id, reminders_enabled, celebrations_enabled,
        created_at, updated_at)
    SELECT i, 'Client ' || i, 'c' || i || '@example.com', 'UTC', CAST(:today AS date) - (i % 365),
        LEAST(8, (i % 365) / 30 + 1), 0, '{}', '',
        CASE WHEN i % 6 = 0 THEN NULL ELSE (i % :coaches) + 1 END, i % 17 <> 0, true,
        :now, :now
    FROM generate_series(1, :clients) AS i
    """,
    # each past month's planned generation, due at its milestone, 09:00 UTC
    """
    INSERT INTO automations (client_id, type, month, key, source, status, version, trigger_at,
        retry_count, max_retries, payload, detail, created_at, updated_at)
    SELECT c.id, 'GENERATE_DELIVERABLE', m, 'generate:m' || m, 'PLAN', 'COMPLETED', 1,
        (c.start_date + 30 * (m - 1))::timestamp AT TIME ZONE 'UTC' + interval '9 hours',
        0, 3, '{}', '', :now, :now
    FROM clients c CROSS JOIN generate_series(1, 8) AS m
    WHERE c.start_date + 30 * (m - 1) <= CAST(:today AS date) - 1
    """,
    # the log of each month
    """
    INSERT INTO automation_logs (at, client_id, automation_id, type, month, template, status,
        attempt, detail)
    SELECT x.at, x.client_id, x.automation_id, x.type, x.month, x.template, x.status,
        x.attempt, ''
    FROM automations a
    CROSS JOIN LATERAL (VALUES
        (a.trigger_at - interval '3 days', a.client_id, NULL::bigint, 'SEND_REMINDER', a.month,
            'REMINDER_UPCOMING', 'COMPLETED', 1),
        (a.trigger_at, a.client_id, a.id, 'GENERATE_DELIVERABLE', a.month, NULL,
            CASE WHEN a.id % 100 = 0 THEN 'RETRYING' ELSE 'COMPLETED' END, 1),
        (a.trigger_at + interval '15 minutes', a.client_id, a.id, 'GENERATE_DELIVERABLE',
            a.month, NULL, CASE WHEN a.id % 100 = 0 THEN 'COMPLETED' ELSE NULL END, 2),
        (a.trigger_at + (a.id % 11) * interval '1 day', a.client_id, NULL, 'SEND_NOTIFICATION',
            a.month, 'DELIVERABLE_READY', 'COMPLETED', 1),
        (a.trigger_at + (a.id % 11 + 1) * interval '1 day', a.client_id, NULL,
            'SEND_CELEBRATION', a.month, 'MONTH_COMPLETE', 'COMPLETED', 1),
        (a.trigger_at + interval '3 days', a.client_id, NULL, 'SEND_REMINDER', a.month,
            'REMINDER_OVERDUE', CASE WHEN a.id % 1000 = 7 THEN 'FAILED' ELSE 'SKIPPED' END, 1)
    ) AS x(at, client_id, automation_id, type, month, template, status, attempt)
    WHERE x.status IS NOT NULL AND x.at <= :now
    """,
    # the deliverable of each month
    """
    INSERT INTO deliverables (client_id, month, version, status, title, content,
        reviewer_notes, manual, automation_id, generated_at, reviewed_at, delivered_at,
        opened_at, created_at)
    SELECT a.client_id, a.month, 1, 'DELIVERED', 'Month ' || a.month, 'text', '', false, a.id,
        a.trigger_at + interval '1 minute',
        a.trigger_at + (a.id % 11) * interval '1 day' - interval '2 minutes',
        a.trigger_at + (a.id % 11) * interval '1 day' - interval '2 minutes',
        CASE WHEN a.id % 5 = 0 THEN NULL
            ELSE a.trigger_at + (a.id % 11 + a.id % 4) * interval '1 day' END,
        a.trigger_at
    FROM automations a
    """,
]

PAGES = [
    ("success metrics, last 7 days", "/success?window=7"),
    ("success metrics, last 30 days", "/success?window=30"),
    ("success metrics, last 90 days", "/success?window=90"),
    ("success metrics, one coach, 30 days", "/success?window=30&coach=2"),
    ("success metrics, one program month, 30 days", "/success?window=30&month=3"),
    ("success metrics, one coach and month, 90 days", "/success?window=90&coach=2&month=4"),
    ("success metrics, a cohort (a whole start month)", "/success?cohort={cohort}"),
    ("success metrics, a cohort, one coach", "/success?cohort={cohort}&coach=3"),
    ("rows behind a metric, 30 days", "/success/months_on_time/rows?window=30"),
    (
        "rows behind a metric, 90 days, page 100",
        "/success/execution_success/rows?window=90&page=100",
    ),
    ("rows behind a metric, a cohort", "/success/months_on_time/rows?cohort={cohort}"),
    ("funnel of each month, 30 days", "/success/funnel?window=30"),
    ("funnel of each month, 90 days, one coach", "/success/funnel?window=90&coach=2"),
    ("funnel of each month, a cohort", "/success/funnel?cohort={cohort}"),
    ("API: every metric and the funnel, 30 days", "/api/admin/metrics?window=30"),
]
TARGET = "< 300 ms p95"


def history(app: Any, clients: int) -> None:
    """The year of history, written in SQL, and the admins (coaches) who log in."""
    with app.app_context():
        now = app.extensions["journey"].clock.now()
        for i in range(COACHES):
            db.session.add(
                Admin(
                    email="coach@example.com" if i == 0 else f"coach{i}@example.com",
                    name=f"Coach {i + 1}",
                    timezone="UTC",
                    active=True,
                    password_hash=generate_password_hash(PASSWORD),
                    created_at=now,
                )
            )
        db.session.commit()
        started = time.perf_counter()
        params = {"today": now.date(), "now": now, "clients": clients, "coaches": COACHES}
        for statement in HISTORY:
            db.session.execute(text(statement), params)
        db.session.execute(text("SELECT setval('clients_id_seq', (SELECT max(id) FROM clients))"))
        db.session.commit()
        vacuum()
        logs = db.session.scalar(text("SELECT count(*) FROM automation_logs"))
        months = db.session.scalar(text("SELECT count(*) FROM deliverables"))
        print(
            f"  history: {clients:,} clients, {months:,} months, {logs:,} log rows, "
            f"written in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        db.session.remove()


def vacuum() -> None:
    """What autovacuum does after bulk writes (the planner's statistics)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def keep(app: Any) -> precount.Kept:
    with app.app_context():
        kept = precount.keep(journey_context(), budget=float("inf"))
        db.session.remove()
        return kept


def forget(app: Any, since: date, until: date | None = None) -> None:
    """Drop the kept spans of the log from `since` (to `until`): as if the worker had not
    counted them."""
    with app.app_context():
        ctx = journey_context()
        starts = MetricPeriod.starts_at
        spans = select(MetricPeriod.id).where(
            MetricPeriod.kind == metrics.LOG, starts >= metrics.at_start(since)
        )
        if until is not None:
            spans = spans.where(starts < metrics.at_start(until))
        metrics.drop(ctx, list(db.session.scalars(spans)))
        ctx.commit()
        db.session.remove()


def once(web: Any, path: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    answer = web.get(path, headers=headers or {})
    assert answer.status_code == 200, (path, answer.status_code)
    return (time.perf_counter() - started) * 1000


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def bench_metrics(clients: int = 100_000, runs: int = 20) -> list[tuple[str, str, str, str]]:
    """Rows for the results table (what, result, target, note)."""
    schema, url = fresh_schema("metrics")
    app = app_for(url)
    app.config.update(LONG_SESSIONS)
    found: list[tuple[str, str, str, str]] = []
    try:
        history(app, clients)
        kept = keep(app)
        found.append(
            (
                "counting ahead, first run: a year of history, nothing kept yet",
                f"{kept.seconds:.1f} s",
                "",
                f"{kept.spans} days and hours of the log, {kept.states} states (the clients', "
                "the funnels); once after an installation, in the worker",
            )
        )
        with app.app_context():
            vacuum()
        kept = keep(app)
        found.append(
            ("counting ahead, a minute later", f"{kept.seconds * 1000:.0f} ms", "", "every minute")
        )
        today = datetime.now(UTC).date()
        yesterday = today - timedelta(days=1)
        forget(app, yesterday, today)
        kept = keep(app)
        found.append(
            (
                "counting ahead after a day passed",
                f"{kept.seconds * 1000:.0f} ms",
                "",
                f"{kept.spans} span: yesterday, counted whole",
            )
        )
        web = browser(app)
        assert log_in(web).status_code == 302
        forget(app, yesterday, today)
        first = once(web, "/success?window=30")
        found.append(
            (
                "first page after a day passed, before the worker counted it (30 days)",
                f"{first:.0f} ms",
                "",
                "the page counts yesterday itself, once",
            )
        )
        forget(app, today - timedelta(days=400))
        first = once(web, "/success?window=90")
        found.append(
            (
                "first page of 90 days with nothing kept (no worker ever ran)",
                f"{first / 1000:.1f} s",
                "",
                "the page counts its 90 days itself, once",
            )
        )
        keep(app)
        with app.app_context():
            admin = db.session.scalar(select(Admin).where(Admin.email == "coach@example.com"))
            _, token = issue(db.session, admin, "bench", datetime.now(UTC))
            db.session.commit()
            db.session.remove()
        api = {"Authorization": f"Bearer {token}"}
        month = (today.replace(day=1) - timedelta(days=170)).replace(day=1)
        cohort = f"{month:%Y-%m}"
        before = load()
        for name, path in PAGES:
            path = path.format(cohort=cohort)
            headers = api if path.startswith("/api/") else None
            single = once(web, path, headers)
            p50, p95 = time_page(web, path, runs, headers)
            found.append(
                (
                    f"{name}, {clients:,} clients, a year of history",
                    f"p50 {p50:.0f} ms, p95 {p95:.0f} ms",
                    TARGET,
                    f"one request alone: {single:.0f} ms",
                )
            )
        found.append(
            (
                "load average (1/5/15 min) before and after the pages",
                f"{before} → {load()}",
                "",
                f"{os.cpu_count()} cores; cohort {cohort}",
            )
        )
        with app.app_context():
            db.engine.dispose()
        return found
    finally:
        drop_schema(schema)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"| Success metrics ({clients:,} clients, a year) | Result | Target | Note |")
    print("| --- | --- | --- | --- |")
    for cells in bench_metrics(clients):
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
