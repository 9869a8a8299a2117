"""Renders: enqueue, progress, finish, cancel, retry, and recovery from lost workers.

A Render row is the lasting record of one attempt; RQ only executes it. Every
state change happens under the job lock and recomputes the job's summary in
the same transaction (see summary.py).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from rq import Callback
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit
from rq.registry import StartedJobRegistry

from .. import queue
from ..extensions import db
from ..models import ACTIVE_RENDER_STATES, Lesson, Render, RenderState, User, VideoJob, utcnow
from ..render import ManifestError, load_manifest, partial_outputs
from . import summary
from .lessons import lesson_dir
from .messages import without_server_paths

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_FILE = "final_video.mp4"
# Letters, digits, space, dot, hyphen, underscore: nothing that means anything to HTML,
# a shell or a path. The name shows up in pages, file names and download headers.
OUTPUT_FILE_NAME = re.compile(r"[A-Za-z0-9 ._-]{1,96}\.mp4", re.IGNORECASE)
# How long a cancelled-but-still-running render may take to stop by itself before
# the RQ stop command is sent.
CANCEL_GRACE = timedelta(seconds=10)
# A queued render whose RQ job vanished (Redis restarted without its data) is
# enqueued again after this long.
LOST_QUEUE_GRACE = timedelta(seconds=60)


class RenderRequestError(Exception):
    """A request the service refuses; `status` is the HTTP status that says why."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unprocessable(RenderRequestError):
    status = 422


class Conflict(RenderRequestError):
    status = 409


class QueueUnavailable(RenderRequestError):
    status = 503


class TooManyRenders(RenderRequestError):
    status = 429


# --- paths ---------------------------------------------------------------------------------


def check_output_file_name(name: str) -> str:
    """A plain *.mp4 file name of letters, digits, space, '.', '-', '_': no leading dot or
    space, no '..', at most 100 characters."""
    if (
        not OUTPUT_FILE_NAME.fullmatch(name or "")
        or ".." in name
        or name.startswith((".", " "))
        or name != name.strip()
    ):
        raise Unprocessable(
            "outputFileName must be a file name ending in .mp4, made of letters, digits, spaces, "
            "'.', '-' and '_' (no folders, no '..', no leading dot), at most 100 characters."
        )
    return name


def video_file(videos_root: Path, output_path: str) -> Path:
    """Where a render's output lives: VIDEOS_ROOT/<lessonPath>/<file> for "videos/<lessonPath>/<file>"."""
    relative = output_path.removeprefix("videos/")
    root = Path(videos_root).resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or target == root:
        raise ValueError(f"output path {output_path!r} leaves the videos folder")
    return target


def _config(name: str):
    return current_app.config[name]


# --- queries -------------------------------------------------------------------------------


def get_render(render_id: str | uuid.UUID, user: User) -> Render | None:
    """The render if it exists and its job is in the user's reach."""
    from .access import parse_uuid, scope_jobs

    render_uuid = parse_uuid(render_id)
    if render_uuid is None:
        return None
    query = scope_jobs(sa.select(Render).join(VideoJob, VideoJob.id == Render.job_id), user)
    return db.session.scalars(query.where(Render.id == render_uuid)).one_or_none()


def _active_render(lesson_id: int, file_name: str) -> Render | None:
    return db.session.scalars(
        sa.select(Render)
        .where(
            Render.lesson_id == lesson_id,
            Render.output_file_name == file_name,
            Render.state.in_(ACTIVE_RENDER_STATES),
        )
        .execution_options(populate_existing=True)
    ).first()


def completed_render_for(job: VideoJob, output_path: str) -> Render | None:
    return db.session.scalars(
        sa.select(Render)
        .where(
            Render.job_id == job.id, Render.output_path == output_path, Render.state == RenderState.COMPLETED
        )
        .order_by(Render.finished_at.desc())
    ).first()


# --- enqueue -------------------------------------------------------------------------------


