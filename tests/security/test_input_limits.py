"""Inputs have limits, each answered with a clear 4xx: numbers, text, file names, renders."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Lesson, Render, VideoJob

from ..helpers import bearer, csrf_token

HUGE = "9" * 25  # past 64 bits
INT64_PLUS_ONE = str(2**63)


@pytest.fixture
def member(client, auth, factory):
    user = factory.user("member@example.com", courses=["Course A"])
    auth.login(user.email)
    return user


@pytest.mark.parametrize("value", [HUGE, INT64_PLUS_ONE, "-" + HUGE, "2147483648"])
@pytest.mark.parametrize(
    "path",
    [
        "/jobs?page={v}",
        "/jobs?course={v}",
        "/api/jobs?page={v}",
        "/api/jobs?course={v}",
        "/api/jobs?perPage={v}",
    ],
)
def test_numbers_past_64_bits_in_queries_are_400(client, member, path, value):
    response = client.get(path.format(v=value))
    assert response.status_code == 400
    assert "must be a whole number" in response.get_data(as_text=True)


def test_numbers_past_64_bits_in_paths_are_404(client, member, factory):
    job = factory.job("Course A", lessons=1)
    token = csrf_token(client, "/jobs")
    for path in (
        f"/account/tokens/{HUGE}/revoke",
        f"/account/tokens/{INT64_PLUS_ONE}/revoke",
        "/account/tokens/2147483648/revoke",  # past the 32-bit id column
        f"/jobs/{job.id}/renders/{HUGE}/cancel",
        f"/jobs/{job.id}/renders/{HUGE}/retry",
        f"/api/renders/{HUGE}/cancel",
    ):
        assert client.post(path, data={"csrf_token": token}).status_code == 404, path
    for path in (f"/api/renders/{HUGE}", f"/jobs/{HUGE}", f"/api/jobs/{HUGE}"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(
    "name",
    [
        "<img src=x onerror=alert(1)>.mp4",
        'a"b.mp4',
        "it's.mp4",
        "a&b.mp4",
        "a;b.mp4",
        "a`b`.mp4",
        "a$(x).mp4",
        "tab\tname.mp4",
        " leading.mp4",
        ".hidden.mp4",
        "a..b.mp4",
        "dir/a.mp4",
        "a" * 97 + ".mp4",  # 101 characters
        "video.mov",
        ".mp4",
        "ünïcode.mp4",
    ],
)
def test_output_file_names_allow_only_plain_characters(client, factory, name):
    user = factory.user(courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": name}
    response = client.post(
        "/video-transform/generate-video", json=body, headers=bearer(factory.token(user.email))
    )
    assert response.status_code == 422, name
    assert "letters, digits, spaces" in response.json["message"]


@pytest.mark.parametrize("name", ["final_video.mp4", "Lesson 1 - take_2.MP4", "a" * 96 + ".mp4"])
def test_plain_output_file_names_are_accepted(client, factory, name):
    user = factory.user(courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": name}
    response = client.post(
        "/video-transform/generate-video", json=body, headers=bearer(factory.token(user.email))
    )
    assert response.status_code == 202, response.json


def test_long_lesson_title_and_problem_are_cut_to_their_columns(app, factory):
    """On PostgreSQL a title past its column would abort the insert; it is cut instead."""
    video = uuid.uuid4().hex[:11]
    factory.lessons(video, count=2)
    root = Path(app.config["LESSONS_ROOT"]) / video
    manifest = json.loads((root / "lesson_1" / "lesson.json").read_text())
    manifest["title"] = "T" * 5000
    (root / "lesson_1" / "lesson.json").write_text(json.dumps(manifest))
    broken = json.loads((root / "lesson_2" / "lesson.json").read_text())
    broken["segments"][0]["background"] = "not a colour " + "x" * 3000
    (root / "lesson_2" / "lesson.json").write_text(json.dumps(broken))
    job = factory.job("Course A", video_id=video, lessons=0)
    with app.app_context():
        lessons = list(db.session.scalars(sa.select(Lesson).order_by(Lesson.number)))
        assert len(lessons) == 2 and lessons[0].job_id == uuid.UUID(job.id)
        assert len(lessons[0].title) == 300 and lessons[0].title.startswith("TTT")
        assert len(lessons[1].problem) <= 500 and "background" in lessons[1].problem


def test_course_names_past_their_column_are_refused_cleanly(runner):
    result = runner.invoke(
        args=["users", "create", "x@example.com", "--password", "long enough", "--course", "C" * 121]
    )
    assert result.exit_code != 0 and "at most 120 characters" in result.output
    assert "Traceback" not in result.output


def _generate(client, headers, job, lesson, name=None):
    body = {"jobId": job.id, "lessonPath": lesson}
    if name:
        body["outputFileName"] = name
    return client.post("/video-transform/generate-video", json=body, headers=headers)


def test_one_user_cannot_flood_the_queue(app, client, factory):
    app.config["USER_MAX_ACTIVE_RENDERS"] = 3
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=5)
    for lesson in job.lessons[:3]:
        assert _generate(client, headers, job, lesson).status_code == 202
    # The same render again is not a new one: still 202, the existing render.
    assert _generate(client, headers, job, job.lessons[0]).status_code == 202
    refused = _generate(client, headers, job, job.lessons[3])
    assert refused.status_code == 429
    assert "3 renders queued or running" in refused.json["message"]
    # Generate all queues nothing more, and says why.
    everything = client.post(f"/api/jobs/{job.id}/generate-all", headers=headers)
    assert everything.status_code == 202
    assert {s["lessonPath"] for s in everything.json["skipped"]} == set(job.lessons[3:])
    # Another user is not held back by the first one's renders.
    other = factory.user(courses=["Course A"])
    assert _generate(client, bearer(factory.token(other.email)), job, job.lessons[3]).status_code == 202


def test_generate_all_alone_past_the_cap_is_429(app, client, factory):
    app.config["USER_MAX_ACTIVE_RENDERS"] = 1
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=2)
    other = factory.job("Course A", lessons=1)
    assert _generate(client, headers, other, other.lessons[0]).status_code == 202
    response = client.post(f"/api/jobs/{job.id}/generate-all", headers=headers)
    assert response.status_code == 429


def test_a_lesson_has_a_bounded_number_of_output_names(app, client, factory):
    app.config["LESSON_MAX_OUTPUT_NAMES"] = 2
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=1)
    lesson = job.lessons[0]
    assert _generate(client, headers, job, lesson, "one.mp4").status_code == 202
    assert _generate(client, headers, job, lesson, "two.mp4").status_code == 202
    refused = _generate(client, headers, job, lesson, "three.mp4")
    assert refused.status_code == 422
    assert "2 file names" in refused.json["message"] and "one.mp4, two.mp4" in refused.json["message"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Render)) == 2
        assert db.session.get(VideoJob, uuid.UUID(job.id)) is not None


def test_a_user_holds_a_bounded_number_of_tokens(app, client, auth, factory):
    from webapp.services import tokens

    user = factory.user()
    for number in range(tokens.TOKENS_PER_USER_MAX):
        factory.token(user.email, name=f"t{number}")
    auth.login(user.email)
    response = client.post(
        "/account/tokens", data={"name": "one more", "csrf_token": csrf_token(client, "/jobs")}
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "the most allowed" in page and "one more" not in page


def test_nul_and_lone_surrogates_are_400_not_500(client, factory):
    """PostgreSQL refuses NUL in text and no database takes a lone surrogate: both are 400."""
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=1)
    cases = [
        client.post("/api/jobs", json={"video": "henIVlCPVIY", "title": "a\ud800b"}, headers=headers),
        client.patch(f"/api/jobs/{job.id}", json={"title": "a\x00b"}, headers=headers),
        client.post(
            "/video-transform/generate-video", json={"jobId": job.id, "lessonPath": "x\x00"}, headers=headers
        ),
        client.get("/api/jobs?q=a%00b", headers=headers),
        client.get(f"/video-transform/{job.id}/videos/{job.lessons[0]}/a%00.mp4", headers=headers),
        client.post(
            "/login", data={"email": "a\x00@example.com", "password": "x", "csrf_token": csrf_token(client)}
        ),
    ]
    for response in cases:
        assert response.status_code == 400, (response.request.path, response.get_data(as_text=True))
    assert client.get(f"/api/jobs/{job.id}", headers=headers).json["title"] == job.title


def test_a_nul_in_a_multipart_form_is_400_too(client, auth, factory):
    """The same form sent as multipart/form-data stored a NUL on SQLite (a 500 on PostgreSQL)."""
    user = factory.user(courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    auth.login(user.email)
    token = csrf_token(client, f"/jobs/{job.id}")
    answer = client.post(
        f"/jobs/{job.id}/rename",
        data={"csrf_token": token, "title": "before\x00after"},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400 and "NUL" in answer.get_data(as_text=True)
    assert client.get(f"/api/jobs/{job.id}").json["title"] == job.title
