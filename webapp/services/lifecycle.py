"""A render's life: queued → rendering → completed, failed or cancelled.

A Render row is the lasting record of one attempt; RQ only executes it. Every state
change here happens under the job lock and recomputes the job's summary in the same
transaction (summary.py), so two workers finishing two lessons at once both appear.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from .. import metrics, queue
from ..extensions import db
from ..models import (
    ACTIVE_RENDER_STATES,
    ErrorKind,
    Render,
    RenderState,
    VideoGenerationStatus,
    VideoJob,
    utcnow,
)
from . import attempts, storage, summary, webhooks
from .messages import without_server_paths

log = logging.getLogger(__name__)

WORKER_LOST = "The worker rendering this video stopped responding (process killed or machine lost)."
# When a render starts, at most this many other jobs with queued renders get a new status
# document (their places in line moved).
LINE_JOBS_NOTIFIED = 100


# --- cancelling ---------------------------------------------------------------------------


def cancel_queued(render: Render) -> bool:
    """Cancel a queued attempt at once (and take it out of RQ); False if it is no longer queued."""
    job = summary.lock_job(render.job_id)
    render = db.session.get(Render, render.id, populate_existing=True)
    if render.state != RenderState.QUEUED:
        db.session.rollback()
        return False
    render.state = RenderState.CANCELLED
    render.finished_at = utcnow()
    render.error_kind = ErrorKind.CANCELLED
    render.error_message = "Cancelled before it started."
    completes = _refresh_summary(job)
    db.session.commit()
    queue.cancel_job(render.rq_job_id)
    log.info("render state=cancelled render_id=%s job_id=%s lesson=%s", render.id, job.id, render.lesson.path)
    webhooks.render_finished(render, job, completes)
    return True


def request_stop(render: Render) -> bool:
    """Ask a rendering attempt to stop (its worker checks twice a second); False if it is not rendering."""
    summary.lock_job(render.job_id)
    render = db.session.get(Render, render.id, populate_existing=True)
    if render.state != RenderState.RENDERING:
        db.session.rollback()
        return False
    if render.cancel_requested_at is None:
        render.cancel_requested_at = utcnow()
    db.session.commit()
    log.info("render cancel requested render_id=%s", render.id)
    return True


# --- the worker's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """What a worker needs to render one attempt."""

    render_id: uuid.UUID
    lesson_path: str  # "<videoId>/lesson_<n>": the store's lessons/<lessonPath>/…
    output_key: str  # "videos/<lessonPath>/<file>" (the contract's outputPath)


def current_attempt(rq_job_id: str) -> Render | None:
    """The attempt an RQ job runs now: its newest (automatic retries reuse the RQ job)."""
    return db.session.scalars(
        sa.select(Render).where(Render.rq_job_id == rq_job_id).order_by(Render.attempt.desc())
    ).first()


def _line_moved(started_job_id) -> None:
    """A render left the line: every job with renders still queued has a new place in line to
    show, so its status document is published again with this commit."""
    waiting = db.session.scalars(
        sa.select(Render.job_id)
        .where(Render.state == RenderState.QUEUED, Render.job_id != started_job_id)
        .distinct()
        .limit(LINE_JOBS_NOTIFIED)
    )
    for job_id in waiting:
        summary.changed(job_id)


def begin(rq_job_id: str) -> Assignment | None:
    """Mark the queued attempt of this RQ job as rendering; None when there is nothing to do."""
    render = current_attempt(rq_job_id)
    if render is None:
        log.warning("no render for rq_job_id=%s", rq_job_id)
        return None
    job = summary.lock_job(render.job_id)
    render = db.session.get(Render, render.id, populate_existing=True)
    if render.state != RenderState.QUEUED:
        db.session.rollback()
        log.info("render not started render_id=%s state=%s", render.id, render.state)
        return None
    now = utcnow()
    render.state = RenderState.RENDERING
    render.started_at = now
    render.heartbeat_at = now
    summary.refresh(job)
    _line_moved(job.id)
    db.session.commit()
    log.info("render state=rendering render_id=%s job_id=%s lesson=%s", render.id, job.id, render.lesson.path)
    return Assignment(
        render_id=render.id,
        lesson_path=render.lesson.path,
        output_key=render.output_path,
    )


# --- final states --------------------------------------------------------------------------


def _refresh_summary(job: VideoJob) -> bool:
    """Recompute the job's summary; True when this change completes the job."""
    was = job.video_generation_status
    summary.refresh(job)
    return (
        was != VideoGenerationStatus.COMPLETED
        and job.video_generation_status == VideoGenerationStatus.COMPLETED
    )


