"""Renders: the rate of the last few seconds of progress (frames per second), for the ETA.

Revision ID: 0005_render_rate
Revises: 0004_webhooks
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_render_rate"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: SQLite adds such a column in place (no copy of the table, whose
    # partial unique index a batch copy would have to recreate).
    op.add_column("renders", sa.Column("frames_per_second", sa.Double(), nullable=True))


def downgrade():
    op.drop_column("renders", "frames_per_second")
