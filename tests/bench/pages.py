"""Admin panel page times with 100,000 clients on PostgreSQL (`python -m tests.bench.pages
[CLIENTS]`, also part of `make bench`): each page is requested through the app, logged in,
20 times.

The clients are enrolled by the engine, their start dates spread over the last 240 days; then
what they lived through since is written in SQL (running months of journeys through the
workers would take hours), as the engine would have left it: each past reminder run at its
moment (upcoming ones sent; overdue ones and escalations skipped, but for the 1 client in 5 who
never opens a deliverable), each past generation done (1 in 25 clients' latest failed after its
retries: those clients fall overdue), each month's deliverable approved by a coach after 0-2
days (recorded as a change by them) and delivered, its ready email and its celebration sent,
every one logged; the months generated in the last days wait in review, 1 in 500 clients'
latest month was rejected (half of them regenerated); 1 in 40 generations was asked for by a
person (the log's "who"); 1 in 97 clients is on hold; clients whose eight months are delivered
are completed; risk scores for the active clients; the sent emails of the clients around the
one whose pages are timed."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from werkzeug.security import generate_password_hash

from scheduler import dashboard, overview
from scheduler.models import Admin, Client
from tests.bench.common import app_for, drop_schema, enroll, fresh_schema, time_page
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, browser, log_in
from web import journey_context
from web.extensions import db

ADMINS = ["coach@example.com", "maria@example.com", "sam@example.com", "lee@example.com"]
# Who asked for the generations done by hand: admins, and a command's OS user.
ACTORS = ["coach@example.com", "maria@example.com", "deploy"]

# The months whose last generation failed (1 in 25 clients), whose latest month was rejected.
FAILING = "a.client_id % 25 = 0 AND a.trigger_at > CAST(:now AS timestamptz) - interval '30 days'"
REJECTED = "client_id % 500 = 3 AND generated_at > CAST(:now AS timestamptz) - interval '30 days'"

HISTORY = [
    # Enrollment planned the clients' past and logged its reminders as skipped, all today; they
    # ran at their moments instead: the upcoming reminders were sent, the overdue reminders and
    # escalations skipped (the month was opened) but for 1 client in 5, who never reads.
    "TRUNCATE automation_logs",
    """
    UPDATE automations SET executed_at = trigger_at, updated_at = trigger_at,
        status = CASE WHEN template = 'REMINDER_UPCOMING' OR client_id % 5 = 0
            THEN 'COMPLETED' ELSE 'SKIPPED' END,
        detail = CASE WHEN template = 'REMINDER_UPCOMING' OR client_id % 5 = 0 THEN ''
            ELSE 'the client has already opened M' || month END
    WHERE status = 'SKIPPED'
    """,
    """
    INSERT INTO automation_logs (at, client_id, automation_id, type, month, template, status,
        attempt, detail, program_version)
    SELECT executed_at, client_id, id, type, month, template, status, 1, detail,
        program_version
    FROM automations WHERE status IN ('COMPLETED', 'SKIPPED')
    """,
    # The generations due so far ran; the latest of 1 client in 25 failed after 3 retries.
    f"""
    UPDATE automations a SET
        status = CASE WHEN {FAILING} THEN 'FAILED' ELSE 'COMPLETED' END,
        retry_count = CASE WHEN {FAILING} THEN 3 ELSE 0 END,
        executed_at = a.trigger_at + interval '1 minute',
        detail = CASE WHEN {FAILING} THEN 'failed after 3 retries' ELSE '' END,
        error = CASE WHEN {FAILING} THEN 'the generator did not answer in 60 s' END,
        dispatched_at = NULL, updated_at = a.trigger_at + interval '1 minute'
    WHERE a.type = 'GENERATE_DELIVERABLE' AND a.status = 'SCHEDULED' AND a.trigger_at <= :now
    """,
    # Their log: done (1 in 40 asked for by a person), or three retries and the failure.
    """
    INSERT INTO automation_logs (at, client_id, automation_id, type, month, status, attempt,
        detail, error, program_version, actor)
    SELECT a.executed_at + x.n * interval '15 minutes', a.client_id, a.id, a.type, a.month,
        x.status, x.n + 1, '', CASE WHEN x.status <> 'COMPLETED' THEN a.error END,
        a.program_version,
        CASE WHEN a.client_id % 40 = 1 THEN (CAST(:actors AS text[]))[a.month % 3 + 1] END
    FROM automations a
    JOIN (VALUES (0, 'COMPLETED'), (0, 'RETRYING'), (1, 'RETRYING'), (2, 'RETRYING'),
        (3, 'FAILED')) AS x(n, status) ON (x.status = 'COMPLETED') = (a.status = 'COMPLETED')
    WHERE a.type = 'GENERATE_DELIVERABLE' AND a.status IN ('COMPLETED', 'FAILED')
    """,
    # Each generated month's deliverable: approved 0-2 days later, or still in review.
    """
    INSERT INTO deliverables (client_id, month, version, status, title, content,
        reviewer_notes, manual, automation_id, generated_at, reviewed_at, delivered_at,
        opened_at, created_at)
    SELECT a.client_id, a.month, 1,
        CASE WHEN r.at > :now THEN 'PENDING_REVIEW' ELSE 'DELIVERED' END,
        'Month ' || a.month || ': ' || (CAST(:titles AS text[]))[a.month], :content, '', false,
        a.id, a.executed_at,
        CASE WHEN r.at <= :now THEN r.at END, CASE WHEN r.at <= :now THEN r.at END,
        CASE WHEN r.at <= :now AND a.client_id % 5 <> 0 AND r.at + interval '1 day' <= :now
            THEN r.at + interval '1 day' END,
        a.executed_at
    FROM automations a
    CROSS JOIN LATERAL (SELECT a.executed_at + (a.client_id % 3) * interval '1 day'
        + interval '2 hours' AS at) AS r
    WHERE a.type = 'GENERATE_DELIVERABLE' AND a.status = 'COMPLETED'
    """,
    # 1 client in 500: their latest month was rejected a day after it was generated (or still
    # waits in review); for half of them a new version is written and waits in review.
    f"""
    UPDATE deliverables SET status = 'REJECTED', delivered_at = NULL, opened_at = NULL,
        reviewer_notes = 'The 90-day plan needs dates and a measure for each milestone.',
        reviewed_at = generated_at + interval '1 day'
    WHERE {REJECTED} AND generated_at + interval '1 day' <= :now
    """,
    """
    INSERT INTO deliverables (client_id, month, version, status, title, content,
        reviewer_notes, manual, generated_at, created_at)
    SELECT client_id, month, 2, 'PENDING_REVIEW', title, :content, '', true,
        reviewed_at + interval '1 hour', reviewed_at + interval '1 hour'
    FROM deliverables
    WHERE status = 'REJECTED' AND client_id % 1000 = 3 AND reviewed_at + interval '1 hour' <= :now
    """,
    # Each delivery's ready email, and its celebration the next day (not yet, for the latest).
    """
    INSERT INTO automations (client_id, type, month, template, key, source, status, version,
        trigger_at, retry_count, max_retries, payload, executed_at, detail, program_version,
        created_at, updated_at)
    SELECT d.client_id, x.type, d.month, x.template, x.key, 'EVENT',
        CASE WHEN x.at <= :now THEN 'COMPLETED' ELSE 'SCHEDULED' END, 1, x.at, 0, 3, '{}',
        CASE WHEN x.at <= :now THEN x.at END, '', 1, d.delivered_at, d.delivered_at
    FROM deliverables d
    CROSS JOIN LATERAL (VALUES
        ('SEND_NOTIFICATION', 'DELIVERABLE_READY', 'ready:' || d.month || ':' || 'v' || d.version,
            d.delivered_at + interval '2 minutes'),
        ('SEND_CELEBRATION', CASE d.month WHEN 8 THEN 'PROGRAM_COMPLETE'
            WHEN 4 THEN 'HALFWAY' ELSE 'MONTH_COMPLETE' END, 'celebrate:' || d.month,
            date_trunc('day', d.delivered_at) + interval '1 day 9 hours')
    ) AS x(type, template, key, at)
    WHERE d.status = 'DELIVERED'
    """,
    """
    INSERT INTO automation_logs (at, client_id, automation_id, type, month, template, status,
        attempt, detail, program_version)
    SELECT executed_at, client_id, id, type, month, template, 'COMPLETED', 1, '', 1
    FROM automations WHERE source = 'EVENT' AND status = 'COMPLETED'
    """,
    # Each approval, recorded as a change by the client's coach.
    """
    INSERT INTO client_changes (client_id, at, actor, what, before, after)
    SELECT client_id, reviewed_at, (CAST(:admins AS text[]))[client_id % 4 + 1],
        'M' || month || ' v' || version || ' approved',
        '{"status": "PENDING_REVIEW", "edited": false}',
        '{"status": "DELIVERED", "edited": false}'
    FROM deliverables WHERE status = 'DELIVERED'
    """,
    # Where each client stands: the latest month with a deliverable (done when its newest
    # version is delivered), completed when all eight are delivered; coaches (1 in 6 without).
    """
    UPDATE clients c SET current_month = m.current, current_month_done = m.done,
        completed_at = CASE WHEN m.delivered = 8 THEN m.last END,
        coach_id = CASE WHEN c.id % 6 > 0 THEN (CAST(:coaches AS bigint[]))[c.id % 4 + 1] END,
        business_plan_approved_at = c.created_at
    FROM (SELECT client_id, max(month) AS current, max(delivered_at) AS last,
            count(*) FILTER (WHERE status = 'DELIVERED') AS delivered,
            (array_agg(status ORDER BY month DESC, version DESC))[1] = 'DELIVERED' AS done
        FROM deliverables GROUP BY client_id) AS m
    WHERE m.client_id = c.id
    """,
    # 1 client in 97 is on hold, since up to 19 days, half of them with an end date.
    """
    INSERT INTO holds (client_id, reason, started_at, start_date, until)
    SELECT id, 'Family leave', :now - (id % 20) * interval '1 day',
        CAST(:now AS date) - CAST(id % 20 AS integer),
        CASE WHEN id % 2 = 0 THEN CAST(:now AS date) + 14 END
    FROM clients WHERE id % 97 = 0 AND completed_at IS NULL
    """,
    """
    UPDATE clients c SET paused_at = h.started_at FROM holds h WHERE h.client_id = c.id
    """,
    # The clients-at-risk model's latest scores: 1 active client in 12 at risk.
    """
    INSERT INTO risk_models (id, trained_at, actor, body)
    VALUES (1, :now, 'coach@example.com', '{"threshold": 0.917}')
    """,
    """
    INSERT INTO client_risks (client_id, model_id, scored_at, month, probability, at_risk,
        features, reasons)
    SELECT id, 1, :now, LEAST(current_month + 1, 8), (id * 7919 % 1000) / 1000.0,
        id * 7919 % 1000 >= 917, '[0, 0, 0, 0, 0, 0]',
        CASE WHEN id * 7919 % 1000 >= 917
            THEN '["opened last month''s deliverable late", "had a month rejected"]'
            ELSE '[]' END::jsonb
    FROM clients WHERE completed_at IS NULL
    """,
    # The emails sent to the clients around the one whose pages are timed.
    """
    INSERT INTO emails (key, automation_id, client_id, to_address, template, month, subject,
        text_body, html_body, status, message_id, attempts, created_at, sending_at, sent_at)
    SELECT 'automation:' || a.id || ':' || c.email, a.id, c.id, c.email, a.template, a.month,
        'Your month ' || a.month || ' is ready', :content, '<p>' || :content || '</p>', 'SENT',
        '<' || a.id || '@journey.example.com>', 1, a.executed_at, a.executed_at, a.executed_at
    FROM automations a JOIN clients c ON c.id = a.client_id
    WHERE a.client_id BETWEEN :some - 500 AND :some + 500 AND a.status = 'COMPLETED'
        AND a.template IS NOT NULL
    """,
]


def content(program: Any) -> str:
    """A deliverable as the built-in generator writes one (about 2 KB of Markdown)."""
    month = program.month(1)
    lines = [f"# Month 1: {month.title}", "", month.summary, "", "## Inside this deliverable", ""]
    lines += [f"- {item}" for item in month.deliverables] + [""]
    for section in month.sections:
        lines += [f"## {section.heading}", "", section.guidance, ""]
        lines += ["A paragraph of the plan, written for this client. " * 6, ""]
    lines += ["## Your next steps", ""] + [f"- [ ] {step}" for step in month.prepare]
    return "\n".join(lines) + "\n"


def lived(app: Any, clients: int) -> int:
    """Admins, and the history the enrolled clients have lived since they started (above);
    returns the id of the client whose pages are timed: one in their fifth month."""
    with app.app_context():
        journey = app.extensions["journey"]
        now = journey.clock.now()
        for email in ADMINS:
            db.session.add(
                Admin(
                    email=email,
                    name=email.split("@")[0].title(),
                    timezone="UTC",
                    active=True,
                    password_hash=generate_password_hash(PASSWORD),
                    created_at=now,
                )
            )
        db.session.commit()
        program = journey.context(db.session).program
        first = db.session.scalar(text("SELECT min(id) FROM clients"))
        some = db.session.scalar(
            text(
                "SELECT id FROM clients WHERE start_date = CAST(:now AS date) - 125 "
                "AND id % 500 > 3 AND id % 97 > 0 AND id % 25 > 0 AND id % 40 > 1 "
                "ORDER BY id OFFSET 3 LIMIT 1"
            ),
            {"now": now},
        )
        params = {
            "now": now,
            "some": some,
            "titles": [m.title for m in program.months],
            "content": content(program),
            "actors": ACTORS,
            "admins": ADMINS,
            "coaches": list(db.session.scalars(db.select(Admin.id).order_by(Admin.id))),
        }
        for statement in HISTORY:
            db.session.execute(text(statement), params)
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Every client was updated three times at once above: compacted, as a table whose
            # rows change one at a time stays (autovacuum reuses the space).
            conn.execute(text("VACUUM FULL clients"))
            conn.execute(text("VACUUM ANALYZE"))
        assert first is not None and some is not None, clients
        db.session.remove()
        return int(some)


PAGES = [
    ("dashboard", "/dashboard"),
    ("clients", "/"),
    ("clients, search", "/?q=client%201234"),
    ("clients, overdue, by status", "/?status=overdue&sort=status"),
    ("clients, at risk", "/?risk=1"),
    ("clients, on hold, by start", "/?status=on_hold&sort=start"),
    ("clients, page 1,000 (its Next link)", "/?page=1000&after={deep}"),
    ("client journey", "/clients/{id}"),
    ("client communications", "/clients/{id}/communications"),
    ("client month (its deliverable)", "/clients/{id}/months/4"),
    ("email preview", "/clients/{id}/emails/DELIVERABLE_READY"),
    ("review queue", "/review"),
    ("review queue, rejected", "/review?show=rejected"),
    ("automation log", "/log"),
    ("automation log, filtered", "/log?status=SKIPPED&type=SEND_REMINDER&client=client%2042"),
    ("automation log, by who", "/log?actor=coach"),
    ("automation log, failed", "/log?status=FAILED"),
    ("automation log, one day", "/log?from={day}&to={day}"),
    (
        "automation log, generations due this week",
        "/log?status=SCHEDULED&type=GENERATE_DELIVERABLE&from={day}&to={week}",
    ),
    ("automation log, page 100", "/log?page=100"),
    ("sessions", "/sessions"),
    ("program editor", "/program/"),
]


COUNTED = "dashboard's numbers counted (every minute, by the workers' scheduler)"


def measure(app: Any, some: int, runs: int = 20) -> list[tuple[str, float, float]]:
    """(page, p50 ms, p95 ms) for each page of the panel, `some` being the client shown; first,
    how long the dashboard's numbers take to count, as the workers' scheduler does."""
    with app.app_context():
        ctx = journey_context()
        started = time.perf_counter()
        dashboard.keep_all(ctx)
        ctx.commit()
        counted = (time.perf_counter() - started) * 1000
        # Page 1,000 of the clients list as its Next link reads it: after page 999's last row.
        deep = db.session.scalar(
            select(Client.id)
            .order_by(func.lower(Client.name), Client.id)
            .offset(999 * overview.PER_PAGE - 1)
            .limit(1)
        )
        db.session.remove()
    web = browser(app)
    assert log_in(web).status_code == 302
    today = datetime.now(UTC).date()
    week = today + timedelta(days=6)
    return [(COUNTED, counted, counted)] + [
        (name, *time_page(web, path.format(id=some, day=today, week=week, deep=deep), runs))
        for name, path in PAGES
    ]


def bench_pages(clients: int = 100_000, runs: int = 20) -> list[tuple[str, float, float]]:
    """(page, p50 ms, p95 ms) for each page of the panel."""
    schema, url = fresh_schema("pages")
    app = app_for(url)
    app.config.update(LONG_SESSIONS)
    try:
        enroll(app, clients)
        results = measure(app, lived(app, clients), runs)
        with app.app_context():
            db.engine.dispose()
        return results
    finally:
        drop_schema(schema)


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"| Page ({clients:,} clients) | p50 | p95 |\n| --- | --- | --- |")
    for name, p50, p95 in bench_pages(clients):
        print(f"| {name} | {p50:.0f} ms | {p95:.0f} ms |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
