"""The job's generation summary, derived from its Render rows, and the status view of it.

`video_generation_status` / `video_generation_data` are never edited piecemeal:
every render state change locks the job row, recomputes the whole summary from
the rows and writes it in the same transaction. Two workers finishing two lessons
at the same instant therefore both appear; nothing is read-modify-written from a
stale copy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..extensions import db
from ..models import (
    ACTIVE_RENDER_STATES,
    ErrorKind,
    Lesson,
    Render,
    RenderState,
    VideoGenerationStatus,
    VideoJob,
    utcnow,
)
from . import estimates

FINISHED_STATES = (RenderState.COMPLETED, RenderState.FAILED)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, as the API shows every timestamp."""
    if moment is None:
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def lock_job(job_id: uuid.UUID) -> VideoJob:
    """Lock the job row until commit and return it fresh from the database.

    PostgreSQL: SELECT … FOR UPDATE. SQLite has no row locks and ignores FOR
    UPDATE; a write to the row first takes SQLite's database write lock, which
    serialises the recomputation the same way.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(sa.update(VideoJob).where(VideoJob.id == job_id).values(updated_at=utcnow()))
    query = sa.select(VideoJob).where(VideoJob.id == job_id).with_for_update()
    return db.session.scalars(query.execution_options(populate_existing=True)).one()


def _latest_finished(renders: list[Render]) -> dict[int, Render]:
    """Per lesson, its latest finished (completed or failed) attempt.

    Cancelled attempts generate nothing and attempts still running have no
    result yet, so neither replaces a lesson's last finished result.
    """
    latest: dict[int, Render] = {}
    for render in renders:
        if render.state in FINISHED_STATES:
            current = latest.get(render.lesson_id)
            if current is None or (render.finished_at, render.attempt) >= (
                current.finished_at,
                current.attempt,
            ):
                latest[render.lesson_id] = render
    return latest


def _with_a_video(renders: list[Render]) -> set[int]:
    """The lessons whose latest finished attempt made their video: completedLessons counts
    them, and "Generate the other N" renders the others."""
    latest = _latest_finished(renders)
    return {lesson_id for lesson_id, r in latest.items() if r.state == RenderState.COMPLETED}


def lessons_with_a_video(job: VideoJob) -> set[int]:
    return _with_a_video(list(db.session.scalars(sa.select(Render).where(Render.job_id == job.id))))


def compute(job: VideoJob) -> tuple[VideoGenerationStatus, dict]:
    """The summary rules, applied to the job's current rows.

    generating while any render is queued or rendering; else failed if a lesson's latest
    finished attempt failed; else completed if one completed; else not_started.
    """
    renders = list(
        db.session.scalars(
            sa.select(Render)
            .where(Render.job_id == job.id)
            .order_by(Render.queued_at, Render.attempt)
            .execution_options(populate_existing=True)
        )
    )
    lessons = list(db.session.scalars(sa.select(Lesson).where(Lesson.job_id == job.id)))
    paths = {lesson.id: lesson.path for lesson in lessons}
    missing = {lesson.id: lesson.missing for lesson in lessons}
    latest = _latest_finished(renders)

    if any(r.state in ACTIVE_RENDER_STATES for r in renders):
        status = VideoGenerationStatus.GENERATING
    elif any(r.state == RenderState.FAILED for r in latest.values()):
        status = VideoGenerationStatus.FAILED
    elif any(r.state == RenderState.COMPLETED for r in latest.values()):
        status = VideoGenerationStatus.COMPLETED
    else:
        status = VideoGenerationStatus.NOT_STARTED

    started = [r for r in renders if r.started_at is not None]
    current = max(started, key=lambda r: r.started_at) if started else None
    finished = sorted(
        (r for r in renders if r.state in FINISHED_STATES), key=lambda r: (r.finished_at, r.attempt)
    )
    videos = []
    for render in finished:
        entry = {
            "lessonPath": paths[render.lesson_id],
            "outputPath": render.output_path,
            "generatedAt": iso(render.finished_at),
            "success": render.state == RenderState.COMPLETED,
        }
        if render.state == RenderState.FAILED:
            entry["error"] = render.error_message or "failed"
        for kind, key in (("captions", "captionsPath"), ("poster", "posterPath")):
            if render.state == RenderState.COMPLETED and render.sidecar_path(kind):
                entry[key] = render.sidecar_path(kind)
        videos.append(entry)
    data = {
        "currentLesson": paths[current.lesson_id] if current else None,
        "generatedVideos": videos,
        "totalLessons": sum(1 for lesson in lessons if not lesson.missing),
        # Of those lessons only: a lesson whose folder went keeps its history, not its count.
        "completedLessons": sum(1 for lesson_id in _with_a_video(renders) if not missing[lesson_id]),
    }
    return status, data


CHANGED = "lvt_changed_jobs"


def changed(job_id: uuid.UUID) -> None:
    """Note that this transaction changes the job's status document (events.py publishes it
    once the transaction commits)."""
    db.session.info.setdefault(CHANGED, set()).add(job_id)


def refresh(job: VideoJob) -> None:
    """Recompute and store the job's summary (the caller holds the job lock and commits)."""
    status, data = compute(job)
    job.video_generation_status = status
    job.video_generation_data = data
    job.updated_at = utcnow()
    changed(job.id)


@dataclass(frozen=True)
class ActiveRender:
    render: Render
    lesson_path: str
    eta_seconds: int | None
    queue_place: int | None = None  # queued: 1 = next to start
    wait_seconds: int | None = None  # queued: about how long until it starts
    lesson_title: str = ""  # for the page (the API names the lesson by its path)

    def as_json(self) -> dict:
        r = self.render
        return {
            "renderId": str(r.id),
            "lessonPath": self.lesson_path,
            "state": r.state.value,
            "framesDone": r.frames_done,
            "framesTotal": r.frames_total,
            "percent": r.percent,
            "etaSeconds": self.eta_seconds,
            "queuePosition": self.queue_place,
            "waitSeconds": self.wait_seconds,
        }


