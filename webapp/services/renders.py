"""What a caller may ask of renders: generate (one lesson or all), retry, cancel, and look
them up. Requests are checked here; the state changes they cause live in lifecycle.py, the
recovery from lost workers in recovery.py, and every RQ call in webapp/queue.py.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from ..extensions import db
from ..models import ACTIVE_RENDER_STATES, SIDECAR_KINDS, Lesson, Render, RenderState, User, VideoJob
from ..render import ManifestError, load_manifest
from . import attempts, lifecycle, media, summary
from .access import parse_uuid, scope_jobs
from .errors import (
    BrokenLesson,
    Conflict,
    QueueUnavailable,
    RenderRequestError,
    TooManyRenders,
    Unprocessable,
)
from .messages import LESSON_PROBLEM_MAX, cut, without_server_paths
from .storage import video_file

__all__ = [
    "Conflict",
    "GenerateAll",
    "QueueUnavailable",
    "RenderRequestError",
    "TooManyRenders",
    "Unprocessable",
    "cancel",
    "check_output_file_name",
    "completed_render_for",
    "generate",
    "generate_all",
    "get_render",
    "retry",
    "video_file",
]

DEFAULT_OUTPUT_FILE = "final_video.mp4"
# Letters, digits, space, dot, hyphen, underscore: nothing that means anything to HTML,
# a shell or a path. The name shows up in pages, file names and download headers.
OUTPUT_FILE_NAME = re.compile(r"[A-Za-z0-9 ._-]{1,96}\.mp4", re.IGNORECASE)


def _config(name: str):
    return current_app.config[name]


def check_output_file_name(name: str) -> str:
    """A plain *.mp4 file name of letters, digits, space, '.', '-', '_': no leading dot or
    space, no '..', at most 100 characters; not "*.chapters.mp4", whose captions file
    ("<stem>.vtt") would be the chapters file of the video without ".chapters"."""
    if (name or "").lower().endswith(".chapters.mp4"):
        raise Unprocessable(
            "outputFileName may not end in '.chapters.mp4': its captions file would take the name of "
            "the chapters file of another video. Choose another name."
        )
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


def get_render(render_id: str | uuid.UUID, user: User) -> Render | None:
    """The render if it exists and its job is in the user's reach."""
    render_uuid = parse_uuid(render_id)
    if render_uuid is None:
        return None
    query = scope_jobs(sa.select(Render).join(VideoJob, VideoJob.id == Render.job_id), user)
    return db.session.scalars(query.where(Render.id == render_uuid)).one_or_none()


def completed_render_for(job: VideoJob, output_path: str | list[str]) -> Render | None:
    """The job's newest completed render with that output path (or one of those)."""
    paths = [output_path] if isinstance(output_path, str) else output_path
    return db.session.scalars(
        sa.select(Render)
        .where(Render.job_id == job.id, Render.output_path.in_(paths), Render.state == RenderState.COMPLETED)
        .order_by(Render.finished_at.desc())
    ).first()


# The video beside a sidecar "<stem>.jpg" is "<stem>.mp4" in whatever case outputFileName gave.
_MP4_SPELLINGS = [f".{m}{p}4" for m in "mM" for p in "pP"]


