"""Users never see the server's own paths: only paths relative to their root."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from webapp.extensions import db
from webapp.models import VideoJob
from webapp.services import lifecycle, renders

from ..helpers import bearer, csrf_token


def roots(app) -> list[str]:
    config = app.config
    found = [config["LESSONS_ROOT"], config["VIDEOS_ROOT"], config["RENDER_CACHE_DIR"], app.instance_path]
    return [str(Path(p).resolve()) for p in found] + [str(Path(config["LESSONS_ROOT"]).parent)]


def assert_no_server_path(app, text: str):
    for root in roots(app):
        assert root not in text, f"{root} shown in: {text[:300]}"


def test_job_page_without_lesson_folder_names_no_server_path(app, client, auth, factory):
    user = factory.user(courses=["Course A"])
    job = factory.job("Course A", lessons=0)
    auth.login(user.email)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "No lesson folder for this video yet" in page and f"{job.video_id}/lesson_&lt;n&gt;/" in page
    assert_no_server_path(app, page)
    Path(app.config["LESSONS_ROOT"], job.video_id).mkdir()
    response = client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "No lesson_&lt;n&gt;/lesson.json folders" in page
    assert_no_server_path(app, page)


def test_render_errors_name_no_server_path(app, client, factory):
    """A lesson folder gone after queueing: the render fails and says so without the path."""
    from webapp import tasks

    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    job = factory.job("Course A", lessons=1)
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    render_id = client.post("/video-transform/generate-video", json=body, headers=headers).json["renderId"]
    shutil.rmtree(Path(app.config["LESSONS_ROOT"]) / job.lessons[0])
    with app.app_context(), pytest.raises(tasks.RenderFailed):
        tasks.render_lesson(render_id)
    render = client.get(f"/api/renders/{render_id}", headers=headers).json
    assert render["state"] == "failed" and render["error"]["kind"] == "manifest"
    assert_no_server_path(app, json.dumps(render))
    status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=headers)
    assert_no_server_path(app, status.get_data(as_text=True))


def test_stored_failure_messages_lose_server_paths(app, factory):
    """Whatever a fault's message carries, what is stored for users is relative."""
    job = factory.job("Course A", lessons=1)
    with app.app_context():
        render = renders.generate(None, db.session.get(VideoJob, uuid.UUID(job.id)), job.lessons[0])
        lifecycle.begin(render.rq_job_id)
        videos = Path(app.config["VIDEOS_ROOT"]).resolve()
        message = f"cannot write ({videos}/{job.lessons[0]}/final_video.mp4.part) or /opt/secret/x.tmp"
        failed = lifecycle.fail(render.id, "transient", message)
        assert failed is None
        stored = db.session.get(type(render), render.id).error_message
    assert stored == f"cannot write (videos/{job.lessons[0]}/final_video.mp4.part) or x.tmp"


def test_lesson_problem_from_a_broken_manifest_names_no_server_path(app, client, auth, factory):
    user = factory.user(courses=["Course A"])
    video = uuid.uuid4().hex[:11]
    factory.lessons(video, count=1)
    manifest = Path(app.config["LESSONS_ROOT"], video, "lesson_1", "lesson.json")
    data = json.loads(manifest.read_text())
    data["segments"][0]["image"] = "images/missing.png"
    manifest.write_text(json.dumps(data))
    job = factory.job("Course A", video_id=video, lessons=0)
    auth.login(user.email)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "segment 1, image" in page  # the page counts segments from 1 (the API: segments[0].image)
    assert_no_server_path(app, page)
