"""Rolling deploys: the Procfile's `release` migrates while the previous release's processes
still run, so every migration must leave a schema that the previous release can keep using
(expand, then contract in a later release once no old process is left).

Checked on the real databases, step by step through the migration chain: after each step every
table and column the previous schema had is still there, none of them became NOT NULL, and every
column added to an existing table can be left out of an INSERT (nullable or with a server
default), which is what the previous release's code does. A migration that contracts on purpose
says so with `contract = True` at module level, and ships in a release after the one that
stopped using what it removes (docs/deployment.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import inspect

from tests.conftest import empty_database
from web import create_app
from web.extensions import db

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def chain() -> list[Any]:
    """The revisions from the first to the head."""
    return list(reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions())))


def contracts(revision: Any) -> bool:
    spec = importlib.util.spec_from_file_location(revision.revision, revision.path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return bool(getattr(module, "contract", False))


def shape(conn: Any) -> dict[str, dict[str, tuple[bool, bool]]]:
    """Table -> column -> (nullable, has a default)."""
    found = inspect(conn)
    return {
        table: {
            c["name"]: (
                bool(c["nullable"]),
                c.get("default") is not None
                or bool(c.get("autoincrement") is True)
                or c.get("identity") is not None,
            )
            for c in found.get_columns(table)
        }
        for table in found.get_table_names()
        if table != "alembic_version"
    }


def breaks(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the previous release would trip on in the new schema."""
    problems = []
    for table, columns in before.items():
        if table not in after:
            problems.append(f"table {table} dropped")
            continue
        for name, (nullable, _) in columns.items():
            if name not in after[table]:
                problems.append(f"column {table}.{name} dropped or renamed")
            elif nullable and not after[table][name][0]:
                problems.append(f"column {table}.{name} became NOT NULL")
        for name, (nullable, default) in after[table].items():
            if name not in columns and not nullable and not default:
                problems.append(f"column {table}.{name} added NOT NULL without a server default")
    return problems


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_migration_leaves_a_schema_the_previous_release_can_use(backend, tmp_path, request):
    revisions = chain()
    assert len(revisions) >= 2
    found: dict[str, list[str]] = {}
    with empty_database(backend, tmp_path, request, "deploy") as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": None})
        with app.app_context():
            upgrade(revision=revisions[0].revision)
            with db.engine.connect() as conn:
                before = shape(conn)
            for revision in revisions[1:]:
                upgrade(revision=revision.revision)
                with db.engine.connect() as conn:
                    after = shape(conn)
                problems = breaks(before, after)
                if problems and not contracts(revision):
                    found[revision.revision] = problems
                before = after
            db.engine.dispose()
    assert found == {}, f"{backend}: migrations the previous release could not run on: {found}"


def test_the_check_finds_what_breaks_the_previous_release():
    before = {"t": {"id": (False, True), "a": (True, False), "b": (False, False)}}
    assert breaks(before, before) == []
    assert breaks(before, {}) == ["table t dropped"]
    assert breaks(before, {"t": {"id": (False, True), "a": (True, False)}}) == [
        "column t.b dropped or renamed"
    ]
    assert breaks(before, {"t": {**before["t"], "a": (False, False)}}) == [
        "column t.a became NOT NULL"
    ]
    assert breaks(before, {"t": {**before["t"], "c": (False, False)}}) == [
        "column t.c added NOT NULL without a server default"
    ]
    assert breaks(before, {"t": {**before["t"], "c": (False, True), "d": (True, False)}}) == []
