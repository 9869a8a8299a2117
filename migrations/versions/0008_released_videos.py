"""A deleted job's video stays with its course (released_videos).

Deleting a job leaves its lesson folders on disk. Without a record of whose they were, staff of
any course could create a job for the same video id and read them. A row here keeps the video
with the deleted job's course until that course (or an administrator) makes it a job again.

Revision ID: 0008_released_videos
Revises: 0007_listing_indexes
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_released_videos"
down_revision = "0007_listing_indexes"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "released_videos",
        sa.Column("video_id", sa.String(64), primary_key=True),
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("released_at", UTC_TIMESTAMP, nullable=False),
    )
    op.create_index("ix_released_videos_course_id", "released_videos", ["course_id"])


def downgrade():
    op.drop_index("ix_released_videos_course_id", table_name="released_videos")
    op.drop_table("released_videos")
