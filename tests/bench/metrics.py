"""The success metrics with 100,000 clients and a year of history on PostgreSQL (`python -m
tests.bench.metrics [CLIENTS]`, also the `metrics` step of `make bench`).

The history is written straight in SQL (enrolling and running a year of journeys would take
hours): clients whose start dates spread over the last 365 days, each past month with its
planned generation, its log (upcoming reminder, generation, a retry now and then, a failure
now and then, delivery, celebration, skipped overdue reminder) and its deliverable; about
600,000 months, 3 million log rows. Then each page is requested through the app, logged in,
20 times; the first request of a window counts and keeps its whole past days (reported
apart)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from sqlalchemy import text
from werkzeug.security import generate_password_hash

from scheduler.models import Admin
from tests.bench.common import app_for, drop_schema, fresh_schema, time_page
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, browser, log_in
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
    ("success metrics, a cohort (start month)", "/success?cohort={cohort}"),
    ("rows behind a metric, 30 days", "/success/months_on_time/rows?window=30"),
    ("funnel of each month, 30 days", "/success/funnel?window=30"),
]


def bench_metrics(clients: int = 100_000, runs: int = 20) -> list[tuple[str, float, float]]:
    """(what, p50 ms, p95 ms): the history's size and first requests, then each page."""
    schema, url = fresh_schema("metrics")
    app = app_for(url)
    app.config.update(LONG_SESSIONS)
    results: list[tuple[str, float, float]] = []
    try:
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
            db.session.execute(
                text("SELECT setval('clients_id_seq', (SELECT max(id) FROM clients))")
            )
            db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            logs = db.session.scalar(text("SELECT count(*) FROM automation_logs"))
            months = db.session.scalar(text("SELECT count(*) FROM deliverables"))
            print(
                f"  history: {clients:,} clients, {months:,} months, {logs:,} log rows, "
                f"written in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            db.session.remove()
        cohort = f"{datetime.now(UTC).year - 1}-{datetime.now(UTC).month:02d}"
        web = browser(app)
        assert log_in(web).status_code == 302
        for window in (7, 30, 90):
            started = time.perf_counter()
            assert web.get(f"/success?window={window}").status_code == 200
            first = (time.perf_counter() - started) * 1000
            results.append(
                (f"first request, {window} days (counts and keeps the days)", first, first)
            )
        for name, path in PAGES:
            path = path.format(cohort=cohort)
            results.append((name, *time_page(web, path, runs)))
        with app.app_context():
            db.engine.dispose()
        return results
    finally:
        drop_schema(schema)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"| Success metrics ({clients:,} clients, a year) | p50 | p95 |\n| --- | --- | --- |")
    for name, p50, p95 in bench_metrics(clients):
        print(f"| {name} | {p50:.0f} ms | {p95:.0f} ms |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
