"""GET /video-transform/<id>/video-generation-status: the original contract."""

import re

from .helpers import bearer

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_fresh_job_answers_the_contract(client, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=3)
    response = client.get(
        f"/video-transform/{job.id}/video-generation-status", headers=bearer(factory.token(user.email))
    )
    assert response.status_code == 200
    body = response.json
    assert list(body)[:6] == [
        "videoJobId",
        "videoGenerationStatus",
        "currentLesson",
        "generatedVideos",
        "totalLessons",
        "completedLessons",
    ]
    assert body["videoJobId"] == job.id
    assert body["videoGenerationStatus"] == "not_started"
    assert body["currentLesson"] is None
    assert body["generatedVideos"] == []
    assert body["totalLessons"] == 3
    assert body["completedLessons"] == 0
    assert body["activeRenders"] == []
    assert ISO_Z.match(body["updatedAt"])
    assert response.headers["Cache-Control"] == "private, no-cache"
