"""Course scope: a job outside the caller's courses is a 404 everywhere; admins see all."""

import re

import pytest

from .helpers import bearer, csrf_token

# Every route that names a job or a render: (method, path template).
JOB_ROUTES = [
    ("GET", "/jobs/{job}"),
    ("POST", "/jobs/{job}/rescan"),
    ("POST", "/jobs/{job}/generate"),
    ("POST", "/jobs/{job}/generate-all"),
    ("POST", "/jobs/{job}/renders/{render}/cancel"),
    ("POST", "/jobs/{job}/renders/{render}/retry"),
    ("GET", "/video-transform/{job}/video-generation-status"),
    ("GET", "/video-transform/{job}/videos/{lesson}/final_video.mp4"),
    ("GET", "/api/jobs/{job}"),
    ("POST", "/api/jobs/{job}/generate-all"),
    ("GET", "/api/renders/{render}"),
    ("POST", "/api/renders/{render}/cancel"),
    ("POST", "/api/renders/{render}/retry"),
]


@pytest.fixture
def two_courses(factory):
    alice = factory.user("alice@example.com", courses=["Course A"])
    bob = factory.user("bob@example.com", courses=["Course B"])
    admin = factory.user("root@example.com", role="admin")
    job_a = factory.job("Course A", title="Alpha lessons", lessons=1)
    job_b = factory.job("Course B", title="Bravo lessons", lessons=1)
    for job in (job_a, job_b):  # a finished render in each job, with its video on disk
        job.render = finished_render(factory.app, job)
    return alice, bob, admin, job_a, job_b


def finished_render(app, job) -> str:
    """A completed render of the job's first lesson, made through the services."""
    import uuid
    from pathlib import Path

    from webapp.extensions import db
    from webapp.models import VideoJob
    from webapp.services import lifecycle, renders

    with app.app_context():
        row = renders.generate(None, db.session.get(VideoJob, uuid.UUID(job.id)), job.lessons[0])
        lifecycle.begin(row.rq_job_id)
        output = Path(app.config["VIDEOS_ROOT"]) / job.lessons[0] / "final_video.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(b"not really a video")
        lifecycle.complete(row.id, frames=5, duration=0.5, size_bytes=18)
        return str(row.id)


def same_page(one, other) -> bool:
    """Equal answers, but for the CSRF tokens in forms (they carry a timestamp)."""

    def masked(response):
        return re.sub(r'name="csrf_token" value="[^"]+"', "", response.get_data(as_text=True))

    return masked(one) == masked(other)


def fill(path: str, job) -> str:
    return path.format(job=job.id, render=job.render, lesson=job.lessons[0])


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
def test_other_courses_job_is_404_in_the_browser(client, auth, two_courses, method, path):
    alice, _, _, job_a, job_b = two_courses
    auth.login(alice.email)
    data = (
        {"csrf_token": csrf_token(client, "/jobs"), "lessonPath": job_b.lessons[0]}
        if method == "POST"
        else None
    )
    theirs = client.open(fill(path, job_b), method=method, data=data)
    assert theirs.status_code == 404
    assert "Bravo" not in theirs.get_data(as_text=True)
    if data:
        data["lessonPath"] = job_a.lessons[0]
    ours = client.open(fill(path, job_a), method=method, data=data)
    assert ours.status_code in (200, 202, 302, 409)


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
def test_other_courses_job_is_404_with_a_token(client, factory, two_courses, method, path):
    alice, _, _, _, job_b = two_courses
    token = factory.token(alice.email)
    theirs = client.open(fill(path, job_b), method=method, headers=bearer(token))
    assert theirs.status_code == 404
    nobody = "00000000-0000-0000-0000-000000000000"
    unknown = client.open(
        path.format(job=nobody, render=nobody, lesson=job_b.lessons[0]), method=method, headers=bearer(token)
    )
    assert unknown.status_code == 404
    assert same_page(theirs, unknown)  # no hint that the job or render exists
    junk = client.open(
        path.format(job="not-a-uuid", render="x", lesson="y"), method=method, headers=bearer(token)
    )
    assert junk.status_code == 404


def test_admin_sees_every_course(client, auth, two_courses):
    _, _, admin, _, job_b = two_courses
    auth.login(admin.email)
    html = client.get("/jobs").get_data(as_text=True)
    assert "Alpha lessons" in html and "Bravo lessons" in html
    assert client.get(f"/jobs/{job_b.id}").status_code == 200


def test_jobs_list_shows_only_the_callers_courses(client, auth, two_courses):
    alice, _, _, _, _ = two_courses
    auth.login(alice.email)
    html = client.get("/jobs").get_data(as_text=True)
    assert "Alpha lessons" in html and "Bravo lessons" not in html
    assert "Course B" not in html  # not even as a filter choice


def test_filtering_by_another_course_shows_nothing(app, client, auth, two_courses):
    from webapp.services import jobs

    alice, _, _, _, _ = two_courses
    with app.app_context():
        other_id = jobs.find_course("Course B").id
    auth.login(alice.email)
    html = client.get(f"/jobs?course={other_id}").get_data(as_text=True)
    assert "Bravo lessons" not in html and "No jobs" in html


def test_staff_cannot_create_a_job_in_another_course(app, client, auth, two_courses):
    from webapp.services import jobs

    alice, _, _, _, _ = two_courses
    with app.app_context():
        other_id = jobs.find_course("Course B").id
    auth.login(alice.email)
    response = client.post(
        "/jobs", data={"course": other_id, "video": "dQw4w9WgXcQ", "csrf_token": csrf_token(client, "/jobs")}
    )
    assert response.status_code == 422
    assert "Choose one of your courses" in response.get_data(as_text=True)
