"""One job per video id; a session version per user.

Revision ID: 0003_security
Revises: 0002_video_generation_status
Create Date: 2026-11-25

A video id's lesson folder and videos belong to one job, so to one course: the
index on video_jobs.video_id becomes unique. A database that already holds two
jobs for one video cannot take the index; the upgrade stops and names them, for
an operator to move or delete one (`flask jobs move`, `flask jobs delete`).

users.session_version is part of every session id (see User.get_id).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_security"
down_revision = "0002_video_generation_status"
branch_labels = None
depends_on = None


def _refuse_duplicate_videos() -> None:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT video_id, COUNT(*) FROM video_jobs GROUP BY video_id HAVING COUNT(*) > 1 ORDER BY video_id"
        )
    ).all()
    if rows:
        listed = ", ".join(f"{video_id} ({count} jobs)" for video_id, count in rows)
        raise RuntimeError(
            f"Several jobs share a video id: {listed}. A video belongs to one job: delete or merge "
            "the extra jobs (flask jobs delete JOB_ID), then run the upgrade again."
        )


def upgrade():
    _refuse_duplicate_videos()
    with op.batch_alter_table("video_jobs") as batch_op:
        batch_op.drop_index("ix_video_jobs_video_id")
        batch_op.create_index("ix_video_jobs_video_id", ["video_id"], unique=True)
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_version")
    with op.batch_alter_table("video_jobs") as batch_op:
        batch_op.drop_index("ix_video_jobs_video_id")
        batch_op.create_index("ix_video_jobs_video_id", ["video_id"], unique=False)
