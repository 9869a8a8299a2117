"""Queued renders show their place in line and when they should start, from past render speed;
when a render starts, every job still waiting gets its new place pushed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from webapp import status_channel
from webapp.extensions import db
from webapp.models import Render, RenderState, utcnow
from webapp.services import lifecycle
from webapp.views.filters import ordinal

from .helpers import bearer


@pytest.fixture
def staff(factory):
    user = factory.user("q@example.com", courses=["Course A", "Course B"])
    return bearer(factory.token(user.email))


def generate(client, headers, job, lesson: int = 0, name: str = "v.mp4"):
    response = client.post(
        "/video-transform/generate-video",
        json={"jobId": job.id, "lessonPath": job.lessons[lesson], "outputFileName": name},
        headers=headers,
    )
    assert response.status_code == 202, response.json
    return response.json


def active(client, headers, job) -> list[dict]:
    status = client.get(f"/video-transform/{job.id}/video-generation-status", headers=headers)
    return status.json["activeRenders"]


def test_places_in_line_across_jobs_and_courses(app, client, staff, factory):
    # 10 s lessons at 10 fps: 100 frames each.
    first = factory.job("Course A", lessons=2, seconds=10)
    second = factory.job("Course B", lessons=1, seconds=10)
    generate(client, staff, first, 0)
    generate(client, staff, second, 0)
    generate(client, staff, first, 1)
    assert [a["queuePosition"] for a in active(client, staff, first)] == [1, 3]
    assert [a["queuePosition"] for a in active(client, staff, second)] == [2]
    # No render has finished yet: no speed to estimate from.
    assert [a["waitSeconds"] for a in active(client, staff, first)] == [None, None]

    html = client.get(
        f"/video-transform/{first.id}/video-generation-status", headers={**staff, "HX-Request": "true"}
    ).get_data(as_text=True)
    assert "next in line" in html and "3rd in line" in html


def test_the_wait_comes_from_past_render_speed(app, client, staff, factory):
    job = factory.job("Course A", lessons=3, seconds=10)
    past = generate(client, staff, job, 0)
    with app.app_context():  # a past render: 100 frames in 10 s, 10 frames a second
        render = db.session.get(Render, uuid.UUID(past["renderId"]))
        render.state = RenderState.COMPLETED
        render.frames_total = render.frames_done = 100
        render.finished_at = utcnow()
        render.started_at = render.finished_at - timedelta(seconds=10)
        db.session.commit()
    generate(client, staff, job, 1)
    generate(client, staff, job, 2)
    waiting = active(client, staff, job)
    assert [a["queuePosition"] for a in waiting] == [1, 2]
    # The second waits for the first's 100 frames at 10 frames a second.
    assert [a["waitSeconds"] for a in waiting] == [0, 10]
    html = client.get(
        f"/video-transform/{job.id}/video-generation-status", headers={**staff, "HX-Request": "true"}
    ).get_data(as_text=True)
    assert "2nd in line · starts in about 0:10" in html


def test_a_render_that_starts_moves_the_line_for_other_jobs(app, client, staff, factory):
    first = factory.job("Course A", lessons=1)
    second = factory.job("Course B", lessons=1)
    started = generate(client, staff, first)
    generate(client, staff, second)
    with app.app_context():
        version_before, document = status_channel.current_status(uuid.UUID(second.id))
        assert '"queuePosition":2' in document
        rq_job_id = db.session.scalar(
            sa.select(Render.rq_job_id).where(Render.id == uuid.UUID(started["renderId"]))
        )
        assert lifecycle.begin(rq_job_id) is not None
        version_after, document = status_channel.current_status(uuid.UUID(second.id))
    assert version_after > version_before and '"queuePosition":1' in document


@pytest.mark.parametrize(
    "number,text",
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (102, "102nd"),
        (111, "111th"),
        (1001, "1,001st"),
    ],
)
def test_ordinals(number, text):
    assert ordinal(number) == text
