"""Base schema: users, courses, API tokens, video jobs, lessons, renders.

Revision ID: 0001_base_schema
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_base_schema"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)
ACTIVE_RENDERS = sa.text("state IN ('queued', 'rendering')")


def upgrade():
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
        sa.UniqueConstraint("name", name=op.f("uq_courses_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "staff", name="user_role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])
    op.create_table(
        "course_members",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_course_members_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_course_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "course_id", name=op.f("pk_course_members")),
    )
    op.create_table(
        "video_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_video_jobs_course_id_courses")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_jobs")),
    )
    op.create_index(op.f("ix_video_jobs_course_id"), "video_jobs", ["course_id"])
    op.create_index(op.f("ix_video_jobs_created_at"), "video_jobs", ["created_at"])
    op.create_index(op.f("ix_video_jobs_video_id"), "video_jobs", ["video_id"])
    op.create_table(
        "lessons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("problem", sa.String(length=500), nullable=True),
        sa.Column("missing", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["video_jobs.id"], name=op.f("fk_lessons_job_id_video_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lessons")),
        sa.UniqueConstraint("job_id", "path", name=op.f("uq_lessons_job_id")),
    )
    op.create_index(op.f("ix_lessons_job_id"), "lessons", ["job_id"])
    op.create_table(
        "renders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("lesson_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued", "rendering", "completed", "failed", "cancelled",
                name="render_state", native_enum=False, length=20,
            ),
            nullable=False,
        ),
        sa.Column("rq_job_id", sa.String(length=100), nullable=True),
        sa.Column("output_file_name", sa.String(length=100), nullable=False),
        sa.Column("output_path", sa.String(length=500), nullable=False),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("frames_total", sa.Integer(), nullable=True),
        sa.Column("error_kind", sa.String(length=40), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("queued_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("cancel_requested_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["video_jobs.id"], name=op.f("fk_renders_job_id_video_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lesson_id"], ["lessons.id"], name=op.f("fk_renders_lesson_id_lessons"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_renders_requested_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renders")),
    )
    op.create_index(op.f("ix_renders_job_id"), "renders", ["job_id"])
    op.create_index(op.f("ix_renders_lesson_id"), "renders", ["lesson_id"])
    op.create_index(op.f("ix_renders_state"), "renders", ["state"])
    # One queued or rendering render per lesson and output file: a double click is one render.
    op.create_index(
        "uq_renders_active_output", "renders", ["lesson_id", "output_file_name"], unique=True,
        postgresql_where=ACTIVE_RENDERS, sqlite_where=ACTIVE_RENDERS,
    )


def downgrade():
    op.drop_table("renders")
    op.drop_table("lessons")
    op.drop_table("video_jobs")
    op.drop_table("course_members")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("courses")
