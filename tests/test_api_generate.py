"""POST /video-transform/generate-video without workers: inputs, errors, queue outages, fragments."""

from __future__ import annotations

import re
import shutil
import uuid

import pytest
import sqlalchemy as sa
from redis import Redis

from webapp import embedded_redis
from webapp.extensions import db
from webapp.models import Render

from .helpers import bearer, csrf_token

URL = "/video-transform/generate-video"


@pytest.fixture
def setup(factory):
    user = factory.user("member@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=2)
    return job, bearer(factory.token(user.email))


def assert_error(response, status: int, phrase: str, *, message_has: str = ""):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body == {"success": False, "statusCode": status, "error": phrase, "message": body["message"]}
    assert message_has in body["message"]


def count_renders(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Render))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"just a string"', "JSON object"),
        ("{}", "'jobId' is required"),
        ('{"jobId": 5, "lessonPath": "x/lesson_1"}', "'jobId' must be a string"),
        ('{"jobId": "not-a-uuid", "lessonPath": "x/lesson_1"}', "'jobId' must be a UUID"),
        ('{"jobId": "JOB"}', "'lessonPath' is required"),
        ('{"jobId": "JOB", "lessonPath": ["a"]}', "'lessonPath' must be a string"),
        ('{"jobId": "JOB", "lessonPath": ""}', "must not be empty"),
        (
            '{"jobId": "JOB", "lessonPath": "LESSON", "outputFileName": 7}',
            "'outputFileName' must be a string",
        ),
    ],
)
def test_malformed_bodies_are_400(app, client, setup, body, message):
    job, headers = setup
    data = body.replace("JOB", job.id).replace("LESSON", job.lessons[0])
    response = client.post(URL, data=data, headers={**headers, "Content-Type": "application/json"})
    assert_error(response, 400, "Bad Request", message_has=message)
    assert count_renders(app) == 0


def test_not_json_is_415(client, setup):
    job, headers = setup
    response = client.post(URL, data={"jobId": job.id, "lessonPath": job.lessons[0]}, headers=headers)
    assert_error(response, 415, "Unsupported Media Type")


def test_too_large_body_is_413(client, setup):
    job, headers = setup
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "padding": "x" * 100_000}
    assert_error(client.post(URL, json=body, headers=headers), 413, "Request Entity Too Large")


def test_no_credentials_is_401(client, setup):
    job, _ = setup
    assert_error(client.post(URL, json={"jobId": job.id, "lessonPath": job.lessons[0]}), 401, "Unauthorized")


def test_unknown_or_foreign_job_is_404(client, factory, setup):
    _, headers = setup
    foreign = factory.job("Course B", lessons=1)
    for job_id in (str(uuid.uuid4()), foreign.id):
        response = client.post(URL, json={"jobId": job_id, "lessonPath": foreign.lessons[0]}, headers=headers)
        assert_error(response, 404, "Not Found")


@pytest.mark.parametrize("lesson", ["nope/lesson_1", "../etc/passwd", "LESSON/../LESSON", "OTHER"])
def test_lesson_not_of_this_job_is_422(app, client, factory, setup, lesson):
    job, headers = setup
    other = factory.job("Course A", lessons=1)
    path = lesson.replace("LESSON", job.lessons[0]).replace("OTHER", other.lessons[0])
    response = client.post(URL, json={"jobId": job.id, "lessonPath": path}, headers=headers)
    assert_error(response, 422, "Unprocessable Entity", message_has="is not a lesson of this job")
    assert count_renders(app) == 0


@pytest.mark.parametrize(
    "name",
    [
        "../final.mp4",
        "a/b.mp4",
        "a\\b.mp4",
        ".hidden.mp4",
        "video.avi",
        "video",
        ".mp4",
        "",
        "x" * 97 + ".mp4",
        "bad\x00name.mp4",
        " spaced.mp4",
        "two..dots.mp4",
        # Only ASCII letters, digits, space, '.', '-', '_' (issue: markup in the RQ dashboard).
        "Lesson 1 (final).MP4",
        "บทเรียน-1.mp4",
        # Its captions file would be the chapters file of "intro.mp4" (intro.chapters.vtt).
        "intro.chapters.mp4",
        "intro.Chapters.MP4",
    ],
)
def test_bad_output_file_names_are_422(app, client, setup, name):
    job, headers = setup
    response = client.post(
        URL, json={"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": name}, headers=headers
    )
    assert_error(response, 422, "Unprocessable Entity", message_has="outputFileName")
    assert count_renders(app) == 0


def test_a_name_differing_only_in_letter_case_from_the_lessons_own_is_422(app, client, setup):
    """ "Intro.mp4" and "Intro.MP4" would share their captions, chapters and poster files (and are
    one file on some disks): a lesson's videos are told apart by more than letter case."""
    job, headers = setup
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": "Intro.mp4"}
    assert client.post(URL, json=body, headers=headers).status_code == 202
    for name in ("Intro.MP4", "intro.mp4"):
        response = client.post(URL, json={**body, "outputFileName": name}, headers=headers)
        assert_error(response, 422, "Unprocessable Entity", message_has="already has a video named Intro.mp4")
    assert client.post(URL, json=body, headers=headers).status_code == 202  # the same name again
    other = client.post(URL, json={**body, "outputFileName": "Intro 2.mp4"}, headers=headers)
    assert other.status_code == 202
    assert count_renders(app) == 2


