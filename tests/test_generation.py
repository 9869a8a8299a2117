"""Generation end to end: the API, real `flask worker` processes, real MP4s decoded with PyAV."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue

from webapp.extensions import db
from webapp.models import Render
from webapp.render import partial_outputs

from .helpers import bearer, decode, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def api(client, factory):
    """A course member's bearer token and helpers to call the API with it."""
    user = factory.user("integration@example.com", courses=["Course A"])
    token = factory.token(user.email)

    class Api:
        headers = bearer(token)

        def generate(self, job_id, lesson_path, file_name=None):
            body = {"jobId": job_id, "lessonPath": lesson_path}
            if file_name is not None:
                body["outputFileName"] = file_name
            return client.post("/video-transform/generate-video", json=body, headers=self.headers)

        def status(self, job_id):
            response = client.get(f"/video-transform/{job_id}/video-generation-status", headers=self.headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            return response.json

        def render(self, render_id):
            return client.get(f"/api/renders/{render_id}", headers=self.headers).json

        def post(self, path):
            return client.post(path, headers=self.headers)

        def wait_render(self, render_id, states, timeout=90):
            return wait_for(
                lambda: (r := self.render(render_id))["state"] in states and r,
                timeout,
                f"render {render_id} to be {states}",
            )

    return Api()


def video_path(app, output_path: str) -> Path:
    return Path(app.config["VIDEOS_ROOT"]) / output_path.removeprefix("videos/")


def test_generate_poll_and_play_end_to_end(app, client, api, factory, processes):
    job = factory.job("Course A", lessons=2, segments=2, seconds=1.0, width=320, height=180, fps=10)
    response = api.generate(job.id, job.lessons[1], "lesson_two.mp4")
    assert response.status_code == 202
    body = response.json
    assert body["success"] is True
    assert body["outputPath"] == f"videos/{job.lessons[1]}/lesson_two.mp4"
    assert body["jobId"] == job.id
    assert body["videoGenerationStatus"] == "generating"
    assert body["currentLesson"] == job.lessons[1]
    assert (
        response.headers["Location"]
        == body["statusUrl"]
        == f"/video-transform/{job.id}/video-generation-status"
    )
    queued = api.status(job.id)
    assert queued["activeRenders"][0]["state"] == "queued"
    assert queued["activeRenders"][0]["framesTotal"] == 20

    processes.worker()
    done = wait_for(
        lambda: (s := api.status(job.id))["videoGenerationStatus"] == "completed" and s,
        60,
        "the render to complete",
    )
    assert done["completedLessons"] == 1 and done["totalLessons"] == 2
    assert done["activeRenders"] == []
    [video] = done["generatedVideos"]
    assert video["lessonPath"] == job.lessons[1] and video["success"] is True
    assert video["outputPath"] == body["outputPath"] and video["generatedAt"].endswith("Z")
    assert "error" not in video

    path = video_path(app, body["outputPath"])
    info = decode(path)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac" and info["pix_fmt"] == "yuv420p"
    assert info["size"] == (320, 180) and info["frames"] == 20
    assert info["duration"] == pytest.approx(2.0, abs=0.1)
    assert partial_outputs(path) == []

    render = api.render(body["renderId"])
    assert render["state"] == "completed" and render["framesDone"] == render["framesTotal"] == 20
    assert render["sizeBytes"] == path.stat().st_size and render["percent"] == 100.0
    # The video is served with range requests, so players can seek.
    whole = client.get(render["videoUrl"], headers=api.headers)
    assert whole.status_code == 200 and whole.mimetype == "video/mp4"
    assert whole.data == path.read_bytes()
    part = client.get(render["videoUrl"], headers={**api.headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == path.read_bytes()[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{path.stat().st_size}"
    download = client.get(render["videoUrl"] + "?download=1", headers=api.headers)
    assert "attachment" in download.headers["Content-Disposition"]
    # Saved under a name that says which lesson it is (every lesson's video may be final_video.mp4).
    saved_as = render["lessonPath"].replace("/", "-") + "-" + render["outputFileName"]
    assert f"filename={saved_as}" in download.headers["Content-Disposition"]
    assert "filename=" in whole.headers["Content-Disposition"]  # played in the page: its own name


def test_double_submit_is_one_render_and_one_rq_job(app, api, factory, redis_url):
    job = factory.job("Course A", lessons=1)
    first = api.generate(job.id, job.lessons[0])
    second = api.generate(job.id, job.lessons[0])
    assert first.status_code == second.status_code == 202
    assert first.json["renderId"] == second.json["renderId"]
    other_name = api.generate(job.id, job.lessons[0], "other.mp4")
    assert other_name.json["renderId"] != first.json["renderId"]
    queue = Queue("renders", connection=Redis.from_url(redis_url))
    assert sorted(queue.job_ids) == sorted(
        [f"render-{first.json['renderId']}", f"render-{other_name.json['renderId']}"]
    )
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Render)) == 2


def test_two_workers_rendering_one_job_keep_the_summary_exact(app, api, factory, processes, client):
    job = factory.job("Course A", lessons=3, segments=2, seconds=15.0, width=640, height=360, fps=30)
    processes.worker()
    processes.worker()
    response = api.post(f"/api/jobs/{job.id}/generate-all")
    assert response.status_code == 202 and len(response.json["renders"]) == 3
    final = wait_for(
        lambda: (s := api.status(job.id))["videoGenerationStatus"] != "generating" and s,
        120,
        "all three renders",
    )
    assert final["videoGenerationStatus"] == "completed"
    assert final["completedLessons"] == 3 and final["totalLessons"] == 3
    assert sorted(v["lessonPath"] for v in final["generatedVideos"]) == sorted(job.lessons)
    with app.app_context():
        rows = db.session.scalars(sa.select(Render)).all()
        spans = [(r.started_at, r.finished_at) for r in rows]
    # Two workers really rendered at the same time.
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :])
    # Rendering one lesson again does not count it twice.
    again = api.generate(job.id, job.lessons[0])
    api.wait_render(again.json["renderId"], {"completed"})
    status = api.status(job.id)
    assert status["completedLessons"] == 3 and len(status["generatedVideos"]) == 4


