"""workers that beat, automations claimed by one, outbox rows being sent

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-29 16:00:00

Expand only: new nullable columns and a new table, so that workers of the previous release
run unchanged against the migrated schema.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    with op.batch_alter_table("automations") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
    with op.batch_alter_table("emails") as batch:
        batch.add_column(sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("uncertain_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("uncertain_at")
        batch.drop_column("sending_at")
    with op.batch_alter_table("automations") as batch:
        batch.drop_column("claimed_by")
    op.drop_table("workers")
