"""Sloppy or hostile JSON bodies get a 400 that says what is wrong: never a 500, and never a
silent guess at what the caller meant (a course id of 1.9 is not course 1)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import VideoJob, Webhook

from .helpers import bearer
from .test_api_generate import assert_error

DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's JSON parser can go


@pytest.fixture
def member(factory):
    user = factory.user("member@example.com", courses=["Course A", "Course B"])
    return bearer(factory.token(user.email))


@pytest.mark.parametrize(
    "path", ["/auth/token", "/api/jobs", "/api/webhooks", "/video-transform/generate-video"]
)
def test_json_nested_too_deeply_is_400(client, member, path):
    headers = {**member, "Content-Type": "application/json"}
    response = client.post(path, data=DEEP, headers=headers)
    assert_error(response, 400, "Bad Request", message_has="JSON")


@pytest.mark.parametrize("course", [1.9, 1.0, " 1 ", "1", True])
def test_a_course_id_that_is_not_a_json_integer_is_refused(app, client, member, course):
    job = client.post("/api/jobs", json={"video": "ggggggggggg", "courseId": course}, headers=member)
    assert_error(job, 400, "Bad Request", message_has="'courseId' must be a whole number")
    hook = client.post(
        "/api/webhooks", json={"url": "https://hooks.example.com/x", "courseId": course}, headers=member
    )
    assert_error(hook, 400, "Bad Request", message_has="'courseId' must be a whole number")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(VideoJob)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Webhook)) == 0


def test_a_whole_course_id_still_works_in_bodies_and_queries(app, client, member):
    with app.app_context():
        from webapp.services import jobs

        course = jobs.find_course("Course B").id
    created = client.post("/api/jobs", json={"video": "ggggggggggg", "courseId": course}, headers=member)
    assert created.status_code == 201, created.get_data(as_text=True)
    listed = client.get(f"/api/jobs?course={course}", headers=member).json
    assert [job["videoId"] for job in listed["jobs"]] == ["ggggggggggg"]
