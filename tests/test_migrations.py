"""Migrations build the models' schema on empty SQLite and PostgreSQL databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from scheduler.models import Base
from web import create_app
from web.extensions import db


def test_upgrade_on_an_empty_database_matches_the_models(tmp_path, request):
    for backend in ("sqlite", "postgresql"):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        else:
            schema = request.getfixturevalue("pg_schema") + "_mig"
            from tests.conftest import PG_URL, pg_url, sa_url

            admin = create_engine(sa_url(PG_URL))
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = pg_url(schema)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None})
        with app.app_context():
            upgrade()
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
                assert diff == [], f"{backend}: models and migrations differ: {diff}"
                tables = set(inspect(conn).get_table_names())
            assert {
                "clients",
                "automations",
                "automation_logs",
                "deliverables",
                "emails",
                "holds",
                "admins",
            } <= tables
            db.engine.dispose()
        if backend == "postgresql":
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