def job_timeout(duration: float | None) -> int:
    """RQ's hard limit for one render: generous for the lesson's length, never unbounded."""
    return int(300 + 4 * (duration or 600))


def _enqueue(render: Render, job: VideoJob, duration: float | None) -> str:
    from .. import tasks

    rq_job = queue.render_queue().enqueue(
        tasks.render_lesson,
        kwargs={"render_id": str(render.id)},
        job_id=f"render-{render.id}",
        # Shown by the RQ dashboard, which does not escape it: ids only, nothing anyone typed.
        description=f"render {render.id} (attempt {render.attempt})",
        job_timeout=job_timeout(duration),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        meta={"render_id": str(render.id), "job_id": str(job.id), "course_id": job.course_id},
        # Fair share: at most N renders of one course are queued or running at once.
        rate_limit=RateLimit(f"course-{job.course_id}", _config("COURSE_RENDER_CONCURRENCY")),
        on_failure=Callback(tasks.on_render_failed),
        on_stopped=Callback(tasks.on_render_stopped),
    )
    return rq_job.id


def _new_attempt(
    job: VideoJob, lesson: Lesson, file_name: str, user: User | None, frames: int | None
) -> Render:
    last = db.session.scalar(
        sa.select(sa.func.max(Render.attempt)).where(
            Render.lesson_id == lesson.id, Render.output_file_name == file_name
        )
    )
    render = Render(
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
    render.id = uuid.uuid4()
    render.rq_job_id = f"render-{render.id}"
    db.session.add(render)
    return render


def _queue_render(
    job_id: uuid.UUID,
    lesson: Lesson,
    file_name: str,
    user: User | None,
    frames: int | None,
    duration: float | None,
) -> Render:
    """Insert a queued attempt and enqueue it; both happen or neither does."""
    job = summary.lock_job(job_id)
    existing = _active_render(lesson.id, file_name)
    if existing is not None:
        db.session.rollback()
        return existing
    render = _new_attempt(job, lesson, file_name, user, frames)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:  # someone queued the same lesson and file a moment ago
        db.session.rollback()
        return _active_render(lesson.id, file_name)
    summary.refresh(job)
    db.session.commit()
    try:
        _enqueue(render, job, duration)
    except RedisError as exc:
        log.warning("enqueue failed render_id=%s error=%s", render.id, exc)
        job = summary.lock_job(job_id)
        db.session.delete(db.session.get(Render, render.id))
        db.session.flush()
        summary.refresh(job)
        db.session.commit()
        raise QueueUnavailable(
            "The render queue is unavailable right now; nothing was queued. Try again."
        ) from exc
    log.info("render queued render_id=%s job_id=%s lesson=%s", render.id, job_id, lesson.path)
    return render


def _lesson_for(job: VideoJob, lesson_path: str) -> Lesson:
    lesson = db.session.scalars(
        sa.select(Lesson).where(
            Lesson.job_id == job.id, Lesson.path == lesson_path, Lesson.missing.is_(False)
        )
    ).one_or_none()
    if lesson is None:
        raise Unprocessable(f"lessonPath {lesson_path!r} is not a lesson of this job.")
    return lesson


def _checked_manifest(lesson: Lesson):
    """The lesson's manifest, read now: a broken lesson is refused before it reaches the queue."""
    try:
        manifest = load_manifest(
            lesson_dir(_config("LESSONS_ROOT"), lesson.path), max_duration=_config("LESSON_MAX_SECONDS")
        )
    except ManifestError as exc:
        problem = without_server_paths(str(exc))
        lesson.problem = problem[:500]
        db.session.commit()
        raise Unprocessable(f"{lesson.path}/lesson.json is not valid: {problem}") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise Unprocessable(f"The lesson folder of {lesson.path} cannot be read: {reason}") from exc
    except ValueError as exc:
        raise Unprocessable(f"The lesson folder of {lesson.path} is outside the lessons folder.") from exc
    return manifest


def _check_limits(user: User | None, lesson: Lesson, file_name: str) -> None:
    """No one user floods the queue, and no lesson fills the disk with copies under new names."""
    names = set(
        db.session.scalars(sa.select(Render.output_file_name).where(Render.lesson_id == lesson.id).distinct())
    )
    most = _config("LESSON_MAX_OUTPUT_NAMES")
    if file_name not in names and len(names) >= most:
        raise Unprocessable(
            f"{lesson.path} already has videos under {len(names)} file names, the most a lesson may have "
            f"({most}); render again under one of them: {', '.join(sorted(names))}."
        )
    if user is None:
        return  # the command line and the system's own retries
    most = _config("USER_MAX_ACTIVE_RENDERS")
    active = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Render)
        .where(Render.requested_by_id == user.id, Render.state.in_(ACTIVE_RENDER_STATES))
    )
    if active >= most:
        raise TooManyRenders(
            f"You have {active} renders queued or running, the most one person may have at once "
            f"({most}); wait for some to finish."
        )


