"""success metrics counted ahead: kept spans of the log per cohort, coach and month, and kept
states (the clients', the funnels)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 23:00:00

Expand only: two new tables. `metric_days` is no longer written; the previous release's
processes may still use it during the deploy, and a later release drops it.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "metric_periods",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("basis", sa.String(length=100), nullable=False),
        sa.Column("log_rows", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_metric_periods"),
        sa.UniqueConstraint(
            "kind", "starts_at", "ends_at", name="uq_metric_periods_kind_starts_at_ends_at"
        ),
    )
    op.create_table(
        "metric_counts",
        sa.Column("id", ID, nullable=False),
        sa.Column("period_id", ID, nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("cohort", sa.Date(), nullable=False),
        sa.Column("coach_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["metric_periods.id"],
            name="fk_metric_counts_period_id_metric_periods",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_metric_counts"),
        sa.UniqueConstraint(
            "period_id",
            "metric",
            "cohort",
            "coach_id",
            "month",
            name="uq_metric_counts_period_id_metric_cohort_coach_id_month",
        ),
    )
    op.create_index("ix_metric_counts_cohort", "metric_counts", ["cohort"])


def downgrade():
    op.drop_index("ix_metric_counts_cohort", table_name="metric_counts")
    op.drop_table("metric_counts")
    op.drop_table("metric_periods")
