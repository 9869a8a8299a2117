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


def test_a_token_answer_is_never_cached(client, factory):
    user = factory.user("cache@example.com")
    response = client.post("/auth/token", json={"email": user.email, "password": user.password})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"


def test_a_body_over_the_cap_is_413_naming_the_cap(client, member):
    big = {"video": "x" * (80 * 1024)}
    response = client.post("/api/jobs", json=big, headers=member)
    assert_error(response, 413, "Request Entity Too Large", message_has="larger than the 64 KiB allowed")


def test_an_upload_that_is_not_multipart_is_415_and_a_missing_field_says_how(app, client, member, factory):
    job = factory.job("Course A", lessons=0)
    path = f"/api/jobs/{job.id}/lessons"
    raw = client.post(path, data=b"PK\x03\x04", headers={**member, "Content-Type": "application/zip"})
    assert_error(raw, 415, "Unsupported Media Type", message_has="multipart/form-data")
    empty = client.post(path, data={}, content_type="multipart/form-data", headers=member)
    assert_error(empty, 400, "Bad Request", message_has="'package' is required: send the package")
    assert "files." not in empty.json["message"]


def test_a_script_on_a_browser_session_is_told_about_the_csrf_header(client, auth, factory):
    user = factory.user("script@example.com", courses=["Course A"])
    auth.login(user.email)
    response = client.post("/api/jobs", json={"video": "ggggggggggg"})
    assert_error(response, 400, "Bad Request", message_has="X-CSRFToken header")


def test_required_texts_say_so_in_the_api_document(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    assert schemas["CreateJobRequest"]["properties"]["video"]["minLength"] == 1
    assert schemas["GenerateVideoRequest"]["properties"]["lessonPath"]["minLength"] == 1


def test_a_status_not_modified_is_304_and_the_document_says_so(client, factory, member):
    job = factory.job("Course A", lessons=1)
    url = f"/video-transform/{job.id}/video-generation-status"
    first = client.get(url, headers=member)
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.get(url, headers={**member, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    paths = client.get("/openapi.json").json["paths"]
    status = paths["/video-transform/{job_id}/video-generation-status"]["get"]
    assert "304" in status["responses"] and "ETag" in status["responses"]["200"]["headers"]
    assert any(p["name"] == "If-None-Match" for p in status["parameters"])
    assert "304" in paths["/video-transform/{job_id}/videos/{video_path}"]["get"]["responses"]
