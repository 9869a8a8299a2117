"""Demo data for a fresh machine: a course, an admin, a token and a job with real lessons (the
last one shows every lesson.json key: clips, motion, transitions, captions, a music bed).
The lessons go where the store keeps lessons: LESSONS_ROOT, or the bucket of STORAGE_URL=s3://….

Idempotent: the credentials are kept in the instance folder (readable by its
owner only) and reused while they still work, so re-running `flask demo` (as
`make run` does) prints the same login instead of piling up users and tokens.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from ..extensions import db
from ..models import Render, Role, VideoJob
from ..render.sample import write_sample_lesson, write_showcase_lesson
from ..storage import Store
from ..storage import lessons as store_lessons
from . import accounts, jobs, renders, storage, tokens, user_admin

DEMO_COURSE = "Demo course"
DEMO_EMAIL = "admin@example.com"
DEMO_VIDEO_ID = "henIVlCPVIY"
DEMO_TITLE = "Thai greetings (demo)"
# (segments, seconds per segment) of each demo lesson: short, quick to render; the last one
# is long enough (30 s) to watch its progress bar move.
DEMO_LESSONS = ((3, 2.5), (3, 3.0), (6, 5.0))
SHOWCASE_LESSON = len(DEMO_LESSONS) + 1  # lesson_4: every lesson.json key, 15 s


def _credentials_file(app: Flask) -> Path:
    return Path(app.instance_path) / "demo-credentials.json"


def _load_credentials(app: Flask) -> dict:
    try:
        return json.loads(_credentials_file(app).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_credentials(app: Flask, creds: dict) -> None:
    path = _credentials_file(app)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)


def write_demo_lessons(lessons_root: Path, present=lambda number: False) -> list[int]:
    """Generate the demo lesson folders (images, narration, Thai text) unless present (on disk,
    or as `present(number)` says); the numbers of those written."""
    written = []
    for number, (segments, seconds) in enumerate(DEMO_LESSONS, start=1):
        folder = lessons_root / DEMO_VIDEO_ID / f"lesson_{number}"
        if (folder / "lesson.json").is_file() or present(number):
            continue
        write_sample_lesson(
            folder,
            segments=segments,
            seconds=seconds,
            width=1280,
            height=720,
            fps=30,
            title=f"Lesson {number}: สวัสดี — greetings, part {number}",
        )
        written.append(number)
    showcase = lessons_root / DEMO_VIDEO_ID / f"lesson_{SHOWCASE_LESSON}"
    if not (showcase / "lesson.json").is_file() and not present(SHOWCASE_LESSON):
        write_showcase_lesson(showcase, width=1280, height=720)
        written.append(SHOWCASE_LESSON)
    return written


def put_demo_lessons(store: Store) -> None:
    """The demo lessons in an object store: those missing there are written in a local temporary
    folder, then each is put in the store whole (a version and its pointer)."""

    def present(number: int) -> bool:
        entries = store_lessons.lesson_entries(store, f"{DEMO_VIDEO_ID}/lesson_{number}")
        return any(name == "lesson.json" for name, _info in entries)

    with tempfile.TemporaryDirectory(prefix="demo-lessons-") as folder:
        written = write_demo_lessons(Path(folder), present)
        video_dir = Path(folder) / DEMO_VIDEO_ID
        for path in sorted(video_dir.rglob("*")):  # files the lessons share (../source.mp4) first
            relative = path.relative_to(video_dir).as_posix()
            if path.is_file() and not store_lessons.LESSON_DIR.match(relative.split("/")[0]):
                store.upload(path, f"lessons/{DEMO_VIDEO_ID}/{relative}")
        for number in written:
            path = f"{DEMO_VIDEO_ID}/lesson_{number}"
            store_lessons.replace(store, path, video_dir / f"lesson_{number}")


def ensure_demo(app: Flask) -> dict:
    """Create or reuse the demo data; return {jobId, email, password, token}."""
    lessons_root = Path(app.config["LESSONS_ROOT"])
    if storage.is_local():
        write_demo_lessons(lessons_root)
    else:
        put_demo_lessons(storage.store())
    creds = _load_credentials(app)

    user = accounts.find_user(DEMO_EMAIL)
    password = creds.get("password")
    if user is None or not password or not user.check_password(password):
        password = secrets.token_urlsafe(12)
    user = user_admin.save_user(DEMO_EMAIL, password, Role.ADMIN, [DEMO_COURSE])

    token = creds.get("token")
    if not token or tokens.user_for_bearer(token, app.config["SECRET_KEY"], 0) != user:
        _, token = tokens.create_api_token(user, "demo")

    course = jobs.find_course(DEMO_COURSE)
    job = db.session.scalars(
        sa.select(VideoJob).where(VideoJob.course_id == course.id, VideoJob.video_id == DEMO_VIDEO_ID)
    ).first()
    if job is None:
        job = jobs.create_job(None, course, DEMO_VIDEO_ID, DEMO_TITLE, lessons_root)
    elif len(job.lessons) != SHOWCASE_LESSON:
        jobs.rescan_lessons(job, lessons_root)

    result = {"jobId": str(job.id), "email": user.email, "password": password, "token": token}
    _save_credentials(app, {"password": password, "token": token})
    return result


def queue_first_video(job_id: str) -> bool:
    """Queue the demo job's first lesson when nothing was ever rendered for it, so whoever opens
    the job finds a video on its way (a worker renders it in seconds). True when queued."""
    job = db.session.get(VideoJob, uuid.UUID(job_id))
    if job is None or not job.lessons:
        return False
    if db.session.scalar(sa.select(Render.id).where(Render.job_id == job.id).limit(1)) is not None:
        return False
    first = min(job.lessons, key=lambda lesson: lesson.number)
    renders.generate(None, job, first.path)
    return True
