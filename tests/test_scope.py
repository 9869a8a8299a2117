"""Course scope: a job outside the caller's courses is a 404 everywhere; admins see all."""

import pytest

from .helpers import bearer, csrf_token

# Every route that names a job: (method, path template).
JOB_ROUTES = [
    ("GET", "/jobs/{job}"),
    ("POST", "/jobs/{job}/rescan"),
    ("GET", "/video-transform/{job}/video-generation-status"),
]


@pytest.fixture
def two_courses(factory):
    alice = factory.user("alice@example.com", courses=["Course A"])
    bob = factory.user("bob@example.com", courses=["Course B"])
    admin = factory.user("root@example.com", role="admin")
    job_a = factory.job("Course A", title="Alpha lessons", lessons=1)
    job_b = factory.job("Course B", title="Bravo lessons", lessons=1)
    return alice, bob, admin, job_a, job_b


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
def test_other_courses_job_is_404_in_the_browser(client, auth, two_courses, method, path):
    alice, _, _, job_a, job_b = two_courses
    auth.login(alice.email)
    data = {"csrf_token": csrf_token(client, "/jobs")} if method == "POST" else None
    theirs = client.open(path.format(job=job_b.id), method=method, data=data)
    assert theirs.status_code == 404
    assert "Bravo" not in theirs.get_data(as_text=True)
    ours = client.open(path.format(job=job_a.id), method=method, data=data)
    assert ours.status_code in (200, 302)


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
def test_other_courses_job_is_404_with_a_token(client, factory, two_courses, method, path):
    alice, _, _, _, job_b = two_courses
    token = factory.token(alice.email)
    theirs = client.open(path.format(job=job_b.id), method=method, headers=bearer(token))
    assert theirs.status_code == 404
    unknown = client.open(
        path.format(job="00000000-0000-0000-0000-000000000000"), method=method, headers=bearer(token)
    )
    assert unknown.status_code == 404
    assert theirs.get_data() == unknown.get_data()  # no hint that the job exists
    assert client.open(path.format(job="not-a-uuid"), method=method, headers=bearer(token)).status_code == 404


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