@dataclass(frozen=True)
class LessonView:
    lesson: Lesson
    attempts: list[Render]  # oldest first

    @property
    def latest(self) -> Render | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def active(self) -> Render | None:
        return next((r for r in reversed(self.attempts) if r.state in ACTIVE_RENDER_STATES), None)

    @property
    def video(self) -> Render | None:
        """The newest completed attempt: the video to play."""
        return next((r for r in reversed(self.attempts) if r.state == RenderState.COMPLETED), None)

    @property
    def video_of_old_files(self) -> bool:
        """An upload has replaced the lesson's files since its video was asked for, and no
        render of the new ones is under way."""
        video, changed = self.video, self.lesson.files_changed_at
        return video is not None and changed is not None and changed > video.queued_at and not self.active

    @property
    def can_generate(self) -> bool:
        """Whether a Generate (or Retry) button makes sense: the lesson is on disk, its
        lesson.json is not known to be broken (fix it and rescan), and nothing runs."""
        return not self.lesson.missing and not self.lesson.problem and self.active is None

    @property
    def wants_video(self) -> bool:
        """What "Generate the other N" renders (renders.generate_all, missing_only): a lesson that
        can be generated whose latest finished attempt made no video (none yet, failed, cancelled)."""
        return self.can_generate and self.lesson.id not in _with_a_video(self.attempts)

    @property
    def latest_error(self) -> str | None:
        """Why the latest attempt ended without a video; None when it repeats the lesson's
        own lesson.json problem, which the page already shows with the lesson."""
        latest = self.latest
        if latest is None or latest.state not in (RenderState.FAILED, RenderState.CANCELLED):
            return None
        if self.lesson.problem and latest.error_kind == ErrorKind.MANIFEST:
            return None
        return latest.error_message or None


@dataclass(frozen=True)
class Status:
    """Everything the status JSON and the status fragment show; one source for both."""

    job: VideoJob
    status: VideoGenerationStatus
    data: dict
    active: list[ActiveRender]
    lessons: list[LessonView]
    updated_at: datetime

    @property
    def is_active(self) -> bool:
        return self.status == VideoGenerationStatus.GENERATING or bool(self.active)

    @property
    def rendering_lessons(self) -> list[str]:
        """The lessons rendering right now (the summary's currentLesson stays after a render
        ends; the page says "rendering" only while it is true)."""
        return [a.lesson_path for a in self.active if a.render.state == RenderState.RENDERING]

    @property
    def queued_count(self) -> int:
        return sum(1 for a in self.active if a.render.state == RenderState.QUEUED)

    @property
    def ended_lessons(self) -> list[tuple[str, list[str]]]:
        """The lessons whose latest attempt failed, then those cancelled, by that word: the
        summary names them (a job that reads "completed" may have a cancelled one)."""
        ended: dict[RenderState, list[str]] = {RenderState.FAILED: [], RenderState.CANCELLED: []}
        for view in self.lessons:
            if view.latest is not None and view.latest.state in ended:
                ended[view.latest.state].append(view.lesson.path)
        return [(state.value, paths) for state, paths in ended.items() if paths]

    def as_json(self) -> dict:
        return {
            "videoJobId": str(self.job.id),
            "videoGenerationStatus": self.status.value,
            "currentLesson": self.data.get("currentLesson"),
            "generatedVideos": self.data.get("generatedVideos", []),
            "totalLessons": self.data.get("totalLessons", 0),
            "completedLessons": self.data.get("completedLessons", 0),
            "activeRenders": [a.as_json() for a in self.active],
            "updatedAt": iso(self.updated_at),
        }


def status(job: VideoJob) -> Status:
    """The job's generation status: the stored summary, live progress, and each lesson's attempts."""
    if job.video_generation_data is None:  # rows written before summaries existed
        current_status, data = compute(job)
    else:
        current_status, data = job.video_generation_status, job.video_generation_data
    lessons = list(
        db.session.scalars(
            sa.select(Lesson).where(Lesson.job_id == job.id).order_by(Lesson.number, Lesson.path)
        )
    )
    renders = list(
        db.session.scalars(
            sa.select(Render).where(Render.job_id == job.id).order_by(Render.queued_at, Render.attempt)
        )
    )
    attempts: dict[int, list[Render]] = {lesson.id: [] for lesson in lessons}
    for render in renders:
        attempts[render.lesson_id].append(render)
    paths = {lesson.id: lesson.path for lesson in lessons}
    titles = {lesson.id: lesson.title for lesson in lessons}
    now = utcnow()
    running = [r for r in renders if r.state in ACTIVE_RENDER_STATES]
    queued = [r for r in running if r.state == RenderState.QUEUED]
    # Past renders' speeds only for a queued attempt or one without a rate of its own yet.
    speeds = (
        estimates.past_speeds()
        if queued or any(r.state == RenderState.RENDERING and not r.frames_per_second for r in running)
        else []
    )
    places = estimates.queue_places(queued, speeds)
    active = [
        ActiveRender(
            r,
            paths[r.lesson_id],
            estimates.eta_seconds(r, now, estimates.typical_speed(r.frames_total or 0, speeds)),
            *places.get(r.id, (None, None)),
            lesson_title=titles[r.lesson_id],
        )
        for r in running
    ]
    moments = [job.updated_at] + [a.render.heartbeat_at for a in active if a.render.heartbeat_at]
    views = [LessonView(lesson, attempts[lesson.id]) for lesson in lessons]
    return Status(job, current_status, data, active, views, max(moments))