def _settle(render_id: uuid.UUID, state: RenderState, **values) -> tuple[VideoJob, Render] | None:
    """Lock the job and move an active render to a final state, leaving the transaction open
    for the caller to finish; None (nothing changed) if the render had already finished."""
    render = db.session.get(Render, render_id)
    if render is None:
        return None
    job = summary.lock_job(render.job_id)
    render = db.session.get(Render, render_id, populate_existing=True)
    if render.state not in ACTIVE_RENDER_STATES:
        db.session.rollback()
        return None
    render.state = state
    render.finished_at = utcnow()
    for name, value in values.items():
        setattr(render, name, value)
    return job, render


def _finish(render_id: uuid.UUID, state: RenderState, **values) -> Render | None:
    """Move an active render to a final state and commit it with the job's new summary."""
    settled = _settle(render_id, state, **values)
    if settled is None:
        return None
    job, render = settled
    completes = _refresh_summary(job)
    db.session.commit()
    log.info("render state=%s render_id=%s job_id=%s lesson=%s", state, render_id, job.id, render.lesson.path)
    webhooks.render_finished(render, job, completes)
    return render


def complete(
    render_id: uuid.UUID, *, frames: int, duration: float, size_bytes: int, sidecars: dict | None = None
) -> Render | None:
    render = _finish(
        render_id,
        RenderState.COMPLETED,
        frames_done=frames,
        frames_total=frames,
        duration=duration,
        size_bytes=size_bytes,
        sidecars=sidecars or None,
        heartbeat_at=utcnow(),
        error_kind=None,
        error_message=None,
    )
    if render is not None and render.started_at:
        metrics.render_finished((render.finished_at - render.started_at).total_seconds(), frames)
    return render


def mark_cancelled(render_id: uuid.UUID, message: str = "Cancelled while rendering.") -> Render | None:
    render = _finish(render_id, RenderState.CANCELLED, error_kind=ErrorKind.CANCELLED, error_message=message)
    if render is not None:
        storage.remove_partial_outputs(render)
    return render


def _may_retry_automatically(render: Render) -> bool:
    """At most RENDER_MAX_ATTEMPTS attempts in a row that failed for reasons that may pass."""
    earlier = db.session.scalars(
        sa.select(Render)
        .where(
            Render.lesson_id == render.lesson_id,
            Render.output_file_name == render.output_file_name,
            Render.attempt < render.attempt,
        )
        .order_by(Render.attempt.desc())
    )
    run = 1  # this attempt
    for previous in earlier:
        if previous.state != RenderState.FAILED or not ErrorKind.of(previous.error_kind or "").retryable:
            break
        run += 1
    return run < current_app.config["RENDER_MAX_ATTEMPTS"]


def fail(
    render_id: uuid.UUID,
    kind: ErrorKind,
    message: str,
    *,
    requeue: bool = False,
    same_rq_job: bool = False,
) -> Render | None:
    """Fail an attempt; with `requeue`, queue the next attempt (if attempts remain) and return it.

    `same_rq_job`: the next attempt is run by the same RQ job (the task returned rq.Retry);
    otherwise a new RQ job is enqueued for it.
    """
    message = without_server_paths(message)[:2000]
    settled = _settle(render_id, RenderState.FAILED, error_kind=ErrorKind(kind), error_message=message)
    if settled is None:
        return None
    job, render = settled
    db.session.flush()  # this attempt leaves the active states before the next one enters them
    next_attempt = None
    if requeue and render.cancel_requested_at is None and _may_retry_automatically(render):
        next_attempt = attempts.new_attempt(
            job, render.lesson, render.output_file_name, render.requested_by, render.frames_total
        )
        if same_rq_job:
            next_attempt.rq_job_id = render.rq_job_id
    db.session.flush()
    completes = _refresh_summary(job)
    db.session.commit()
    # The reason too (it was only on the page): an operator reads the log. A lesson's own
    # mistake is its staff's business; anything else may be the machine's.
    log.log(
        logging.INFO if kind in (ErrorKind.MANIFEST, ErrorKind.CANCELLED) else logging.WARNING,
        "render state=failed render_id=%s job_id=%s lesson=%s kind=%s requeued=%s message=%r",
        render_id,
        job.id,
        render.lesson.path,
        kind,
        bool(next_attempt),
        message,
    )
    storage.remove_partial_outputs(render)
    webhooks.render_finished(render, job, completes)
    if next_attempt is not None and not same_rq_job:
        try:
            attempts.enqueue(next_attempt)
        except queue.Unavailable:
            log.warning("could not enqueue retry render_id=%s; the reaper will", next_attempt.id)
    return next_attempt
