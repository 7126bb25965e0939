"""Fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is reached at TEST_POSTGRES_URL (default: 127.0.0.1:5432, database `test`); each test
session works in a schema of its own. When the server cannot be reached the PostgreSQL variants
skip, saying so, unless JOURNEY_REQUIRE_SERVICES=1 (CI sets it), when they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from scheduler.clock import ManualClock
from scheduler.models import Base
from tests.harness import Harness, RecordingMailer, ScriptedGenerator, Transport
from tests.mailbox import smtp  # noqa: F401 (a fixture for every test module)
from web import create_app
from web.extensions import db

# A plain libpq URL; an SQLAlchemy-style "postgresql+psycopg://" one is accepted too.
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
    "postgresql+psycopg://", "postgresql://", 1
)
REQUIRED = os.environ.get("JOURNEY_REQUIRE_SERVICES") == "1"
# The tests' signing key, set as a deployment sets it (the processes the tests start inherit it;
# outside the embedded default the app refuses to start without one).
SECRET_KEY = "test-only-signing-key-0123456789abcdef"
os.environ["SECRET_KEY"] = SECRET_KEY
os.environ.pop("SECRET_KEY_FALLBACKS", None)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def unavailable(what: str, reason: str) -> None:
    message = f"{what} is not reachable ({reason})"
    if REQUIRED:
        pytest.fail(f"{message}; JOURNEY_REQUIRE_SERVICES=1 says it must be", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A schema of this test session's own, with the tables in it."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        unavailable("PostgreSQL at " + PG_URL, str(exc).strip().splitlines()[0])
    schema = f"jt_{uuid.uuid4().hex[:10]}"
    engine = create_engine(sa_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    schema_engine = create_engine(pg_url(schema))
    Base.metadata.create_all(schema_engine)
    schema_engine.dispose()
    yield schema
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def pg_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return sa_url(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")


@contextmanager
def empty_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest, name: str):
    """An empty database of this test's own (no tables) on `backend`: a SQLite file, or a fresh
    PostgreSQL schema, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.sqlite3')}"
        return
    schema = f"{request.getfixturevalue('pg_schema')}_{name}"
    admin = create_engine(sa_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journey.sqlite3'}"
    schema = request.getfixturevalue("pg_schema")
    url = pg_url(schema)
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def harness(database_url: str, clock: ManualClock) -> Iterator[Harness]:
    transport = Transport()
    mailer = RecordingMailer()
    generator = ScriptedGenerator()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": None,
            "SEND_HOUR": 9,
            "MAIL_SUPPRESS_SEND": True,
            # Admin-caused emails go at once here; the grace period has tests of its own.
            "ACTION_EMAIL_GRACE_SECONDS": 0,
        },
        clock=clock,
        dispatcher=transport,
        mailer=mailer,
        generator=generator,
    )
    # Every automation goes straight to the transport (the sweep has tests of its own).
    app.extensions["journey"].horizon = timedelta(days=3650)
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
        h = Harness(app, clock, transport, mailer, generator)
        h.add_admin("coach@example.com")
        yield h
        db.session.remove()
        db.engine.dispose()


# -- a real browser (tests/browser.py) ------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Chromium (Debian's; Playwright drives it, nothing is downloaded)."""
    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium at {CHROMIUM}", "not installed; Debian: apt install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