@pytest.mark.parametrize("name", ["final_video.mp4", "Lesson 1 - final_2.MP4", "x" * 96 + ".mp4"])
def test_good_output_file_names_are_accepted(client, setup, name):
    job, headers = setup
    response = client.post(
        URL, json={"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": name}, headers=headers
    )
    assert response.status_code == 202
    assert response.json["outputPath"] == f"videos/{job.lessons[0]}/{name}"


def test_broken_lesson_is_refused_before_it_is_queued(app, client, factory, setup):
    job, headers = setup
    shutil.rmtree(factory.lessons_root / job.lessons[0] / "audio")
    response = client.post(URL, json={"jobId": job.id, "lessonPath": job.lessons[0]}, headers=headers)
    assert_error(response, 422, "Unprocessable Entity", message_has="segments[0].audio")
    assert count_renders(app) == 0


def test_session_post_needs_the_csrf_header(client, auth, factory, setup):
    job, _ = setup
    auth.login("member@example.com")
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    assert client.post(URL, json=body).status_code == 400
    token = csrf_token(client, "/jobs")
    assert client.post(URL, json=body, headers={"X-CSRFToken": token}).status_code == 202


def test_redis_down_is_503_with_no_render_left_and_recovers_without_restart(outage_app, own_redis, factory):
    folder, url = own_redis
    user = factory.user("member@example.com", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    client = outage_app.test_client()
    headers = bearer(factory.token(user.email))
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}

    embedded_redis.stop(folder)
    response = client.post(URL, json=body, headers=headers)
    assert_error(response, 503, "Service Unavailable", message_has="queue is unavailable")
    assert count_renders(outage_app) == 0
    status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=headers).json
    assert status["videoGenerationStatus"] == "not_started" and status["activeRenders"] == []

    embedded_redis.ensure_running(folder)  # Redis is back; the web app is not restarted
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 202
    assert Redis.from_url(url).llen("rq:queue:renders") == 1


def test_fragment_polls_while_active_and_stops_when_idle(app, client, setup):
    job, headers = setup
    url = f"/video-transform/{job.id}/video-generation-status"
    idle = client.get(url, headers={**headers, "HX-Request": "true"}).get_data(as_text=True)
    # Idle: no polling trigger, only the event stream's (the panel reloads when told to).
    assert 'hx-trigger="status-changed"' in idle and "every" not in idle
    render_id = client.post(URL, json={"jobId": job.id, "lessonPath": job.lessons[0]}, headers=headers).json[
        "renderId"
    ]
    active = client.get(url, headers={**headers, "HX-Request": "true"})
    html = active.get_data(as_text=True)
    assert active.mimetype == "text/html"
    # Polling as the stream's fallback; static/app.js skips polls while the stream is open or the
    # tab is hidden (no trigger filter: no eval under the CSP).
    assert 'hx-trigger="status-changed, every 2s"' in html
    assert f'hx-get="{url}"' in html and "next in line" in html
    assert set(active.headers["Vary"].replace(" ", "").split(",")) >= {"HX-Request", "Accept"}
    json_now = client.get(url, headers=headers).json
    assert json_now["activeRenders"][0]["renderId"] == render_id
    client.post(f"/api/renders/{render_id}/cancel", headers=headers)
    after = client.get(url, headers={**headers, "HX-Request": "true"}).get_data(as_text=True)
    assert "every 2s" not in after and 'hx-trigger="status-changed"' in after


def test_page_generate_all_and_cancel_with_htmx(client, auth, setup):
    job, _ = setup
    auth.login("member@example.com")
    token = csrf_token(client, f"/jobs/{job.id}")
    response = client.post(
        f"/jobs/{job.id}/generate-all", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and '<section id="status-panel"' in html
    assert "2 lessons queued" in html and html.count('class="progress-row"') == 2
    render_id = html.split('data-render-id="')[1].split('"')[0]
    response = client.post(
        f"/jobs/{job.id}/renders/{render_id}/cancel",
        data={"csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert "cancelled" in response.get_data(as_text=True)
    # Without htmx the same forms work: post, then redirect back with a message.
    response = client.post(f"/jobs/{job.id}/renders/{render_id}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "attempt 2 queued" in page


def test_openapi_document_matches_the_routes(app, client):
    """Generated from the views: every JSON route is in it, and nothing else."""
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    verbs = {"get", "post", "put", "patch", "delete"}
    documented = {
        (path, method.upper()) for path, ops in spec["paths"].items() for method in ops if method in verbs
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("api.", "ops.", "webhooks.", "stream.")):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    assert ("/auth/token", "POST") in documented and ("/health", "GET") in documented
    docs = client.get("/docs")
    assert docs.status_code == 200 and "POST /video-transform/generate-video" in docs.get_data(as_text=True)
    assert "cdn" not in docs.get_data(as_text=True).lower()
