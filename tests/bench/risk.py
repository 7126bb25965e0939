"""The daily risk refresh with 10,000 clients on PostgreSQL (`python -m tests.bench.risk
[CLIENTS]`, also part of `make bench`): clients at every stage of their journey with months of
history (some delivered late, some opened late or not at all), the model trained on it, then
every client scored again (`risk.refresh`, as the daily job runs it, committed), and the
refresh an at-risk check-in makes for a batch of 50 clients."""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text

from scheduler import risk
from scheduler.models import Automation, Deliverable
from scheduler.schedule import bulk_insert
from scheduler.vocab import AutomationType
from tests.bench.common import app_for, drop_schema, enroll, fresh_schema
from web import journey_context
from web.extensions import db


def history(app: Any) -> int:
    """A deliverable for every month whose milestone has passed: one client in five runs
    late (delivered 8 to 20 days after the milestone), and opens late or not at all. Returns
    how many."""
    rng = random.Random(16)
    with app.app_context():
        now = app.extensions["journey"].clock.now()
        slow: dict[int, bool] = {}
        rows = []
        for client_id, month, milestone in db.session.execute(
            select(Automation.client_id, Automation.month, Automation.trigger_at).where(
                Automation.type == AutomationType.GENERATE_DELIVERABLE,
                Automation.trigger_at < now,
            )
        ):
            late = slow.setdefault(client_id, rng.random() < 0.2)
            after = rng.uniform(8, 20) if late else rng.uniform(0, 5)
            delivered = milestone + timedelta(days=after)
            if delivered > now:
                continue
            opened = delivered + timedelta(days=rng.uniform(2, 12) if late else rng.uniform(0, 2))
            rows.append(
                {
                    "client_id": client_id,
                    "month": month,
                    "version": 1,
                    "status": "DELIVERED",
                    "title": "",
                    "content": "",
                    "reviewer_notes": "",
                    "manual": False,
                    "generated_at": milestone,
                    "reviewed_at": delivered,
                    "delivered_at": delivered,
                    "opened_at": opened if opened <= now and rng.random() < 0.9 else None,
                    "created_at": milestone,
                }
            )
        ctx = journey_context()
        bulk_insert(ctx, Deliverable.__table__, rows)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        db.session.remove()
        return len(rows)


def bench_risk(clients: int = 10_000, batch: int = 50) -> list[tuple[str, str, str, str]]:
    """Rows for the table: training, the refresh of every client (three runs), and a
    check-in batch's refresh (ten runs)."""
    schema, url = fresh_schema("risk")
    app = app_for(url)
    rows: list[tuple[str, str, str, str]] = []
    try:
        enroll(app, clients)
        delivered = history(app)
        with app.app_context():
            started = time.perf_counter()
            kept = risk.train(journey_context(), actor="bench")
            db.session.commit()
            seconds = time.perf_counter() - started
            rows.append(
                (
                    f"train the risk model, {clients:,} clients ({delivered:,} months delivered)",
                    f"{seconds:.1f} s",
                    "",
                    f"{kept.body['rows']:,} training rows; every active client scored",
                )
            )
            db.session.remove()
            timings = []
            for _ in range(3):
                ctx = journey_context()
                started = time.perf_counter()
                scored = risk.refresh(ctx)
                ctx.commit()
                timings.append(time.perf_counter() - started)
                db.session.remove()
            rows.append(
                (
                    f"daily risk refresh, {clients:,} clients (one transaction)",
                    f"{statistics.median(timings):.1f} s median, {max(timings):.1f} s max",
                    "",
                    f"{scored:,} clients scored again and kept",
                )
            )
            ids = list(db.session.scalars(select(Automation.client_id).distinct().limit(batch)))
            timings = []
            for _ in range(10):
                ctx = journey_context()
                started = time.perf_counter()
                risk.refresh(ctx, ids)
                ctx.commit()
                timings.append((time.perf_counter() - started) * 1000)
                db.session.remove()
            rows.append(
                (
                    f"an at-risk check-in batch's refresh, {len(ids)} clients",
                    f"{statistics.median(timings):.0f} ms median, {max(timings):.0f} ms max",
                    "",
                    "before its check-ins are decided",
                )
            )
            db.engine.dispose()
    finally:
        drop_schema(schema)
    return rows


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    for what, value, _, note in bench_risk(clients):
        print(f"| {what} | {value} | {note} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
