"""A/B tests with the click goal: each email's first click on its portal links, and each test's
goal

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-29 23:00:00

Expand only: a nullable column, and a column with a server default (the previous release's
inserts leave it out and get "open", the only goal it knows).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("emails") as batch:
        batch.add_column(sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("ab_tests") as batch:
        batch.add_column(
            sa.Column("goal", sa.String(length=10), server_default="open", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("ab_tests") as batch:
        batch.drop_column("goal")
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("clicked_at")
