"""New render attempts: creating one and handing it to RQ, both or neither.

A double click is one render: an attempt already queued or rendering for the same lesson
and file name is returned instead of a new one (a partial unique index makes this hold
under races).
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa

from .. import queue
from ..extensions import db
from ..models import ACTIVE_RENDER_STATES, Lesson, Render, RenderState, User, VideoJob, utcnow
from . import summary
from .errors import QueueUnavailable

log = logging.getLogger(__name__)


def active_render(lesson_id: int, file_name: str) -> Render | None:
    """The queued or rendering attempt of this lesson and file name, if any."""
    return db.session.scalars(
        sa.select(Render)
        .where(
            Render.lesson_id == lesson_id,
            Render.output_file_name == file_name,
            Render.state.in_(ACTIVE_RENDER_STATES),
        )
        .execution_options(populate_existing=True)
    ).first()


def new_attempt(
    job: VideoJob, lesson: Lesson, file_name: str, user: User | None, frames: int | None
) -> Render:
    last = db.session.scalar(
        sa.select(sa.func.max(Render.attempt)).where(
            Render.lesson_id == lesson.id, Render.output_file_name == file_name
        )
    )
    render = Render(
        id=uuid.uuid4(),
        job_id=job.id,
        lesson_id=lesson.id,
        state=RenderState.QUEUED,
        output_file_name=file_name,
        output_path=f"videos/{lesson.path}/{file_name}",
        frames_total=frames,
        requested_by_id=user.id if user else None,
        attempt=(last or 0) + 1,
        queued_at=utcnow(),
    )
    render.rq_job_id = queue.render_job_id(render.id)
    db.session.add(render)
    return render


def enqueue(render: Render) -> str:
    """Hand an attempt to RQ; raises queue.Unavailable when Redis refuses."""
    job = render.job
    return queue.enqueue_render(
        render.id,
        render.rq_job_id,
        attempt=render.attempt,
        job_id=job.id,
        course_id=job.course_id,
        duration=render.lesson.duration,
    )


def queue_attempt(
    job_id: uuid.UUID, lesson: Lesson, file_name: str, user: User | None, frames: int | None
) -> Render:
    """Insert a queued attempt and enqueue it; both happen or neither does. An identical
    attempt already queued or rendering is returned instead (a double click is one render)."""
    job = summary.lock_job(job_id)
    existing = active_render(lesson.id, file_name)
    if existing is not None:
        db.session.rollback()
        return existing
    render = new_attempt(job, lesson, file_name, user, frames)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:  # someone queued the same lesson and file a moment ago
        db.session.rollback()
        return active_render(lesson.id, file_name)
    summary.refresh(job)
    db.session.commit()
    try:
        enqueue(render)
    except queue.Unavailable as exc:
        log.warning("enqueue failed render_id=%s error=%s", render.id, exc)
        job = summary.lock_job(job_id)
        db.session.delete(db.session.get(Render, render.id))
        db.session.flush()
        summary.refresh(job)
        db.session.commit()
        raise QueueUnavailable(
            "The render queue is unavailable right now; nothing was queued. Try again."
        ) from exc
    log.info("render state=queued render_id=%s job_id=%s lesson=%s", render.id, job_id, lesson.path)
    return render
