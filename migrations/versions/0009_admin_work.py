"""admin work: deliverables edited before approval (the generated text kept), who acted, and
the record of people's changes to clients

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 19:00:00

Expand only: new nullable columns, so that the previous release runs unchanged against the
migrated schema.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "client_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=True),
        sa.Column("what", sa.String(length=120), nullable=False),
        sa.Column("before", JSON_TYPE, nullable=False),
        sa.Column("after", JSON_TYPE, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name="fk_client_changes_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_client_changes"),
    )
    op.create_index("ix_client_changes_client_id_at", "client_changes", ["client_id", "at"])
    with op.batch_alter_table("deliverables") as batch:
        batch.add_column(sa.Column("generated_content", sa.Text(), nullable=True))
        batch.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("edited_by", sa.String(length=254), nullable=True))
    with op.batch_alter_table("automation_logs") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=254), nullable=True))
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("offboarded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("offboard_reason", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("offboard_reason")
        batch.drop_column("offboarded_at")
    op.drop_index("ix_client_changes_client_id_at", table_name="client_changes")
    op.drop_table("client_changes")
    with op.batch_alter_table("automation_logs") as batch:
        batch.drop_column("actor")
    with op.batch_alter_table("deliverables") as batch:
        batch.drop_column("edited_by")
        batch.drop_column("edited_at")
        batch.drop_column("generated_content")
