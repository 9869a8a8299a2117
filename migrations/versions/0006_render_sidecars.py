"""Renders: the files written beside the video (poster, chapters, captions).

Revision ID: 0006_render_sidecars
Revises: 0005_render_rate
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_render_sidecars"
down_revision = "0005_render_rate"
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: added in place on SQLite too (see 0005).
    op.add_column("renders", sa.Column("sidecars", sa.JSON(), nullable=True))


def downgrade():
    op.drop_column("renders", "sidecars")
