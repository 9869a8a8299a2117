"""Video jobs: creating them from a YouTube URL or id, listing, and rescanning lessons."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy.orm import aliased, selectinload

from .. import queue, status_channel
from ..extensions import db
from ..models import (
    ACTIVE_RENDER_STATES,
    Course,
    Lesson,
    ReleasedVideo,
    Render,
    RenderState,
    User,
    VideoGenerationStatus,
    VideoJob,
    utcnow,
)
from . import access, accounts, lessons, media, ownership, principals, storage, summary
from .errors import JobError
from .messages import cut, lesson_problem

VIDEO_ID = re.compile(r"\A[A-Za-z0-9_-]{11}\Z")  # \Z: "$" would let a final newline through
_YOUTUBE_HOSTS = {"youtube.com", "m.youtube.com", "music.youtube.com", "youtube-nocookie.com"}
_PATH_PREFIXES = ("embed", "shorts", "live", "v", "e")


class VideoTaken(JobError):
    """The video already has a job. `job` is that job when the caller may see it, else None."""

    status = 409

    def __init__(self, video_id: str, job: VideoJob | None):
        # Never names the other job's course: the caller may not know it exists.
        super().__init__(f"Video {video_id} already has a job; a video belongs to one job.")
        self.job = job


TITLE_MAX = 200
# Column sizes of Lesson: longer text from a lesson.json is cut, never refused by the database.
LESSON_TITLE_MAX = 300


def parse_video_id(value: str) -> str:
    """The 11-character YouTube video id in a bare id or a watch, youtu.be or embed URL."""
    text = (value or "").strip()
    if VIDEO_ID.match(text):
        return text
    candidate = text if "://" in text else f"https://{text}"
    try:
        url = urlparse(candidate)
        host = (url.hostname or "").lower().removeprefix("www.")
    except ValueError:  # e.g. "Invalid IPv6 URL": not a YouTube URL either
        url, host = None, ""
    found = None
    if host == "youtu.be":
        found = url.path.strip("/").split("/")[0]
    elif host in _YOUTUBE_HOSTS:
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["watch"]:
            found = (parse_qs(url.query).get("v") or [""])[0]
        elif len(parts) >= 2 and parts[0] in _PATH_PREFIXES:
            found = parts[1]
    if found and VIDEO_ID.match(found):
        return found
    raise JobError(
        "Enter a YouTube video id (11 characters, like henIVlCPVIY) "
        "or a YouTube watch, youtu.be or embed URL."
    )


def create_job(
    user: User | None, course: Course, video: str, title: str | None, lessons_root: Path
) -> VideoJob:
    """A new job for a course, with its lessons scanned from disk. user None: the CLI."""
    if user is not None and not access.can_use_course(user, course):
        raise JobError("You are not a member of that course.")
    video_id = parse_video_id(video)
    title = check_title(title) or f"Video {video_id}"
    _refuse_taken(user, video_id)
    taken_back = ownership.take_back(user, video_id)
    found = discover(video_id, lessons_root)
    if user is not None and not user.is_admin and not taken_back:
        ownership.refuse_unclaimed(found, course, video_id)
    job = VideoJob(course=course, video_id=video_id, title=title)
    db.session.add(job)
    try:
        db.session.flush()
    except sa.exc.IntegrityError:  # another request created a job for this video a moment ago
        db.session.rollback()
        _refuse_taken(user, video_id)
        raise
    _sync_lessons(job, lessons_root, found)
    db.session.commit()
    return job


def check_title(title: str | None) -> str:
    """A job title as saved: one line, trimmed, at most 200 characters ('' when empty)."""
    title = " ".join((title or "").split())
    if len(title) > TITLE_MAX:
        raise JobError(f"Titles have at most {TITLE_MAX} characters.")
    return title


def _refuse_taken(user: User | None, video_id: str) -> None:
    existing = db.session.scalars(sa.select(VideoJob).where(VideoJob.video_id == video_id)).one_or_none()
    if existing is not None:
        in_reach = user is None or access.get_job(existing.id, user) is not None
        raise VideoTaken(video_id, existing if in_reach else None)


def move_job(user: User | None, job: VideoJob, course: Course) -> VideoJob:
    """Give a job (its lessons, renders and videos) to another course. Admins only."""
    if user is not None and not user.is_admin:
        raise JobError("Only administrators can move a job to another course.")
    locked = summary.lock_job(job.id)
    locked.course = course
    db.session.commit()
    return locked


def rename_job(job: VideoJob, title: str | None) -> VideoJob:
    """Give the job a new title (at most 200 characters; empty means "Video <id>")."""
    locked = summary.lock_job(job.id)
    locked.title = check_title(title) or f"Video {locked.video_id}"
    db.session.commit()
    return locked


def delete_job(job: VideoJob, *, delete_videos: bool = False) -> None:
    """Remove a job with its lessons and renders. Queued renders leave the queue; a rendering
    one stops at its next cancel check (its row is gone). Video files stay unless asked."""
    locked = summary.lock_job(job.id)
    rows = list(db.session.scalars(sa.select(Render).where(Render.job_id == locked.id)))
    queued = [r.rq_job_id for r in rows if r.state == RenderState.QUEUED]
    finished = [r for r in rows if r.state == RenderState.COMPLETED] if delete_videos else []
    outputs = [key for r in finished for key in storage.render_keys(r)]
    db.session.execute(sa.delete(Render).where(Render.job_id == locked.id))
    job_id = locked.id
    _release(locked.video_id, locked.course_id)
    db.session.delete(locked)
    db.session.commit()
    status_channel.forget_status(job_id)  # polls of it find no kept document and answer 404
    for rq_job_id in queued:
        queue.cancel_job(rq_job_id)
    storage.delete_keys(outputs)


def _release(video_id: str, course_id: int) -> None:
    """The lesson folders stay on disk: keep them with the course the job was in."""
    released = db.session.get(ReleasedVideo, video_id)
    if released is None:
        db.session.add(ReleasedVideo(video_id=video_id, course_id=course_id))
    else:  # left over from an earlier delete
        released.course_id = course_id


@dataclass(frozen=True)
class ScanResult:
    added: int
    updated: int
    removed: int
    message: str | None


def discover(video_id: str, lessons_root: Path) -> lessons.Discovery:
    """The video's lessons where the store keeps them (LESSONS_ROOT, or a fetched copy)."""
    with media.lessons_root_for(video_id, lessons_root) as root:
        return lessons.discover(root, video_id, max_duration=current_app.config["LESSON_MAX_SECONDS"])


