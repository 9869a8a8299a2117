"""The busiest reads cost a fixed number of SQL statements, however many rows they show."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Course, Lesson, Render, RenderState, User, VideoJob, utcnow
from webapp.services import summary

from .helpers import bearer


def _add_jobs(app, course_name: str, jobs: int, lessons: int, renders: int) -> list[str]:
    """Rows straight into the database (no lesson folders needed to count statements)."""
    ids = []
    with app.app_context():
        course = db.session.scalars(sa.select(Course).where(Course.name == course_name)).one()
        requester = db.session.scalars(sa.select(User)).first()
        start = utcnow() - timedelta(hours=1)
        for j in range(jobs):
            job = VideoJob(course=course, video_id=uuid.uuid4().hex[:11], title=f"Job {j}")
            db.session.add(job)
            db.session.flush()
            for n in range(1, lessons + 1):
                lesson = Lesson(
                    job=job, path=f"{job.video_id}/lesson_{n}", number=n, title=f"L{n}", duration=1.0
                )
                db.session.add(lesson)
                db.session.flush()
                for attempt in range(1, renders + 1):
                    # Finished attempts, and the newest one still rendering.
                    state = RenderState.COMPLETED if attempt < renders else RenderState.RENDERING
                    db.session.add(
                        Render(
                            job_id=job.id,
                            lesson_id=lesson.id,
                            state=state,
                            output_file_name=f"v{attempt}.mp4",
                            output_path=f"videos/{lesson.path}/v{attempt}.mp4",
                            attempt=1,
                            frames_done=5,
                            frames_total=10,
                            requested_by_id=requester.id,
                            queued_at=start,
                            started_at=start,
                            finished_at=None if state == RenderState.RENDERING else start,
                            heartbeat_at=start,
                        )
                    )
            db.session.flush()
            summary.refresh(job)
            ids.append(str(job.id))
        db.session.commit()
    return ids


@contextlib.contextmanager
def counting(app):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _statements(app, client, path: str, **kwargs) -> int:
    """The fewest statements of three requests after a warm-up. Short caches (a user's courses,
    a status version: 1 to 5 s) may lapse between two requests on a loaded machine and add a read
    once; a cost that grows with the rows shown adds to every request."""
    client.get(path, **kwargs)  # warm: first-use queries (none expected, but not counted)
    counts = []
    for _ in range(3):
        with counting(app) as statements:
            response = client.get(path, **kwargs)
        assert response.status_code == 200, path
        counts.append(len(statements))
    return min(counts)


@pytest.fixture
def member(app, factory):
    user = factory.user("member@example.com", courses=["Small", "Large"])
    return bearer(factory.token(user.email))


@pytest.mark.parametrize("path", ["/jobs", "/api/jobs", "/api/jobs?perPage=100"])
def test_job_lists_cost_the_same_for_2_and_50_jobs(app, client, auth, member, path):
    _add_jobs(app, "Small", jobs=2, lessons=3, renders=2)
    auth.login("member@example.com")
    small = _statements(app, client, path)
    _add_jobs(app, "Large", jobs=50, lessons=3, renders=2)
    large = _statements(app, client, path)
    assert small == large, (small, large)
    assert large <= 8


@pytest.mark.parametrize("face", [{}, {"headers": {"HX-Request": "true"}}], ids=["json", "htmx fragment"])
def test_status_costs_the_same_for_2_and_50_lessons_and_renders(app, client, auth, member, face):
    auth.login("member@example.com")
    (small_job,) = _add_jobs(app, "Small", jobs=1, lessons=2, renders=2)
    (large_job,) = _add_jobs(app, "Large", jobs=1, lessons=50, renders=3)
    url = "/video-transform/{}/video-generation-status"
    small = _statements(app, client, url.format(small_job), **face)
    large = _statements(app, client, url.format(large_job), **face)
    assert small == large, (small, large)
    assert large <= 8


def test_job_page_costs_the_same_for_2_and_50_lessons(app, client, auth, member):
    auth.login("member@example.com")
    (small_job,) = _add_jobs(app, "Small", jobs=1, lessons=2, renders=2)
    (large_job,) = _add_jobs(app, "Large", jobs=1, lessons=50, renders=3)
    assert _statements(app, client, f"/jobs/{small_job}") == _statements(app, client, f"/jobs/{large_job}")
    assert _statements(app, client, f"/api/jobs/{small_job}", headers=member) == _statements(
        app, client, f"/api/jobs/{large_job}", headers=member
    )


@pytest.mark.parametrize(
    "path",
    ["/jobs?page={}", "/api/jobs?page={}", "/jobs?q=job&page={}", "/api/jobs?status=generating&page={}"],
)
def test_a_deep_page_of_the_job_list_costs_what_the_first_does(app, client, auth, member, path):
    """Page 6 of 130 jobs runs the statements page 1 runs (big data: page 2,000 of 100,000)."""
    _add_jobs(app, "Large", jobs=130, lessons=2, renders=1)
    auth.login("member@example.com")
    first = _statements(app, client, path.format(1))
    assert _statements(app, client, path.format(6)) == first
    assert first <= 8


def test_walking_the_pages_shows_every_job_once_newest_first(app, client, member):
    ids = _add_jobs(app, "Small", jobs=45, lessons=1, renders=1)
    seen = []
    for page in (1, 2, 3):
        body = client.get(f"/api/jobs?page={page}", headers=member).get_json()
        assert (body["page"], body["pages"], body["total"]) == (page, 3, 45)
        seen += [job["id"] for job in body["jobs"]]
    assert seen == ids[::-1]  # created one after the other: the newest first
    searched = client.get("/api/jobs?q=Job+4&perPage=5&page=2", headers=member).get_json()
    # "Job 4" and "Job 40" … "Job 44": 6 matches, the 6th (the oldest, "Job 4") alone on page 2.
    assert (searched["total"], [job["title"] for job in searched["jobs"]]) == (6, ["Job 4"])
