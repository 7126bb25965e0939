"""Admin panel page times with 100,000 clients on PostgreSQL (`python -m tests.bench.pages
[CLIENTS]`, also part of `make bench`): each page is requested through the app, logged in,
20 times."""

from __future__ import annotations

import sys

from werkzeug.security import generate_password_hash

from scheduler.models import Admin, Client, Deliverable
from tests.bench.common import app_for, drop_schema, enroll, fresh_schema, time_page
from tests.panel_helpers import LONG_SESSIONS, PASSWORD, browser, log_in
from web.extensions import db

PAGES = [
    ("clients", "/"),
    ("clients, search", "/?q=client%201234"),
    ("clients, overdue, by status", "/?status=overdue&sort=status"),
    ("client journey", "/clients/{id}"),
    ("review queue (300 waiting)", "/review"),
    ("dashboard", "/dashboard"),
    ("automation log", "/log"),
    ("automation log, filtered", "/log?status=SKIPPED&type=SEND_REMINDER&client=client%2042"),
    ("email preview", "/clients/{id}/emails/DELIVERABLE_READY"),
    ("client communications", "/clients/{id}/communications"),
    ("review queue, rejected", "/review?show=rejected"),
    ("automation log, by who", "/log?actor=coach"),
]


def bench_pages(clients: int = 100_000, runs: int = 20) -> list[tuple[str, float, float]]:
    """(page, p50 ms, p95 ms) for each page of the panel."""
    schema, url = fresh_schema("pages")
    app = app_for(url)
    app.config.update(LONG_SESSIONS)
    try:
        enroll(app, clients)
        with app.app_context():
            db.session.add(
                Admin(
                    email="coach@example.com",
                    name="Coach",
                    timezone="UTC",
                    active=True,
                    password_hash=generate_password_hash(PASSWORD),
                    created_at=app.extensions["journey"].clock.now(),
                )
            )
            db.session.commit()
            # 300 deliverables waiting for review, a page of text each.
            now = app.extensions["journey"].clock.now()
            waiting = db.session.scalars(db.select(Client.id).order_by(Client.id).limit(300))
            db.session.add_all(
                Deliverable(
                    client_id=client_id,
                    month=1,
                    version=1,
                    status="PENDING_REVIEW",
                    title="Foundation & Business Plan",
                    content="A paragraph of the plan. " * 120,
                    generated_at=now,
                    created_at=now,
                )
                for client_id in waiting
            )
            db.session.commit()
            some = db.session.scalar(
                db.select(Client.id).order_by(Client.id).offset(clients // 2).limit(1)
            )
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
            db.session.remove()
        web = browser(app)
        assert log_in(web).status_code == 302
        results = []
        for name, path in PAGES:
            path = path.format(id=some)
            results.append((name, *time_page(web, path, runs)))
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
