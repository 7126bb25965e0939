"""The impact preview of a program edit, and its publish, with 10,000 clients in flight."""

from __future__ import annotations

import statistics
import time
from typing import Any

from scheduler import programs, replan
from tests.bench.common import app_for, drop_schema, enroll, fresh_schema
from web import journey_context
from web.extensions import db


def bench_program(clients: int) -> list[tuple[str, str, str, str]]:
    """Rows for the table: the preview (three runs) and the publish that carries it out."""
    schema, url = fresh_schema("program")
    app = app_for(url)
    rows: list[tuple[str, str, str, str]] = []
    try:
        enroll(app, clients)
        with app.app_context():
            ctx = journey_context()
            definition: dict[str, Any] = programs.start_draft(ctx, "bench").definition
            edits = [
                (
                    "overdue reminder +3 → +5 days, upcoming -3 → -4",
                    {"overdue_reminder_days_after": 5, "upcoming_reminder_days_before": 4},
                ),
                ("send hour 9 → 10: every pending step moves", {"send_hour": 10}),
                (
                    "overdue reminder +3 → +5 days, upcoming -3 → -4",
                    {"overdue_reminder_days_after": 5, "upcoming_reminder_days_before": 4},
                ),
            ]
            for what, change in edits[:2]:
                schedule = definition["schedule"] | change
                programs.update_draft(ctx, "bench", definition=definition | {"schedule": schedule})
                ctx.commit()
                timings = []
                for _ in range(3):
                    started = time.perf_counter()
                    seen = programs.preview(journey_context(), replan.IN_FLIGHT)
                    timings.append(time.perf_counter() - started)
                    db.session.remove()
                rows.append(
                    (
                        f"impact preview ({what}), {seen.in_flight:,} clients in flight",
                        f"{statistics.median(timings):.1f} s median, {max(timings):.1f} s max",
                        "< 5 s",
                        seen.summary(),
                    )
                )
                ctx = journey_context()
            _, change = edits[2]
            schedule = definition["schedule"] | change
            programs.update_draft(ctx, "bench", definition=definition | {"schedule": schedule})
            ctx.commit()
            started = time.perf_counter()
            ctx = journey_context()
            done = programs.publish(ctx, "bench", replan.IN_FLIGHT)
            ctx.commit()
            seconds = time.perf_counter() - started
            rows.append(
                (
                    "publish the first edit to the clients in flight (one transaction)",
                    f"{seconds:.1f} s",
                    "",
                    f"{done.record.automations_moved:,} automations changed",
                )
            )
            db.session.remove()
    finally:
        with app.app_context():
            db.engine.dispose()
        drop_schema(schema)
    return rows
