"""Renders and downloads with media on an S3-compatible store (a real SeaweedFS): the worker
fetches the lesson from the store, renders locally, uploads the video and its sidecars, and
the download endpoint sends the player to a presigned URL that answers ranges.

Lessons are written by the factory, moved to the store, and found there: nothing of them is left
under LESSONS_ROOT.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import av
import pytest

from webapp.storage.s3 import S3Store

from .helpers import PASSWORD, app_store, bearer, media_in_bucket, to_store, wait_for, wait_in_page

pytestmark = pytest.mark.slow


@pytest.fixture
def config(config, s3_bucket, monkeypatch):
    return media_in_bucket(config, s3_bucket, monkeypatch)


@pytest.fixture
def store(app) -> S3Store:
    return app_store(app)


@pytest.fixture
def api(client, factory):
    user = factory.user("s3@example.com", courses=["Course A"])
    headers = bearer(factory.token(user.email))

    class Api:
        def generate(self, job_id, lesson_path, file_name="final.mp4"):
            body = {"jobId": job_id, "lessonPath": lesson_path, "outputFileName": file_name}
            response = client.post("/video-transform/generate-video", json=body, headers=headers)
            assert response.status_code == 202, response.get_data(as_text=True)
            return response.json

        def get(self, path, **extra):
            return client.get(path, headers={**headers, **extra})

        def post(self, path):
            return client.post(path, headers=headers)

        def post_json(self, path, body):
            return client.post(path, json=body, headers=headers)

        def render(self, render_id):
            return self.get(f"/api/renders/{render_id}").json

        def wait_render(self, render_id, states, timeout=60):
            return wait_for(
                lambda: (r := self.render(render_id))["state"] in states and r,
                timeout,
                f"render {render_id} to be one of {states}",
            )

    return Api()


def s3_job(app, factory, store, lessons=1, **sample):
    """A job whose lessons are in the store only: found there when the job is created."""
    video_id = uuid.uuid4().hex[:11]
    factory.lessons(video_id, lessons, **sample)
    to_store(app, store, video_id)
    job = factory.job("Course A", video_id=video_id, lessons=0)
    assert len(job.lessons) == lessons
    return job


def fetch(url: str, **headers) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_a_render_reads_the_store_and_its_video_is_served_from_there(
    app, api, factory, store, processes, tmp_path
):
    job = s3_job(app, factory, store)
    body = api.generate(job.id, job.lessons[0])
    key = f"videos/{job.lessons[0]}/final.mp4"
    assert body["outputPath"] == key
    processes.worker()
    done = api.wait_render(body["renderId"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    status = api.get(f"/video-transform/{job.id}/video-generation-status").json
    [video] = status["generatedVideos"]
    assert video["outputPath"] == key and video["success"] is True

    # The video and its poster are in the store, whole, at the contract's keys; nothing local.
    copy = tmp_path / "copy.mp4"
    info = store.download(key, copy)
    assert info.size == done["sizeBytes"]
    with av.open(str(copy)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 90)
        assert sum(1 for _ in container.decode(video=0)) == 5
    assert store.exists(f"videos/{job.lessons[0]}/final.jpg")
    assert not any(Path(app.config["VIDEOS_ROOT"]).rglob("*.mp4"))
    assert list(store.temporaries()) == []
    # The worker's work folder is gone; the lesson's files stay in the render cache.
    cache = Path(app.config["RENDER_CACHE_DIR"])
    assert list((cache / "tmp").iterdir()) == []
    assert len(list(cache.rglob("*.obj"))) == len(list(store.list(f"lessons/{job.video_id}/")))

    # The download endpoint sends the player to a presigned URL that answers ranges (seeking).
    played = api.get(done["videoUrl"])
    assert played.status_code == 302 and played.headers["Cache-Control"] == "private, no-store"
    status_code, headers, part = fetch(played.headers["Location"], Range="bytes=100-199")
    assert status_code == 206 and part == copy.read_bytes()[100:200]
    assert headers["Content-Type"] == "video/mp4" and headers["Content-Range"].endswith(f"/{info.size}")
    assert headers["Content-Disposition"].startswith("inline;")
    saved = api.get(done["videoUrl"] + "?download=1")
    _, headers, whole = fetch(saved.headers["Location"])
    assert headers["Content-Disposition"].startswith("attachment;") and whole == copy.read_bytes()
    # The pages' policy lets the player fetch from the store (media only).
    origin = urllib.parse.urlsplit(played.headers["Location"])
    policy = api.get(f"/jobs/{job.id}").headers["Content-Security-Policy"]
    assert f"media-src 'self' {origin.scheme}://{origin.netloc}" in policy
    # The poster is small and comes through the app, still under the course scope.
    poster = api.get(done["videoUrl"].replace("final.mp4", "final.jpg"))
    assert poster.status_code == 200 and poster.mimetype == "image/jpeg" and poster.data[:2] == b"\xff\xd8"
    stranger = factory.token(factory.user("other@example.com", courses=["Course B"]).email)
    assert api.get(done["videoUrl"], **bearer(stranger)).status_code == 404


def test_a_killed_or_cancelled_render_leaves_nothing_at_the_output_key(app, api, factory, store, processes):
    long = {"segments": 2, "seconds": 20.0, "fps": 30}
    job = s3_job(app, factory, store, width=960, height=540, **long)
    other = s3_job(app, factory, store, width=1280, height=720, **long)  # nothing shared in the cache
    killed = api.generate(job.id, job.lessons[0])
    # The slowest preset: each render is still running when the test acts on its first progress.
    victim = processes.worker(RENDER_PRESET="veryslow")
    wait_for(lambda: api.render(killed["renderId"])["framesDone"] > 0, 60, "rendering progress")
    processes.kill(victim)
    assert api.render(killed["renderId"])["state"] == "rendering"  # until the reaper declares it lost
    # Killed at any point, even during its upload, it leaves no video at the output key (at most
    # a temporary key, which the hourly sweeper removes).
    assert not store.exists(killed["outputPath"])
    cancelled = api.generate(other.id, other.lessons[0])
    processes.worker(RENDER_PRESET="veryslow")
    wait_for(lambda: api.render(cancelled["renderId"])["framesDone"] > 0, 60, "rendering progress")
    assert api.post(f"/api/renders/{cancelled['renderId']}/cancel").status_code == 202
    stopped = api.wait_render(cancelled["renderId"], {"cancelled", "completed", "failed"})
    assert stopped["state"] == "cancelled"
    assert [info.key for info in store.list(f"videos/{other.lessons[0]}/")] == []
    assert not store.exists(killed["outputPath"])


def test_a_store_outage_is_a_503_for_the_web_and_a_retried_render(
    app, api, factory, store, processes, s3_server
):
    job = s3_job(app, factory, store, lessons=2)
    queued = api.generate(job.id, job.lessons[1])
    s3_server.pause()  # SIGSTOP: the store accepts connections and never answers
    try:
        # The web says when to come back (checking a lesson before queueing reads the store).
        body = {"jobId": job.id, "lessonPath": job.lessons[0]}
        refused = api.post_json("/video-transform/generate-video", body)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert refused.json["error"] == "Service Unavailable" and "media store" in refused.json["message"]
        # A render that cannot fetch its lesson fails as transient and is queued again.
        processes.worker(RENDER_RETRY_INTERVALS="4")
        failed = api.wait_render(queued["renderId"], {"failed", "completed", "cancelled"}, timeout=30)
        assert failed["state"] == "failed" and failed["error"]["kind"] == "transient"
        assert failed["error"]["message"].startswith("The media store could not be reached")
        # The status keeps answering: it never asks the store.
        status = api.get(f"/video-transform/{job.id}/video-generation-status")
        assert status.status_code == 200
        [retry] = status.json["activeRenders"]
    finally:
        s3_server.resume()
    done = api.wait_render(retry["renderId"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed" and done["attempt"] == 2
    assert store.exists(done["outputPath"])
    assert api.get(done["videoUrl"]).status_code == 302
    s3_server.pause()
    try:  # a download, to an API client and to a browser
        down = api.get(done["videoUrl"])
        assert down.status_code == 503 and down.headers["Retry-After"] == "30"
        assert "media store" in down.json["message"]
        page = api.get(done["videoUrl"], Accept="text/html")
        assert page.status_code == 503 and "media store" in page.get_data(as_text=True)
    finally:
        s3_server.resume()


def test_discovery_and_the_check_before_queueing_read_the_store(app, api, factory, store):
    job = s3_job(app, factory, store, lessons=1, segments=2)
    detail = api.get(f"/api/jobs/{job.id}").json
    [lesson] = detail["lessons"]
    assert lesson["path"] == job.lessons[0] and lesson["problem"] is None and lesson["durationSeconds"] == 1.0
    # A lesson added to the bucket appears on a rescan; a folder that is no lesson does not.
    factory.lessons(job.video_id, 1, start=2)
    (Path(app.config["LESSONS_ROOT"]) / job.video_id / "notes").mkdir()
    (Path(app.config["LESSONS_ROOT"]) / job.video_id / "notes" / "todo.txt").write_text("x")
    to_store(app, store, job.video_id)
    rescan = api.post(f"/api/jobs/{job.id}/rescan").json
    assert rescan["added"] == 1
    paths = [item["path"] for item in rescan["job"]["lessons"]]
    assert paths == [f"{job.video_id}/lesson_{n}" for n in (1, 2)]
    # A file gone from the store is refused before the render is queued, with the reason.
    store.delete(f"lessons/{job.lessons[0]}/audio/2.wav")
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    refused = api.post_json("/video-transform/generate-video", body)
    assert refused.status_code == 422 and "segments[1].audio" in refused.json["message"]
    # The copies made to read them are gone; their files stay in the render cache, bounded.
    cache = Path(app.config["RENDER_CACHE_DIR"])
    assert list((cache / "tmp").iterdir()) == []
    assert list(cache.rglob("*.obj"))
    # A video with nothing in the store says so.
    empty = factory.job("Course A", lessons=0)
    assert empty.lessons == []
    page = api.get(f"/jobs/{empty.id}", Accept="text/html").get_data(as_text=True)
    assert "No lesson folder for this video yet" in page


@pytest.mark.browser
def test_the_player_plays_seeks_and_shows_captions_from_the_store(
    app, api, factory, store, processes, browser, live_server
):
    """In a real browser, under the pages' Content-Security-Policy: the video comes from the store
    (a presigned URL the app redirects to), plays and seeks; its captions come through the app."""
    video_id = uuid.uuid4().hex[:11]
    [lesson] = factory.lessons(video_id, 1, segments=2, seconds=1.0, fps=10)
    manifest_path = Path(app.config["LESSONS_ROOT"]) / lesson / "lesson.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["captions"] = {"language": "en"}
    manifest["segments"][1]["captions"] = [{"start": 0.1, "end": 0.8, "text": "Seen from the store"}]
    manifest_path.write_text(json.dumps(manifest))
    to_store(app, store, video_id)
    job = factory.job("Course A", video_id=video_id, lessons=0)
    processes.worker()
    done = api.wait_render(api.generate(job.id, lesson)["renderId"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    redirected = api.get(done["videoUrl"])
    assert redirected.status_code == 302 and redirected.headers["Location"].startswith(store_origin(app))

    page = browser.new_page()
    blocked, fetched = [], []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and blocked.append(msg.text))
    page.on("response", lambda response: fetched.append((response.url, response.status)))
    page.goto(f"{live_server}/login?next=/jobs/{job.id}")
    page.fill("input[name=email]", "s3@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action^='/login'] button[type=submit]")
    page.wait_for_selector("video track[kind=captions]", state="attached")
    state = wait_in_page(
        page,
        """() => { const v = document.querySelector('video');
          const t = [...v.textTracks].find(t => t.kind === 'captions');
          return v.readyState >= 1 && t && t.cues && t.cues.length
            ? {duration: v.duration, mode: t.mode, text: t.cues[0].text} : null; }""",
        timeout=20,
        what="the video's metadata and its captions",
    )
    assert state["duration"] == pytest.approx(2.0, abs=0.1)
    assert state["mode"] == "showing" and state["text"] == "Seen from the store"
    seeked = page.evaluate(
        """() => new Promise(resolve => {
          const v = document.querySelector('video');
          v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
          v.currentTime = 1.5;
        })"""
    )
    assert abs(seeked - 1.5) <= 0.1
    page.evaluate("async () => { const v = document.querySelector('video'); v.muted = true; v.play(); }")
    wait_in_page(page, "() => document.querySelector('video').ended", timeout=10, what="playback to the end")
    assert page.evaluate("() => document.querySelector('video').error") is None
    # The bytes came from the store (ranges: 206), not through the app.
    assert any(url.startswith(store_origin(app)) and status in (200, 206) for url, status in fetched), fetched
    assert blocked == []
    page.close()


def store_origin(app) -> str:
    return app.extensions["store_origin"]


def test_a_store_that_refuses_is_a_clear_502_not_a_server_error(app, api, factory, store, s3_server):
    """A store that answers but refuses (its bucket gone, the keys revoked: a setting to fix,
    not a passing fault) gets a clear answer naming the store, never a 500."""
    job = s3_job(app, factory, store, lessons=1)
    app.extensions["store"] = S3Store("lvt-no-such-bucket", prefix="gone/")
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    refused = api.post_json("/video-transform/generate-video", body)
    assert refused.status_code == 502, refused.get_data(as_text=True)
    assert refused.json["error"] == "Bad Gateway" and "media store refused" in refused.json["message"]
    assert "lvt-no-such-bucket" not in refused.json["message"]  # what it said is logged, not shown
    package = api.get(f"/api/jobs/{job.id}/lessons/1/package")  # a download reads the store too
    assert package.status_code == 502 and "media store refused" in package.json["message"]
    page = api.get(f"/jobs/{job.id}/lessons/1/package", Accept="text/html")
    assert page.status_code in (404, 502) and "Something went wrong" not in page.get_data(as_text=True)