def test_sigkill_mid_render_is_declared_lost_and_retried(app, api, factory, processes, work):
    """With the defaults a killed render is failed at most 30 s + 2 reaper runs (50 s) after
    its last heartbeat; here the silence allowed is shorter, the mechanism the same."""
    job = factory.job("Course A", lessons=1, segments=3, seconds=30.0, width=640, height=360, fps=30)
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    # The housekeeping worker, as `make run` starts it; it declares a render lost after 6 s of
    # silence here (30 s by default, with the heartbeat every 5 s; here every second).
    lost_after = 6
    processes.worker("maintenance", LOST_RENDER_SECONDS=lost_after)
    processes.cron(REAP_INTERVAL_SECONDS=2)
    # veryslow: the render is still going when killed (at medium every frame was encoded by the
    # first progress report, which raced the kill against the render's own finish).
    victim = processes.worker("renders", RENDER_PRESET="veryslow", RENDER_HEARTBEAT_SECONDS=1)
    wait_for(lambda: api.render(render_id)["framesDone"] > 0, 60, "rendering progress")
    processes.kill(victim)  # the worker and its work horse, like a machine gone
    lost = api.wait_render(render_id, {"failed", "completed", "cancelled"}, timeout=90)
    assert lost["state"] == "failed"
    # Declared lost by the reaper's clock: at most LOST_RENDER_SECONDS after the last heartbeat,
    # plus one reaper interval (whatever this machine's load did to the test's own pace).
    silent = datetime.fromisoformat(lost["finishedAt"]) - datetime.fromisoformat(lost["heartbeatAt"])
    assert silent.total_seconds() <= lost_after + 2 * 2
    assert lost["error"]["kind"] == "worker_lost" and "stopped responding" in lost["error"]["message"]
    output = video_path(app, lost["outputPath"])
    assert not output.exists() and partial_outputs(output) == []
    # It was re-queued as a new attempt, which a healthy worker completes.
    status = api.status(job.id)
    [retry] = status["activeRenders"]
    assert retry["state"] == "queued" and retry["renderId"] != render_id
    work()  # a healthy worker
    assert api.render(retry["renderId"])["state"] == "completed"
    assert api.render(retry["renderId"])["attempt"] == 2
    assert output.exists()


