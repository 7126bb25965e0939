"""the program and its emails as versioned data; clients and automations record their version

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-29 19:30:00

Expand only: two new tables, a column with a server default and nullable columns, so that the
previous release runs unchanged against the migrated schema (its clients run version 1). The
shipped program file (or PROGRAM_FILE) and the email templates become version 1.
"""

import os
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    json_type = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
    versions = op.create_table(
        "program_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("definition", json_type, nullable=False),
        sa.Column("templates", json_type, nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_program_versions"),
        sa.UniqueConstraint("number", name="uq_program_versions_number"),
    )
    op.create_table(
        "program_publications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("applies_to", sa.String(length=10), nullable=False),
        sa.Column("clients_moved", sa.Integer(), nullable=False),
        sa.Column("automations_moved", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", json_type, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_program_publications"),
    )
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("program_version", sa.Integer(), server_default="1", nullable=False)
        )
    with op.batch_alter_table("automations") as batch:
        batch.add_column(sa.Column("program_version", sa.Integer(), nullable=True))
    with op.batch_alter_table("automation_logs") as batch:
        batch.add_column(sa.Column("program_version", sa.Integer(), nullable=True))

    from scheduler.program import load_program
    from scheduler.programs import seed_row

    program = load_program(os.environ.get("PROGRAM_FILE") or None)
    op.bulk_insert(versions, [seed_row(program, datetime.now(UTC))])


def downgrade():
    with op.batch_alter_table("automation_logs") as batch:
        batch.drop_column("program_version")
    with op.batch_alter_table("automations") as batch:
        batch.drop_column("program_version")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("program_version")
    op.drop_table("program_publications")
    op.drop_table("program_versions")
