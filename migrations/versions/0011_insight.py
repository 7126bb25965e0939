"""success metrics: whole days kept, deliverables by generation time

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-29 19:30:00

Expand only: a new table and a new index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "metric_days",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("coach_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_days"),
        sa.UniqueConstraint(
            "metric", "day", "coach_id", "month", name="uq_metric_days_metric_day_coach_id_month"
        ),
    )
    op.create_index("ix_deliverables_generated_at", "deliverables", ["generated_at"])


def downgrade():
    op.drop_index("ix_deliverables_generated_at", table_name="deliverables")
    op.drop_table("metric_days")