def test_cancel_a_queued_render(app, api, factory, work, redis_url):
    job = factory.job("Course A", lessons=1)
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    response = api.post(f"/api/renders/{render_id}/cancel")
    assert response.status_code == 200 and response.json["state"] == "cancelled"
    queue = Queue("renders", connection=Redis.from_url(redis_url))
    assert queue.job_ids == []
    assert api.status(job.id)["videoGenerationStatus"] == "not_started"
    assert api.post(f"/api/renders/{render_id}/cancel").status_code == 409
    # Had RQ kept the job (a cancel that could not reach Redis), the worker drops it unrendered.
    queue.enqueue("webapp.tasks.render_lesson", kwargs={"render_id": render_id}, job_id=f"render-{render_id}")
    work()
    skipped = queue.fetch_job(f"render-{render_id}").return_value()
    assert skipped["skipped"] is True  # and says where to start it again, for the dashboard's reader
    assert f"/jobs/{job.id}" in skipped["reason"] and "Retry" in skipped["reason"]
    assert api.render(render_id)["state"] == "cancelled"
    assert not video_path(app, response.json["outputPath"]).exists()


def test_cancel_a_running_render_stops_it_and_removes_temp_output(app, api, factory, processes):
    job = factory.job("Course A", lessons=1, segments=3, seconds=30.0, width=1280, height=720, fps=30)
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    processes.worker(RENDER_PRESET="veryslow")  # still going when the cancel comes (see above)
    wait_for(lambda: api.render(render_id)["framesDone"] > 0, 60, "rendering progress")
    response = api.post(f"/api/renders/{render_id}/cancel")
    assert response.status_code == 202 and response.json["cancelRequested"] is True
    cancelled = api.wait_render(render_id, {"cancelled", "completed", "failed"}, timeout=30)
    # Stopped part-way by the worker itself (not by the reaper, which says otherwise).
    assert cancelled["state"] == "cancelled" and cancelled["error"]["message"] == "Cancelled while rendering."
    assert cancelled["framesDone"] < cancelled["framesTotal"]
    output = video_path(app, cancelled["outputPath"])
    assert not output.exists() and partial_outputs(output) == []
    assert api.status(job.id)["videoGenerationStatus"] == "not_started"


def test_bad_manifest_fails_once_and_retry_makes_a_new_attempt(app, api, factory, work, redis_url):
    job = factory.job("Course A", lessons=1, segments=2, seconds=1.0, width=320, height=180, fps=10)
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    audio = Path(app.config["LESSONS_ROOT"]) / job.lessons[0] / "audio" / "2.wav"
    kept = audio.read_bytes()
    audio.unlink()  # the lesson breaks after it was queued
    work()
    failed = api.render(render_id)
    assert failed["state"] == "failed" and failed["error"]["kind"] == "manifest"
    assert "segments[1].audio" in failed["error"]["message"] and "Traceback" not in failed["error"]["message"]
    status = api.status(job.id)
    assert status["videoGenerationStatus"] == "failed"
    assert status["generatedVideos"][0]["success"] is False and status["generatedVideos"][0]["error"]
    # A bad manifest is never retried by itself: RQ failed the job for good, nothing is scheduled.
    queue = Queue("renders", connection=Redis.from_url(redis_url))
    assert queue.fetch_job(f"render-{render_id}").is_failed
    assert queue.scheduled_job_registry.get_job_ids() == [] and queue.job_ids == []
    assert status["activeRenders"] == []
    audio.write_bytes(kept)
    response = api.post(f"/api/renders/{render_id}/retry")
    assert response.status_code == 202 and response.json["attempt"] == 2
    work()
    assert api.render(response.json["renderId"])["state"] == "completed"
    final = api.status(job.id)
    assert final["videoGenerationStatus"] == "completed" and final["completedLessons"] == 1
    assert [v["success"] for v in final["generatedVideos"]] == [False, True]
    assert api.post(f"/api/renders/{response.json['renderId']}/retry").status_code == 409


