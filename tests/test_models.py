"""Tables: keys, defaults, constraints, timestamps."""

import uuid
from datetime import UTC

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Lesson, Render, RenderState, User, VideoGenerationStatus, VideoJob


def test_job_defaults_and_uuid_key(app, factory):
    job = factory.job("Course A", lessons=1)
    with app.app_context():
        row = db.session.get(VideoJob, uuid.UUID(job.id))
        assert isinstance(row.id, uuid.UUID)
        assert row.video_generation_status is VideoGenerationStatus.NOT_STARTED
        assert row.created_at.tzinfo is UTC
        raw = db.session.execute(
            sa.text("SELECT video_generation_status FROM video_jobs WHERE id = :id"),
            {"id": row.id.hex if db.engine.dialect.name == "sqlite" else row.id},
        ).scalar_one()
        assert raw == "not_started"


def test_status_column_defaults_in_the_database_itself(app, factory):
    """A row inserted without the column (as an old client would) gets not_started."""
    factory.job("Course A", lessons=0)
    with app.app_context():
        course_id = db.session.scalars(sa.select(VideoJob.course_id)).first()
        new_id = uuid.uuid4()
        db.session.execute(
            sa.insert(VideoJob.__table__)
            .values(
                id=new_id,
                course_id=course_id,
                video_id="abcdefghijk",
                title="raw",
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
            .return_defaults()
        )
        db.session.commit()
        assert db.session.get(VideoJob, new_id).video_generation_status is VideoGenerationStatus.NOT_STARTED


def test_passwords_are_hashed(app, factory):
    user = factory.user("hash@example.com", password="s3cret-password")
    with app.app_context():
        row = db.session.get(User, user.id)
        assert "s3cret-password" not in row.password_hash
        assert row.check_password("s3cret-password")
        assert not row.check_password("wrong")


def test_lesson_path_unique_per_job(app, factory):
    job = factory.job("Course A", lessons=1)
    with app.app_context():
        db.session.add(Lesson(job_id=uuid.UUID(job.id), path=job.lessons[0], number=9, title="dup"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()


def _render(job_id, lesson_id, state, name="final_video.mp4"):
    return Render(
        job_id=job_id, lesson_id=lesson_id, state=state, output_file_name=name, output_path=f"videos/x/{name}"
    )


def test_one_active_render_per_lesson_and_file_name(app, factory):
    job = factory.job("Course A", lessons=1)
    with app.app_context():
        lesson = db.session.scalars(sa.select(Lesson)).one()
        job_id = uuid.UUID(job.id)
        db.session.add_all(
            [
                _render(job_id, lesson.id, RenderState.COMPLETED),
                _render(job_id, lesson.id, RenderState.FAILED),
                _render(job_id, lesson.id, RenderState.QUEUED),
                _render(job_id, lesson.id, RenderState.QUEUED, name="other.mp4"),
            ]
        )
        db.session.commit()
        db.session.add(_render(job_id, lesson.id, RenderState.RENDERING))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
