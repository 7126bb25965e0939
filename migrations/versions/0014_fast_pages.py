"""Admin pages at 100,000 clients: whether each client's current month is done (the status
rule finds the overdue clients through it), the overdue clients, the clients on hold and the
clients list's order indexed, the log's indexes in its order and its rows by a person indexed,
the due index carrying what pending automations are counted by, the dashboard's numbers kept

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 09:00:00

Expand only: a column with a server default (the previous release's inserts leave
it out; a month its processes approve during the deploy is not marked done, which only makes
that client a candidate the status rule checks against the deliverables); indexes, those of the
big tables built without blocking their writes: the log's two in time order gain the id (ties
in order), built before the old ones go; the due index carries what pending automations are
counted by (built beside the old one, which then gives it its name); PostgreSQL's sample for
the clients' rows in automations and the log, ten times larger.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The current month's newest deliverable is delivered or skipped.
DONE = """
UPDATE clients SET current_month_done = true WHERE EXISTS (
    SELECT 1 FROM deliverables d
    WHERE d.client_id = clients.id AND d.month = clients.current_month
        AND d.status IN ('DELIVERED', 'SKIPPED')
        AND NOT EXISTS (
            SELECT 1 FROM deliverables n
            WHERE n.client_id = d.client_id AND n.month = d.month AND n.version > d.version
        )
)
"""
OVERDUE_FROM = (
    "(start_date + held_days + 30 * (current_month + current_month_done::integer - 1) + 8)"
)

LOG_INDEXES = [
    ("ix_automation_logs_at_id", ["at", "id"], None),
    ("ix_automation_logs_status_at_id", ["status", "at", "id"], None),
    ("ix_automation_logs_actor_at_id", ["at", "id"], sa.text("actor IS NOT NULL")),
]


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("current_month_done", sa.Boolean(), server_default="0", nullable=False)
        )
    op.execute(DONE)
    if op.get_bind().dialect.name == "postgresql":  # SQLite's lists are small
        op.create_index("ix_clients_name", "clients", [sa.text("lower(name)"), "id"])
        op.create_index(
            "ix_clients_overdue_from",
            "clients",
            [sa.text(OVERDUE_FROM)],
            postgresql_where=sa.text("completed_at IS NULL AND paused_at IS NULL"),
        )
    op.create_index(
        "ix_clients_paused",
        "clients",
        ["id"],
        postgresql_where=sa.text("paused_at IS NOT NULL"),
        sqlite_where=sa.text("paused_at IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":  # how many clients rows belong to
        for table in ("automations", "automation_logs"):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN client_id SET STATISTICS 1000")
    # The log's indexes in its order (ties by id); built, then the old ones dropped, without
    # blocking the log's writes.
    with op.get_context().autocommit_block():
        for name, columns, where in LOG_INDEXES:
            op.create_index(
                name,
                "automation_logs",
                columns,
                postgresql_where=where,
                sqlite_where=where,
                postgresql_concurrently=True,
            )
        for name in ("ix_automation_logs_at", "ix_automation_logs_status_at"):
            op.drop_index(name, "automation_logs", postgresql_concurrently=True)
        if op.get_bind().dialect.name == "postgresql":
            # The due index carries what pending automations are counted by: built beside the
            # old one, which then gives it its name (the sweep always has one to read).
            due(include=["type", "client_id", "hold_id"])


def due(include):
    """The due index again, with `include` (PostgreSQL, outside a transaction)."""
    op.create_index(
        "ix_automations_due_next",
        "automations",
        ["trigger_at"],
        postgresql_include=include,
        postgresql_where=sa.text("status = 'SCHEDULED'"),
        postgresql_concurrently=True,
    )
    op.drop_index("ix_automations_due", "automations", postgresql_concurrently=True)
    op.execute("ALTER INDEX ix_automations_due_next RENAME TO ix_automations_due")


def downgrade():
    with op.get_context().autocommit_block():
        if op.get_bind().dialect.name == "postgresql":
            due(include=[])
        op.create_index("ix_automation_logs_at", "automation_logs", ["at"])
        op.create_index("ix_automation_logs_status_at", "automation_logs", ["status", "at"])
        for name, _, _ in LOG_INDEXES:
            op.drop_index(name, "automation_logs")
    op.drop_index("ix_clients_paused", "clients")
    if op.get_bind().dialect.name == "postgresql":
        for table in ("automations", "automation_logs"):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN client_id SET STATISTICS -1")
        op.drop_index("ix_clients_overdue_from", "clients")
        op.drop_index("ix_clients_name", "clients")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("current_month_done")
