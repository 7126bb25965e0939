"""success metrics: whole days kept, deliverables by generation time; clients at risk; A/B tests of emails

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-29 19:30:00

Expand only: a new table and a new index.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
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
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "risk_models",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("body", json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_models"),
    )
    op.create_table(
        "client_risks",
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("features", json, nullable=False),
        sa.Column("reasons", json, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_risks_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["risk_models.id"], name="fk_client_risks_model_id_risk_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name="pk_client_risks"),
    )
    op.create_index("ix_client_risks_at_risk", "client_risks", ["at_risk"])
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("split", sa.Integer(), nullable=False),
        sa.Column("goal_days", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=254), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=254), nullable=True),
        sa.Column("kept", sa.String(length=1), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ab_tests"),
    )
    op.create_index("ix_ab_tests_template", "ab_tests", ["template"])
    with op.batch_alter_table("emails") as batch:
        batch.add_column(sa.Column("ab_test_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch.add_column(sa.Column("variant", sa.String(length=1), nullable=True))
        batch.create_foreign_key(
            "fk_emails_ab_test_id_ab_tests", "ab_tests", ["ab_test_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_emails_ab_test_id", ["ab_test_id"])


def downgrade():
    with op.batch_alter_table("emails") as batch:
        batch.drop_index("ix_emails_ab_test_id")
        batch.drop_constraint("fk_emails_ab_test_id_ab_tests", type_="foreignkey")
        batch.drop_column("variant")
        batch.drop_column("ab_test_id")
    op.drop_index("ix_ab_tests_template", table_name="ab_tests")
    op.drop_table("ab_tests")
    op.drop_index("ix_client_risks_at_risk", table_name="client_risks")
    op.drop_table("client_risks")
    op.drop_table("risk_models")
    op.drop_index("ix_deliverables_generated_at", table_name="deliverables")
    op.drop_table("metric_days")
