"""Demo data for a fresh machine: a course, an admin, a token and a job with real lessons (the
last one shows every lesson.json key: clips, motion, transitions, captions, a music bed).

Idempotent: the credentials are kept in the instance folder (readable by its
owner only) and reused while they still work, so re-running `flask demo` (as
`make run` does) prints the same login instead of piling up users and tokens.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from ..extensions import db
from ..models import Role, VideoJob
from ..render.sample import write_sample_lesson, write_showcase_lesson
from . import accounts, jobs, tokens

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


def write_demo_lessons(lessons_root: Path) -> None:
    """Generate the demo lesson folders (images, narration, Thai text) unless present."""
    for number, (segments, seconds) in enumerate(DEMO_LESSONS, start=1):
        folder = lessons_root / DEMO_VIDEO_ID / f"lesson_{number}"
        if (folder / "lesson.json").is_file():
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
    showcase = lessons_root / DEMO_VIDEO_ID / f"lesson_{SHOWCASE_LESSON}"
    if not (showcase / "lesson.json").is_file():
        write_showcase_lesson(showcase, width=1280, height=720)


def ensure_demo(app: Flask) -> dict:
    """Create or reuse the demo data; return {jobId, email, password, token}."""
    lessons_root = Path(app.config["LESSONS_ROOT"])
    write_demo_lessons(lessons_root)
    creds = _load_credentials(app)

    user = accounts.find_user(DEMO_EMAIL)
    password = creds.get("password")
    if user is None or not password or not user.check_password(password):
        password = secrets.token_urlsafe(12)
    user = accounts.save_user(DEMO_EMAIL, password, Role.ADMIN, [DEMO_COURSE])

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
