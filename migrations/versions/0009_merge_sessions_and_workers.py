"""merge: admin sessions (0006) and workers and leases (0008), made on separate branches

Revision ID: 0009
Revises: 0006, 0008
Create Date: 2026-11-29 17:00:00

"""

revision = "0009"
down_revision = ("0006", "0008")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