def generate(user: User | None, job: VideoJob, lesson_path: str, file_name: str | None = None) -> Render:
    """Queue a render of one lesson; an identical render already queued or running is returned instead."""
    file_name = check_output_file_name(DEFAULT_OUTPUT_FILE if file_name is None else file_name)
    lesson = _lesson_for(job, lesson_path)
    existing = _active_render(lesson.id, file_name)
    if existing is not None:
        return existing
    _check_limits(user, lesson, file_name)
    manifest = _checked_manifest(lesson)
    return _queue_render(job.id, lesson, file_name, user, manifest.total_frames, manifest.duration)


@dataclass(frozen=True)
class GenerateAll:
    renders: list[Render]
    skipped: list[tuple[str, str]]  # (lesson path, why)


def generate_all(user: User | None, job: VideoJob) -> GenerateAll:
    """Queue every lesson of the job; lessons already queued or running are left as they are,
    and a broken lesson is skipped (with its reason) rather than stopping the others."""
    lessons = [lesson for lesson in job.lessons if not lesson.missing]
    if not lessons:
        raise Unprocessable("This job has no lessons to generate.")
    renders, skipped = [], []
    for index, lesson in enumerate(lessons):
        try:
            renders.append(generate(user, job, lesson.path))
        except Unprocessable as exc:
            skipped.append((lesson.path, exc.message))
        except TooManyRenders as exc:
            if not renders:
                raise
            skipped.extend((later.path, exc.message) for later in lessons[index:])
            break
    return GenerateAll(renders, skipped)


def retry(user: User | None, render: Render) -> Render:
    """A new attempt of a failed or cancelled render."""
    if render.state not in (RenderState.FAILED, RenderState.CANCELLED):
        raise Conflict(f"Only failed or cancelled renders can be retried; this one is {render.state}.")
    job = db.session.get(VideoJob, render.job_id)
    return generate(user, job, render.lesson.path, render.output_file_name)


# --- cancel --------------------------------------------------------------------------------


def _remove_partial_outputs(render: Render) -> None:
    try:
        target = video_file(_config("VIDEOS_ROOT"), render.output_path)
        for leftover in partial_outputs(target):
            leftover.unlink(missing_ok=True)
    except (OSError, ValueError) as exc:
        log.warning("could not remove partial output render_id=%s error=%s", render.id, exc)


def _cancel_rq_job(rq_job_id: str | None) -> None:
    """Take a queued job out of RQ (queue, schedule and rate-limit slot); best effort."""
    if not rq_job_id:
        return
    try:
        Job.fetch(rq_job_id, connection=queue.connection()).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except RedisError as exc:
        # The worker also checks the row before it starts, so the render stays cancelled.
        log.warning("could not remove job from queue rq_job_id=%s error=%s", rq_job_id, exc)


