"""Jobs over the API: create, rename, delete, rescan."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from webapp.services import jobs

from .helpers import bearer


def course_id(app, name: str) -> int:
    with app.app_context():
        return jobs.find_course(name).id


@pytest.fixture
def alice(factory):
    user = factory.user("alice@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


def test_create_a_job_in_your_only_course(app, client, factory, alice):
    video = uuid.uuid4().hex[:11]
    paths = factory.lessons(video, count=2, course="Course A")
    response = client.post(
        "/api/jobs",
        json={"video": f"https://www.youtube.com/watch?v={video}", "title": "  Greetings  "},
        headers=alice,
    )
    assert response.status_code == 201, response.json
    job = response.json
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["videoId"] == video and job["title"] == "Greetings" and job["course"] == "Course A"
    assert [lesson["path"] for lesson in job["lessons"]] == paths
    assert job["totalLessons"] == 2 and job["videoGenerationStatus"] == "not_started"
    assert client.get(response.headers["Location"], headers=alice).json["id"] == job["id"]


def test_create_needs_a_course_when_you_have_several(app, client, factory):
    user = factory.user(courses=["Course A", "Course B"])
    headers = bearer(factory.token(user.email))
    response = client.post("/api/jobs", json={"video": uuid.uuid4().hex[:11]}, headers=headers)
    assert response.status_code == 422 and "courseId" in response.json["message"]
    course_b = course_id(app, "Course B")
    created = client.post(
        "/api/jobs", json={"video": uuid.uuid4().hex[:11], "courseId": course_b}, headers=headers
    )
    assert (
        created.status_code == 201
        and created.json["courseId"] == course_b
        and created.json["course"] == "Course B"
    )


def test_create_refuses_a_course_not_yours_and_a_bad_video(app, client, factory, alice):
    factory.user(courses=["Course B"])  # course B exists, Alice is not in it
    course_b = course_id(app, "Course B")
    foreign = client.post(
        "/api/jobs", json={"video": uuid.uuid4().hex[:11], "courseId": course_b}, headers=alice
    )
    assert foreign.status_code == 422 and foreign.json["message"] == "courseId is not one of your courses."
    nowhere = client.post("/api/jobs", json={"video": uuid.uuid4().hex[:11], "courseId": 999}, headers=alice)
    assert nowhere.json == foreign.json  # an unknown course reads the same: nothing leaks
    bad = client.post("/api/jobs", json={"video": "not a video"}, headers=alice)
    assert bad.status_code == 422 and "YouTube" in bad.json["message"]
    missing = client.post("/api/jobs", json={}, headers=alice)
    assert missing.status_code == 400 and missing.json["message"] == "'video' is required."
    assert client.post("/api/jobs", data="x", headers=alice).status_code == 415


def test_a_video_with_a_job_is_409_with_its_id_only_when_in_reach(client, factory, alice):
    mine = factory.job("Course A", lessons=0)
    again = client.post("/api/jobs", json={"video": mine.video_id}, headers=alice)
    assert again.status_code == 409 and again.json["jobId"] == mine.id
    theirs = factory.job("Course B", lessons=0, title="Secret plans")
    clash = client.post("/api/jobs", json={"video": theirs.video_id}, headers=alice)
    assert clash.status_code == 409 and "jobId" not in clash.json
    assert "Course B" not in clash.get_data(as_text=True) and "Secret" not in clash.get_data(as_text=True)


def test_rename(client, factory, alice):
    job = factory.job("Course A", lessons=0)
    response = client.patch(f"/api/jobs/{job.id}", json={"title": "New name"}, headers=alice)
    assert response.status_code == 200 and response.json["title"] == "New name"
    assert client.patch(f"/api/jobs/{job.id}", json={"title": "x" * 201}, headers=alice).status_code == 422
    assert client.patch(f"/api/jobs/{job.id}", json={}, headers=alice).status_code == 400
    foreign = factory.job("Course B", lessons=0)
    assert client.patch(f"/api/jobs/{foreign.id}", json={"title": "Mine"}, headers=alice).status_code == 404


def test_delete_cancels_renders_and_keeps_videos_unless_asked(app, client, factory, alice, redis_url):
    job = factory.job("Course A", lessons=2)
    queued = client.post(
        "/video-transform/generate-video", json={"jobId": job.id, "lessonPath": job.lessons[0]}, headers=alice
    ).json
    videos = Path(app.config["VIDEOS_ROOT"])
    assert Queue("renders", connection=Redis.from_url(redis_url)).job_ids == [f"render-{queued['renderId']}"]
    response = client.delete(f"/api/jobs/{job.id}", headers=alice)
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"/api/jobs/{job.id}", headers=alice).status_code == 404
    assert client.get(f"/api/renders/{queued['renderId']}", headers=alice).status_code == 404
    assert Queue("renders", connection=Redis.from_url(redis_url)).job_ids == []
    # The video is free for a new job.
    again = client.post("/api/jobs", json={"video": job.video_id}, headers=alice)
    assert again.status_code == 201
    assert not any(videos.rglob("*.mp4"))


def test_delete_with_videos_removes_the_files(app, client, factory, alice, work):
    job = factory.job("Course A", lessons=1)
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    render = client.post("/video-transform/generate-video", json=body, headers=alice).json
    work()
    output = Path(app.config["VIDEOS_ROOT"]) / render["outputPath"].removeprefix("videos/")
    assert output.is_file()
    kept = factory.job("Course A", lessons=1)
    body = {"jobId": kept.id, "lessonPath": kept.lessons[0]}
    other = client.post("/video-transform/generate-video", json=body, headers=alice).json
    work()
    other_output = Path(app.config["VIDEOS_ROOT"]) / other["outputPath"].removeprefix("videos/")
    assert client.delete(f"/api/jobs/{kept.id}", headers=alice).status_code == 204
    assert other_output.is_file()  # without deleteVideos, the file stays
    assert client.delete(f"/api/jobs/{job.id}?deleteVideos=true", headers=alice).status_code == 204
    assert not output.exists()


def test_rescan(app, client, factory, alice):
    job = factory.job("Course A", lessons=1)
    factory.lessons(job.video_id, count=1, start=2)
    response = client.post(f"/api/jobs/{job.id}/rescan", headers=alice)
    assert response.status_code == 200
    assert response.json["added"] == 1 and response.json["message"] is None
    assert [lesson["number"] for lesson in response.json["job"]["lessons"]] == [1, 2]
    foreign = factory.job("Course B", lessons=0)
    assert client.post(f"/api/jobs/{foreign.id}/rescan", headers=alice).status_code == 404


def test_a_lesson_whose_folder_went_counts_in_neither_total_nor_completed(app, client, factory, alice, work):
    """Its render history stays (the lesson shows as missing), but "n of m generated" counts
    only lessons that are there: never more done than there are."""
    import shutil

    job = factory.job("Course A", lessons=2)
    for path in job.lessons:
        body = {"jobId": job.id, "lessonPath": path}
        client.post("/video-transform/generate-video", json=body, headers=alice)
    work()
    status = f"/video-transform/{job.id}/video-generation-status"
    data = client.get(status, headers=alice).json
    assert (data["completedLessons"], data["totalLessons"]) == (2, 2)
    shutil.rmtree(Path(app.config["LESSONS_ROOT"]) / job.lessons[1])
    assert client.post(f"/api/jobs/{job.id}/rescan", headers=alice).status_code == 200
    data = client.get(status, headers=alice).json
    assert (data["completedLessons"], data["totalLessons"]) == (1, 1)
    assert len(data["generatedVideos"]) == 2  # the history stays


def test_a_bad_video_is_named_before_a_missing_course(app, client, factory):
    user = factory.user("two@example.com", courses=["Course A", "Course B"])
    headers = bearer(factory.token(user.email))
    bad = client.post("/api/jobs", json={"video": "<script>"}, headers=headers)
    assert bad.status_code == 422 and "video" in bad.json["message"].lower(), bad.json
    missing = client.post("/api/jobs", json={"video": uuid.uuid4().hex[:11]}, headers=headers)
    assert (
        missing.status_code == 422
        and missing.json["message"] == "Give courseId: you can use several courses."
    )
