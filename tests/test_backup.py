"""Backups are restorable: PostgreSQL holds everything (Redis only delivers, and the sweep
rebuilds what it held), so a `pg_dump` restored into a fresh database mid-journey carries on
from there: nothing the outbox recorded as sent is sent again, and what was due next goes out."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from scheduler import review, sweep
from scheduler.clock import ManualClock
from scheduler.models import Base, Deliverable
from scheduler.vocab import DeliverableStatus
from tests.conftest import PG_URL, START, sa_url, unavailable
from tests.harness import Harness, RecordingMailer, ScriptedGenerator, Transport
from web import create_app
from web.extensions import db


def app_on(url: str, clock: ManualClock) -> Harness:
    transport, mailer, generator = Transport(), RecordingMailer(), ScriptedGenerator()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": None,
            "MAIL_SUPPRESS_SEND": True,
            "ACTION_EMAIL_GRACE_SECONDS": 0,
        },
        clock=clock,
        dispatcher=transport,
        mailer=mailer,
        generator=generator,
    )
    return Harness(app, clock, transport, mailer, generator)


def drive(h: Harness, days: int) -> None:
    """Run as production does: the sweep hands what falls due to the transport; the admin
    approves each deliverable waiting for review."""
    for _ in range(days * 4):
        sweep.sweep(h.ctx)
        h.run_for(timedelta(hours=6))
        waiting = db.session.scalars(
            select(Deliverable).where(Deliverable.status == DeliverableStatus.PENDING_REVIEW)
        ).all()
        for deliverable in waiting:
            h.do(review.approve, deliverable.client, deliverable.month)


@pytest.fixture
def databases(pg_schema) -> Iterator[tuple[str, str]]:
    """The production database (a schema of its own) and an empty one to restore into."""
    if not shutil.which("pg_dump") or not shutil.which("psql"):
        unavailable("pg_dump and psql (PostgreSQL's client programs)", "not installed")
    schema = f"{pg_schema}_backup"
    restored = f"journey_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sa_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'CREATE DATABASE "{restored}"'))
    url = make_url(sa_url(PG_URL)).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    try:
        yield url.render_as_string(hide_password=False), restored
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)'))
        admin.dispose()


def test_a_restored_dump_carries_on_without_sending_anything_twice(databases, tmp_path):
    url, restored = databases
    clock = ManualClock(START)
    live = app_on(url, clock)
    with live.app.app_context():
        live.add_admin("coach@example.com")
        for i in range(3):
            live.enroll(START.date(), email=f"client{i}@example.com", name=f"Client {i}")
        drive(live, 75)  # into month 3
        sent_before = {e.message_id for e in live.emails() if e.status == "SENT"}
        assert len(sent_before) >= 15
        db.engine.dispose()

    dump = tmp_path / "journey.dump"
    source = make_url(url)
    libpq = source.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    schema = source.query["options"].split("=", 1)[1]
    subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", f"--schema={schema}", "-f", str(dump), libpq],
        check=True,
    )
    target = source.set(drivername="postgresql", database=restored, query={})
    subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "-d",
            target.render_as_string(hide_password=False),
            str(dump),
        ],
        check=True,
    )

    # The restored database, new processes (an empty transport: Redis held nothing), the same
    # moment: the engine carries on from the rows.
    after = app_on(source.set(database=restored).render_as_string(hide_password=False), clock)
    with after.app.app_context():
        drive(after, 60)
        resent = {m.message_id for m in after.mailer.sent} & sent_before
        assert resent == set(), "emails the outbox had recorded as sent went out again"
        later = [e for e in after.emails() if e.message_id not in sent_before]
        assert later and all(e.status == "SENT" for e in later)
        assert {e.month for e in later} >= {4, 5}, "the journey went on into the next months"
        db.engine.dispose()