def cancel(render: Render) -> Render:
    """Cancel a queued render at once; ask a running one to stop (it stops within seconds)."""
    job = summary.lock_job(render.job_id)
    render = db.session.get(Render, render.id, populate_existing=True)
    if render.state == RenderState.QUEUED:
        render.state = RenderState.CANCELLED
        render.finished_at = utcnow()
        render.error_kind = "cancelled"
        render.error_message = "Cancelled before it started."
        summary.refresh(job)
        db.session.commit()
        _cancel_rq_job(render.rq_job_id)
        log.info("render cancelled while queued render_id=%s", render.id)
        return render
    if render.state == RenderState.RENDERING:
        if render.cancel_requested_at is None:
            render.cancel_requested_at = utcnow()
        db.session.commit()
        log.info("render cancel requested render_id=%s", render.id)
        return render
    db.session.rollback()
    raise Conflict(f"This render has already finished ({render.state}); there is nothing to cancel.")


# --- the worker's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """What a worker needs to render one attempt."""

    render_id: uuid.UUID
    lesson_dir: Path
    output: Path
    lesson_path: str


def begin(rq_job_id: str) -> Assignment | None:
    """Mark the queued attempt of this RQ job as rendering; None when there is nothing to do."""
    render = db.session.scalars(
        sa.select(Render).where(Render.rq_job_id == rq_job_id).order_by(Render.attempt.desc())
    ).first()
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
    db.session.commit()
    lesson = render.lesson
    return Assignment(
        render_id=render.id,
        lesson_dir=lesson_dir(_config("LESSONS_ROOT"), lesson.path),
        output=video_file(_config("VIDEOS_ROOT"), render.output_path),
        lesson_path=lesson.path,
    )


def record_progress(render_id: uuid.UUID, frames_done: int, frames_total: int) -> None:
    """Write progress and a heartbeat (the worker calls this about once a second)."""
    db.session.execute(
        sa.update(Render)
        .where(Render.id == render_id, Render.state == RenderState.RENDERING)
        .values(frames_done=frames_done, frames_total=frames_total, heartbeat_at=utcnow())
    )
    db.session.commit()


def cancel_requested(render_id: uuid.UUID) -> bool:
    requested = db.session.execute(
        sa.select(Render.cancel_requested_at, Render.state).where(Render.id == render_id)
    ).one_or_none()
    db.session.rollback()  # end the read so the next one sees new commits (SQLite snapshot)
    return requested is None or requested[0] is not None or requested[1] != RenderState.RENDERING


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
    summary.refresh(job)
    db.session.commit()
    log.info("render %s render_id=%s", state, render_id)
    return render


def complete(render_id: uuid.UUID, *, frames: int, duration: float, size_bytes: int) -> Render | None:
    return _finish(
        render_id,
        RenderState.COMPLETED,
        frames_done=frames,
        frames_total=frames,
        duration=duration,
        size_bytes=size_bytes,
        heartbeat_at=utcnow(),
        error_kind=None,
        error_message=None,
    )


def mark_cancelled(render_id: uuid.UUID, message: str = "Cancelled while rendering.") -> Render | None:
    render = _finish(render_id, RenderState.CANCELLED, error_kind="cancelled", error_message=message)
    if render is not None:
        _remove_partial_outputs(render)
    return render


RETRYABLE_KINDS = ("transient", "worker_lost")


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
        if previous.state != RenderState.FAILED or previous.error_kind not in RETRYABLE_KINDS:
            break
        run += 1
    return run < _config("RENDER_MAX_ATTEMPTS")


