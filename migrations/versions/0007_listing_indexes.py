"""Indexes for big data (issue 12): the jobs list read from one covering index at any page,
the title and video id search by trigrams on PostgreSQL, and the newest finished renders.

- ix_video_jobs_listing (created_at, id, course_id, video_generation_status, title, video_id)
  replaces ix_video_jobs_created_at: a page of ids (newest first, scoped by course, filtered by
  status or, on SQLite, by title or video id) and the page count come from the index alone,
  without reading the rows and their summaries, so page 2,000 costs about what page 1 does.
- ix_video_jobs_search (PostgreSQL only): a GIN index with pg_trgm's gin_trgm_ops on title and
  video_id, which answers ILIKE '%…%'. pg_trgm ships with PostgreSQL (contrib) and is a trusted
  extension: the database's owner may create it. Downgrading keeps the extension.
- ix_renders_state_finished_at (state, finished_at) replaces ix_renders_state: the newest
  completed renders (the ETA's past speeds) without sorting every completed render.

Revision ID: 0007_listing_indexes
Revises: 0006_render_sidecars
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007_listing_indexes"
down_revision = "0006_render_sidecars"
branch_labels = None
depends_on = None

LISTING = ["created_at", "id", "course_id", "video_generation_status", "title", "video_id"]
TRIGRAMS = {"title": "gin_trgm_ops", "video_id": "gin_trgm_ops"}


def upgrade():
    op.create_index("ix_video_jobs_listing", "video_jobs", LISTING)
    op.drop_index("ix_video_jobs_created_at", table_name="video_jobs")
    op.create_index("ix_renders_state_finished_at", "renders", ["state", "finished_at"])
    op.drop_index("ix_renders_state", table_name="renders")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_video_jobs_search",
            "video_jobs",
            list(TRIGRAMS),
            postgresql_using="gin",
            postgresql_ops=TRIGRAMS,
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_video_jobs_search", table_name="video_jobs")
    op.create_index("ix_renders_state", "renders", ["state"])
    op.drop_index("ix_renders_state_finished_at", table_name="renders")
    op.create_index("ix_video_jobs_created_at", "video_jobs", ["created_at"])
    op.drop_index("ix_video_jobs_listing", table_name="video_jobs")