def _sync_lessons(job: VideoJob, lessons_root: Path, found: lessons.Discovery | None = None) -> ScanResult:
    found = found or discover(job.video_id, lessons_root)
    if not ownership.marked_for(found.course, job.course):
        found = lessons.Discovery([], ownership.MARKED_ELSEWHERE.format(job.video_id))
    existing = {lesson.path: lesson for lesson in job.lessons}
    added = updated = removed = 0
    for item in found.lessons:
        lesson = existing.pop(item.path, None)
        if lesson is None:
            job.lessons.append(
                Lesson(
                    path=item.path,
                    number=item.number,
                    title=cut(item.title, LESSON_TITLE_MAX),
                    duration=item.duration,
                    problem=lesson_problem(item.problem),
                )
            )
            added += 1
            continue
        values = (
            item.number,
            cut(item.title, LESSON_TITLE_MAX),
            item.duration,
            lesson_problem(item.problem),
            False,
        )
        if (lesson.number, lesson.title, lesson.duration, lesson.problem, lesson.missing) != values:
            lesson.number, lesson.title, lesson.duration, lesson.problem, lesson.missing = values
            updated += 1
    for lesson in existing.values():
        # Lessons with renders keep their history; the others simply go.
        if lesson.renders:
            if not lesson.missing:
                lesson.missing = True
                removed += 1
        else:
            job.lessons.remove(lesson)
            removed += 1
    db.session.flush()
    summary.refresh(job)
    return ScanResult(added, updated, removed, found.message)


def rescan_lessons(job: VideoJob, lessons_root: Path, replaced: list[str] = ()) -> ScanResult:
    """Bring the job's lessons in line with the folders on disk; `replaced`: the lessons whose
    files an upload has just replaced (their videos so far show the files before)."""
    summary.lock_job(job.id)
    result = _sync_lessons(job, lessons_root)
    for lesson in (lesson for lesson in job.lessons if lesson.path in replaced):
        lesson.files_changed_at = utcnow()
    db.session.commit()
    return result


# The jobs list's order; ix_video_jobs_listing holds it, so no page is sorted.
NEWEST_FIRST = (VideoJob.created_at.desc(), VideoJob.id.desc())


class JobPage(Pagination):
    """A page of jobs that costs about the same at page 1 and page 2,000: the page's ids and the
    count come from the listing index alone (no row, no stored summary is read to be skipped or
    counted), then the page's rows are read by id with their course and lessons."""

    def _query_items(self) -> list[VideoJob]:
        ids = self._query_args["ids"].order_by(*NEWEST_FIRST).limit(self.per_page).offset(self._query_offset)
        query = (
            sa.select(VideoJob)
            .where(VideoJob.id.in_(ids))
            # Each row shows its course and counts its lessons: loaded with the page, not per row.
            .options(selectinload(VideoJob.course), selectinload(VideoJob.lessons))
            .order_by(*NEWEST_FIRST)
        )
        return list(db.session.scalars(query))

    def _query_count(self) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(self._query_args["ids"].subquery()))


