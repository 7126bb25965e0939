"""Migrations build the models' schema on empty SQLite and PostgreSQL databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect

from scheduler.models import Base
from tests.conftest import empty_database
from web import create_app
from web.extensions import db


# PostgreSQL's expression indexes (`Index.ddl_if`) are not built on SQLite, which alembic says.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_on_an_empty_database_matches_the_models(backend, tmp_path, request):
    with empty_database(backend, tmp_path, request, "mig") as url:
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
