"""When an upload last replaced a lesson's files (lessons.files_changed_at).

A lesson's row read "completed" beside its video after new files were uploaded for it, as if the
video showed them; the job page now says the video is of the files before.

Revision ID: 0009_lesson_files_changed
Revises: 0008_released_videos
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_lesson_files_changed"
down_revision = "0008_released_videos"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lessons") as batch:
        batch.add_column(sa.Column("files_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("lessons") as batch:
        batch.drop_column("files_changed_at")