def list_jobs(
    user: User,
    *,
    course_id: int | None = None,
    status: str | None = None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> JobPage:
    """A page of the user's jobs, newest first, filtered by course, status and title or video id."""
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    # SQLite, which keeps no statistics, would pick the jobs by the course index and then sort
    # them all; `course_id + 0` leaves it the listing index, which holds them in order.
    course = VideoJob.course_id + 0 if sqlite else VideoJob.course_id
    ids = sa.select(VideoJob.id)
    if not user.is_admin:  # the courses access.scope_jobs allows
        # A list, not a subquery: each index entry is checked against it, where the subquery made
        # PostgreSQL join every entry skipped on the way to page 2,000 to course_members (2x slower).
        # Remembered a few seconds like every other check of who may see what (principals.py).
        ids = ids.where(course.in_(sorted(principals.course_ids(user))))
    if course_id:
        ids = ids.where(course == course_id)
    if status in {s.value for s in VideoGenerationStatus}:
        ids = ids.where(VideoJob.video_generation_status == VideoGenerationStatus(status))
    if search and search.strip():
        ids = ids.where(_matching(_video_id_in(search.strip()), sqlite))
    return JobPage(page=page, per_page=per_page, max_per_page=None, error_out=False, ids=ids)


def _video_id_in(text: str) -> str:
    """A pasted YouTube URL searches for its video id (New job takes such URLs too)."""
    if "/" not in text:
        return text
    try:
        return parse_video_id(text)
    except JobError:
        return text


def _matching(text: str, sqlite: bool) -> sa.ColumnElement[bool]:
    """Jobs whose title or video id holds `text`, ignoring case, wildcards taken literally.
    PostgreSQL: ILIKE, answered by the trigram index (migration 0007). SQLite: LIKE, which
    ignores ASCII case already (ILIKE, lower() on both sides, would take twice the time), tested
    on the listing index's entries (bench/README.md, "Big data": why not FTS5)."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    columns = (VideoJob.title, VideoJob.video_id)
    if sqlite:
        return sa.or_(*(column.like(pattern, escape="\\") for column in columns))
    return sa.or_(*(column.ilike(pattern, escape="\\") for column in columns))


@dataclass(frozen=True)
class LiveProgress:
    """What a job is rendering now, as the jobs list shows it."""

    queued: int
    rendering: int
    frames_done: int
    frames_total: int
    # Lessons with a video and nothing under way: the part of the job already done.
    ready: int = 0

    @property
    def percent(self) -> float | None:
        """How far the job is towards a video for every lesson it has or is rendering: lessons
        ready count whole, renders under way by their frames, queued ones not yet. None before
        anything reports its frames."""
        if not self.frames_total and not self.ready:
            return None
        under_way = self.rendering * min(self.frames_done, self.frames_total) / max(self.frames_total, 1)
        return round(100.0 * (self.ready + under_way) / (self.ready + self.rendering + self.queued), 1)


def live_progress(page_jobs: list[VideoJob]) -> dict[uuid.UUID, LiveProgress]:
    """Per generating job of a page, its queued and rendering renders and their frames: one query
    for the whole page (none when nothing on it generates), never one per row."""
    generating = {j.id: j for j in page_jobs if j.video_generation_status == VideoGenerationStatus.GENERATING}
    if not generating:
        return {}
    rendering = Render.state == RenderState.RENDERING
    earlier = aliased(Render)
    has_a_video = (
        sa.select(earlier.id)
        .where(earlier.lesson_id == Render.lesson_id, earlier.state == RenderState.COMPLETED)
        .exists()
    )
    query = (
        sa.select(
            Render.job_id,
            sa.func.count().filter(Render.state == RenderState.QUEUED),
            sa.func.count().filter(rendering),
            sa.func.coalesce(sa.func.sum(Render.frames_done).filter(rendering), 0),
            sa.func.coalesce(sa.func.sum(Render.frames_total).filter(rendering), 0),
            sa.func.count().filter(has_a_video),
        )
        .where(Render.job_id.in_(generating), Render.state.in_(ACTIVE_RENDER_STATES))
        .group_by(Render.job_id)
    )
    found = {}
    for job_id, queued, rendering_now, done, total, redone in db.session.execute(query):
        completed = (generating[job_id].video_generation_data or {}).get("completedLessons", 0)
        found[job_id] = LiveProgress(queued, rendering_now, done, total, max(0, completed - redone))
    return found


def find_course(name: str) -> Course | None:
    return accounts.course_named(name)
