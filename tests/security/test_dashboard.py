"""The RQ dashboard shows nothing a user typed, escapes what reaches it anyway, and runs
under a Content-Security-Policy as strict as it allows."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from ..helpers import bearer

MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture
def marked(app, factory):
    """A job whose every typed field carries markup, and a member's API headers."""
    video = uuid.uuid4().hex[:11]
    factory.lessons(video, count=1)
    manifest_path = Path(app.config["LESSONS_ROOT"], video, "lesson_1", "lesson.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["title"] = f"Lesson {MARKUP}"
    manifest["segments"][0]["title"] = f"Segment {MARKUP}"
    manifest_path.write_text(json.dumps(manifest))
    job = factory.job(f"Course {MARKUP}", video_id=video, lessons=0, title=f"Job {MARKUP}")
    user = factory.user(courses=[f"Course {MARKUP}"])
    return job, bearer(factory.token(user.email, name=f"Token {MARKUP}")), manifest_path


def test_rq_jobs_carry_ids_only(app, client, marked, redis_url):
    job, headers, _ = marked
    body = {"jobId": job.id, "lessonPath": job.lessons[0], "outputFileName": "Lesson 1 - take_2.mp4"}
    render = client.post("/video-transform/generate-video", json=body, headers=headers).json
    rq_job = Job.fetch(f"render-{render['renderId']}", connection=Redis.from_url(redis_url))
    assert rq_job.description == f"render {render['renderId']} (attempt 1)"
    assert rq_job.args == () and rq_job.kwargs == {"render_id": render["renderId"]}
    shown = json.dumps([rq_job.description, rq_job.kwargs, rq_job.meta])
    for typed in ("Lesson", "take_2", "Course", "Job", "<"):
        assert typed not in shown


def test_a_failed_render_tells_rq_no_user_text(app, client, marked, redis_url, work):
    """The reason (which quotes lesson.json) stays on our record; RQ gets ids and the kind."""
    job, headers, manifest_path = marked
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    render = client.post("/video-transform/generate-video", json=body, headers=headers).json
    manifest = json.loads(manifest_path.read_text())
    manifest["segments"][0]["background"] = MARKUP  # breaks after queueing
    manifest_path.write_text(json.dumps(manifest))
    work()
    ours = client.get(f"/api/renders/{render['renderId']}", headers=headers).json
    assert ours["state"] == "failed" and MARKUP in ours["error"]["message"]  # our page escapes it
    rq_job = Job.fetch(f"render-{render['renderId']}", connection=Redis.from_url(redis_url))
    assert rq_job.is_failed
    recorded = rq_job.latest_result().exc_string
    assert "<" not in recorded and "failed (manifest)" in recorded
    assert f"/jobs/{job.id}" in recorded  # where an operator reads the reason and retries
    assert rq_job.return_value() is None


@pytest.fixture
def admin_client(client, auth, factory):
    auth.login(factory.user(role="admin").email)
    return client


def test_dashboard_data_is_escaped(admin_client, redis_url):
    """Markup that reached RQ some other way is sent to the dashboard's pages as text."""
    planted = Queue("renders", connection=Redis.from_url(redis_url)).enqueue(
        "webapp.tasks.reap_lost_renders", description=MARKUP, meta={"note": MARKUP}
    )
    response = admin_client.get(f"/rq/0/data/job/{planted.id}.json")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert MARKUP not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    # The jobs list's page escapes a job's description and error itself (escaped here too, they
    # read &quot; and &#x27;): only its other strings are (test_browser_markup shows it as text).
    listed = admin_client.get("/rq/0/data/jobs/renders/queued/8/asc/1.json").get_json()
    planted_row = next(job for job in listed["jobs"] if job["id"] == planted.id)
    assert planted_row["description"] == MARKUP


def test_dashboard_pages_have_a_strict_policy(admin_client, redis_url):
    planted = Queue("renders", connection=Redis.from_url(redis_url)).enqueue(
        "webapp.tasks.reap_lost_renders", description=MARKUP
    )
    for path in ("/rq/", "/rq/0/view/workers", f"/rq/0/view/job/{planted.id}", "/rq/0/view/jobs"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        scripts = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in scripts and "'sha256-" in scripts, path
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