def fail(
    render_id: uuid.UUID, kind: str, message: str, *, requeue: bool = False, same_rq_job: bool = False
) -> Render | None:
    """Fail an attempt; with `requeue`, queue the next attempt (if attempts remain) and return it.

    `same_rq_job`: the next attempt is run by the same RQ job (the task returned rq.Retry);
    otherwise a new RQ job is enqueued for it.
    """
    message = without_server_paths(message)[:2000]
    settled = _settle(render_id, RenderState.FAILED, error_kind=kind[:40], error_message=message)
    if settled is None:
        return None
    job, render = settled
    db.session.flush()  # this attempt leaves the active states before the next one enters them
    next_attempt = None
    if requeue and render.cancel_requested_at is None and _may_retry_automatically(render):
        next_attempt = _new_attempt(
            job, render.lesson, render.output_file_name, render.requested_by, render.frames_total
        )
        if same_rq_job:
            next_attempt.rq_job_id = render.rq_job_id
    db.session.flush()
    summary.refresh(job)
    db.session.commit()
    log.info("render failed render_id=%s kind=%s requeued=%s", render_id, kind, bool(next_attempt))
    _remove_partial_outputs(render)
    if next_attempt is not None and not same_rq_job:
        try:
            _enqueue(next_attempt, job, render.lesson.duration)
        except RedisError:
            log.warning("could not enqueue retry render_id=%s; the reaper will", next_attempt.id)
    return next_attempt


# --- recovery (run periodically by `flask cron`) -------------------------------------------


WORKER_LOST = "The worker rendering this video stopped responding (process killed or machine lost)."


def _rq_status(rq_job_id: str | None) -> JobStatus | None:
    if not rq_job_id:
        return None
    try:
        return Job.fetch(rq_job_id, connection=queue.connection()).get_status()
    except NoSuchJobError:
        return None


def _rendering_lost(render: Render, now: datetime, stale_after: timedelta) -> bool:
    last_sign = render.heartbeat_at or render.started_at or render.queued_at
    if now - last_sign > stale_after:
        return True
    # RQ already knows the job is over (e.g. the work horse died and its worker noticed).
    over = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED)
    return now - last_sign > timedelta(seconds=5) and _rq_status(render.rq_job_id) in over


def reap(now: datetime | None = None) -> dict[str, int]:
    """Settle renders whose worker is gone, stop cancelled ones that ignore the request, and
    re-enqueue queued renders whose RQ job vanished. Returns counts of what was done."""
    now = now or utcnow()
    stale_after = timedelta(seconds=_config("LOST_RENDER_SECONDS"))
    counts = {"lost": 0, "stopped": 0, "requeued": 0}
    rendering = list(db.session.scalars(sa.select(Render).where(Render.state == RenderState.RENDERING)))
    db.session.rollback()
    for render in rendering:
        if _rendering_lost(render, now, stale_after):
            if render.cancel_requested_at is not None:
                mark_cancelled(render.id, "Cancelled; the worker stopped before confirming.")
            else:
                fail(render.id, "worker_lost", WORKER_LOST, requeue=True)
            counts["lost"] += 1
        elif render.cancel_requested_at is not None and now - render.cancel_requested_at > CANCEL_GRACE:
            try:
                send_stop_job_command(queue.connection(), render.rq_job_id)
                counts["stopped"] += 1
            except (InvalidJobOperation, NoSuchJobError, RedisError) as exc:
                log.warning("stop command failed render_id=%s error=%s", render.id, exc)
    queued = list(
        db.session.scalars(
            sa.select(Render).where(
                Render.state == RenderState.QUEUED, Render.queued_at < now - LOST_QUEUE_GRACE
            )
        )
    )
    db.session.rollback()
    for render in queued:
        status = _rq_status(render.rq_job_id)
        if status is None:
            job = db.session.get(VideoJob, render.job_id)
            try:
                render.rq_job_id = _enqueue(render, job, render.lesson.duration)
                db.session.commit()
                counts["requeued"] += 1
            except RedisError:
                db.session.rollback()
        elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            fail(render.id, "queue", f"The queue dropped this render ({status}).", requeue=False)
    _release_abandoned_rq_jobs()
    return counts


def _release_abandoned_rq_jobs() -> None:
    """Let RQ fail its own abandoned jobs now (it otherwise waits for a worker's 10-minute
    maintenance), which also frees their rate-limit slots."""
    from rq.rate_limit import RateLimitRegistry

    conn = queue.connection()
    StartedJobRegistry(queue.RENDER_QUEUE, connection=conn).cleanup()
    for registry in RateLimitRegistry.all(conn):
        registry.cleanup()
