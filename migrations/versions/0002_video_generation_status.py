"""The original design's change: video_generation_status and video_generation_data on video jobs.

Revision ID: 0002_video_generation_status
Revises: 0001_base_schema
Create Date: 2026-11-25

The status is a PostgreSQL enum type there (a plain string on SQLite); the data
is JSONB on PostgreSQL and JSON elsewhere. The downgrade drops both columns and
the enum type, so upgrade → downgrade → upgrade works.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_video_generation_status"
down_revision = "0001_base_schema"
branch_labels = None
depends_on = None

STATUSES = ("not_started", "generating", "completed", "failed")


def _status_type(create_type: bool = False) -> sa.Enum:
    return sa.Enum(*STATUSES, name="video_generation_status", length=20, create_type=create_type)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        postgresql.ENUM(*STATUSES, name="video_generation_status").create(bind, checkfirst=True)
    with op.batch_alter_table("video_jobs") as batch_op:
        batch_op.add_column(
            sa.Column("video_generation_status", _status_type(), server_default="not_started", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "video_generation_data",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade():
    with op.batch_alter_table("video_jobs") as batch_op:
        batch_op.drop_column("video_generation_data")
        batch_op.drop_column("video_generation_status")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        postgresql.ENUM(name="video_generation_status").drop(bind, checkfirst=True)