def test_transient_fault_is_retried_automatically(app, api, factory, processes):
    job = factory.job("Course A", lessons=1, segments=1, seconds=1.0, width=320, height=180, fps=10)
    blocker = Path(app.config["VIDEOS_ROOT"]) / job.lessons[0]
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the output folder should be")  # storage trouble
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    processes.worker(RENDER_RETRY_INTERVALS="3")
    first = api.wait_render(render_id, {"failed", "completed"}, timeout=60)
    assert first["state"] == "failed" and first["error"]["kind"] == "transient"
    [retry] = api.status(job.id)["activeRenders"]
    assert retry["state"] == "queued"
    blocker.unlink()  # the storage recovers before the retry runs
    assert api.wait_render(retry["renderId"], {"completed", "failed"}, timeout=60)["state"] == "completed"


def test_fair_share_between_courses(app, client, factory, work):
    app.config["COURSE_RENDER_CONCURRENCY"] = 1
    alice = factory.user("a@example.com", courses=["Course A"])
    bob = factory.user("b@example.com", courses=["Course B"])
    big = factory.job("Course A", lessons=5, segments=1, seconds=2.0, width=320, height=180, fps=10)
    small = factory.job("Course B", lessons=1, segments=1, seconds=2.0, width=320, height=180, fps=10)
    assert (
        client.post(
            f"/api/jobs/{big.id}/generate-all", headers=bearer(factory.token(alice.email))
        ).status_code
        == 202
    )
    response = client.post(
        "/video-transform/generate-video",
        json={"jobId": small.id, "lessonPath": small.lessons[0]},
        headers=bearer(factory.token(bob.email)),
    )
    assert response.status_code == 202
    work()
    with app.app_context():
        rows = db.session.scalars(sa.select(Render)).all()
    assert len(rows) == 6 and all(r.state.value == "completed" for r in rows)
    order = [r.job_id for r in sorted(rows, key=lambda r: r.started_at)]
    # Course B's single render ran second, not behind all five of course A's.
    assert order.index(uuid.UUID(small.id)) <= 1


def test_a_render_that_ignores_cancel_is_stopped_by_rqs_stop_command(app, api, factory, processes, redis_url):
    """The fallback: a worker stuck where it cannot see the cancel request gets RQ's stop command."""
    from datetime import timedelta

    from rq import Callback

    from webapp import tasks
    from webapp.models import utcnow
    from webapp.services import lifecycle

    job = factory.job("Course A", lessons=1)
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    conn = Redis.from_url(redis_url)
    rq_job_id = f"render-{render_id}"
    queue = Queue("renders", connection=conn)
    queue.fetch_job(rq_job_id).delete()
    # A stand-in for a render stuck in a call that never returns to its cancel check.
    queue.enqueue("time.sleep", 120, job_id=rq_job_id, on_stopped=Callback(tasks.on_render_stopped))
    with app.app_context():
        assert lifecycle.begin(rq_job_id) is not None
    processes.worker()
    # Started, and known to RQ as running on that worker (what the stop command needs).
    wait_for(lambda: queue.fetch_job(rq_job_id).worker_name, 30, "the stuck job to start")
    with app.app_context():
        row = db.session.get(Render, uuid.UUID(render_id))
        row.cancel_requested_at = utcnow() - timedelta(seconds=20)  # asked 20 s ago, still running
        row.heartbeat_at = utcnow()
        db.session.commit()
        assert tasks.reap_lost_renders()["stopped"] == 1
    stopped = api.wait_render(render_id, {"cancelled", "failed", "completed"}, timeout=20)
    assert stopped["state"] == "cancelled" and "worker was stopped" in stopped["error"]["message"]


def test_a_queued_render_whose_rq_job_vanished_is_enqueued_again(app, api, factory, work, redis_url):
    from datetime import timedelta

    from webapp import tasks
    from webapp.models import utcnow

    job = factory.job("Course A", lessons=1)
    render_id = api.generate(job.id, job.lessons[0]).json["renderId"]
    Redis.from_url(redis_url).flushdb()  # Redis lost its data
    with app.app_context():
        row = db.session.get(Render, uuid.UUID(render_id))
        row.queued_at = utcnow() - timedelta(minutes=2)
        db.session.commit()
        assert tasks.reap_lost_renders()["requeued"] == 1
    work()
    assert api.render(render_id)["state"] == "completed"