def sidecar_for(job: VideoJob, path: str) -> tuple[Render, str] | None:
    """(the completed render, the sidecar's kind) for "videos/<lessonPath>/<file>" when that file
    is a poster, chapters or captions file the render wrote beside its video; else None."""
    folder, _, name = path.rpartition("/")
    for suffix in (".chapters.vtt", ".vtt", ".jpg"):
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = f"{folder}/{name.removesuffix(suffix)}"
            render = completed_render_for(job, [stem + ext for ext in _MP4_SPELLINGS])
            for kind in SIDECAR_KINDS:
                if render is not None and render.sidecar_path(kind) == path:
                    return render, kind
    return None


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
        with media.lesson_copy(lesson.path) as folder:  # the store's own folder, or a fetched copy
            manifest = load_manifest(folder, max_duration=_config("LESSON_MAX_SECONDS"))
    except ManifestError as exc:
        problem = without_server_paths(str(exc))
        lesson.problem = cut(problem, LESSON_PROBLEM_MAX)
        db.session.commit()
        raise BrokenLesson(f"{lesson.path}/lesson.json is not valid: {problem}") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise Unprocessable(f"The lesson folder of {lesson.path} cannot be read: {reason}") from exc
    except ValueError as exc:
        raise Unprocessable(f"The lesson folder of {lesson.path} is outside the lessons folder.") from exc
    lesson.duration = round(manifest.duration, 3)  # RQ's time limit for the render follows it
    lesson.problem = None  # fixed since the last scan
    return manifest


def _check_limits(user: User | None, lesson: Lesson, file_name: str) -> None:
    """No one user floods the queue, and no lesson fills the disk with copies under new names."""
    names = set(
        db.session.scalars(sa.select(Render.output_file_name).where(Render.lesson_id == lesson.id).distinct())
    )
    twin = next(
        (name for name in sorted(names) if name != file_name and name.lower() == file_name.lower()), None
    )
    if twin is not None:
        raise Unprocessable(
            f"{lesson.path} already has a video named {twin}: use that name, or one that differs by more "
            "than letter case (the two would share their captions, chapters and poster files)."
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
    existing = attempts.active_render(lesson.id, file_name)
    if existing is not None:
        return existing
    _check_limits(user, lesson, file_name)
    manifest = _checked_manifest(lesson)
    return attempts.queue_attempt(job.id, lesson, file_name, user, manifest.total_frames)


@dataclass(frozen=True)
class GenerateAll:
    renders: list[Render]
    skipped: list[tuple[str, str]]  # (lesson path, why)
    broken: list[str] = field(default_factory=list)  # skipped: their lesson.json is not valid


def generate_all(user: User | None, job: VideoJob, missing_only: bool = False) -> GenerateAll:
    """Queue every lesson of the job (with `missing_only`, those without a video: never made, or
    failed or cancelled last); lessons already queued or running are left as they are, and a
    broken lesson is skipped (with its reason) rather than stopping the others."""
    lessons = [lesson for lesson in job.lessons if not lesson.missing]
    if not lessons:
        raise Unprocessable("This job has no lessons to generate.")
    if missing_only:
        done = summary.lessons_with_a_video(job)
        lessons = [lesson for lesson in lessons if lesson.id not in done]
        if not lessons:
            raise Unprocessable("Every lesson of this job has its video already.")
    renders, skipped, broken = [], [], []
    for index, lesson in enumerate(lessons):
        try:
            renders.append(generate(user, job, lesson.path))
        except Unprocessable as exc:
            skipped.append((lesson.path, exc.message))
            if isinstance(exc, BrokenLesson):
                broken.append(lesson.path)
        except TooManyRenders as exc:
            if not renders:
                raise
            skipped.extend((later.path, exc.message) for later in lessons[index:])
            break
    return GenerateAll(renders, skipped, broken)


def retry(user: User | None, render: Render) -> Render:
    """A new attempt of a failed or cancelled render."""
    if render.state not in (RenderState.FAILED, RenderState.CANCELLED):
        raise Conflict(f"Only failed or cancelled renders can be retried; this one is {render.state}.")
    job = db.session.get(VideoJob, render.job_id)
    return generate(user, job, render.lesson.path, render.output_file_name)


def cancel(render: Render) -> Render:
    """Cancel a queued render at once; ask a running one to stop (it stops within seconds)."""
    if lifecycle.cancel_queued(render) or lifecycle.request_stop(render):
        return db.session.get(Render, render.id)
    state = db.session.get(Render, render.id, populate_existing=True).state
    raise Conflict(f"This render has already finished ({state}); there is nothing to cancel.")
