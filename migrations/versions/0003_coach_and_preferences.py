"""client coach and email preferences

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("coach_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
        batch.add_column(
            sa.Column("reminders_enabled", sa.Boolean(), server_default="1", nullable=False)
        )
        batch.add_column(
            sa.Column("celebrations_enabled", sa.Boolean(), server_default="1", nullable=False)
        )
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True)))
        batch.create_foreign_key(
            "fk_clients_coach_id_admins", "admins", ["coach_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_clients_coach_id", ["coach_id"])


def downgrade():
    with op.batch_alter_table("clients") as batch:
        batch.drop_index("ix_clients_coach_id")
        batch.drop_constraint("fk_clients_coach_id_admins", type_="foreignkey")
        batch.drop_column("unsubscribed_at")
        batch.drop_column("celebrations_enabled")
        batch.drop_column("reminders_enabled")
        batch.drop_column("coach_id")
