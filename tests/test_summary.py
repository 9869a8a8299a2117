"""The summary rules (README, *Status*), applied through the render services (no workers)."""

from __future__ import annotations

import threading
import uuid

import pytest

from webapp.extensions import db
from webapp.models import VideoJob
from webapp.services import lifecycle, renders, summary


@pytest.fixture
def job(factory):
    return factory.job("Course A", lessons=3)


class Driver:
    """Moves renders through their states the way workers do."""

    def __init__(self, app, job):
        self.app, self.job = app, job

    def _job(self):
        return db.session.get(VideoJob, uuid.UUID(self.job.id))

    def queue(self, lesson: int, name: str | None = None) -> uuid.UUID:
        with self.app.app_context():
            return renders.generate(None, self._job(), self.job.lessons[lesson], name).id

    def start(self, render_id):
        with self.app.app_context():
            assert lifecycle.begin(f"render-{render_id}") is not None

    def complete(self, render_id):
        with self.app.app_context():
            lifecycle.complete(render_id, frames=5, duration=0.5, size_bytes=100)

    def fail(self, render_id, message="boom"):
        with self.app.app_context():
            lifecycle.fail(render_id, "manifest", message)

    def cancel(self, render_id):
        with self.app.app_context():
            from webapp.models import Render

            renders.cancel(db.session.get(Render, render_id))

    def status(self) -> dict:
        with self.app.app_context():
            return summary.status(self._job()).as_json()


@pytest.fixture
def drive(app, job):
    return Driver(app, job)


def test_fresh_job_is_not_started(drive, job):
    s = drive.status()
    assert (s["videoGenerationStatus"], s["totalLessons"], s["completedLessons"]) == ("not_started", 3, 0)


def test_generating_while_queued_or_rendering_and_current_lesson(drive, job):
    r = drive.queue(0)
    s = drive.status()
    assert s["videoGenerationStatus"] == "generating" and s["currentLesson"] is None
    drive.start(r)
    assert drive.status()["currentLesson"] == job.lessons[0]
    drive.complete(r)
    s = drive.status()
    assert (
        s["videoGenerationStatus"] == "completed" and s["currentLesson"] == job.lessons[0]
    )  # kept after it ends
    assert s["completedLessons"] == 1


def test_failed_if_the_latest_attempt_of_any_lesson_failed(drive, job):
    ok, bad = drive.queue(0), drive.queue(1)
    for r in (ok, bad):
        drive.start(r)
    drive.complete(ok)
    drive.fail(bad, "segments[0].audio: file not found")
    s = drive.status()
    assert s["videoGenerationStatus"] == "failed" and s["completedLessons"] == 1
    assert [v["success"] for v in s["generatedVideos"]] == [True, False]
    assert s["generatedVideos"][1]["error"] == "segments[0].audio: file not found"
    assert "error" not in s["generatedVideos"][0]
    # A later success of that lesson clears the failure.
    again = drive.queue(1)
    drive.start(again)
    drive.complete(again)
    s = drive.status()
    assert s["videoGenerationStatus"] == "completed" and s["completedLessons"] == 2
    assert len(s["generatedVideos"]) == 3  # every finished attempt, oldest first


def test_rerendering_a_lesson_does_not_count_it_twice(drive):
    for _ in range(3):
        r = drive.queue(0)
        drive.start(r)
        drive.complete(r)
    s = drive.status()
    assert s["completedLessons"] == 1 and len(s["generatedVideos"]) == 3


def test_cancelled_attempts_count_as_not_generated(drive):
    r = drive.queue(0)
    drive.cancel(r)
    assert drive.status()["videoGenerationStatus"] == "not_started"
    done = drive.queue(0)
    drive.start(done)
    drive.complete(done)
    again = drive.queue(0)
    drive.cancel(again)
    s = drive.status()  # the cancelled re-render does not undo the finished video
    assert s["videoGenerationStatus"] == "completed" and s["completedLessons"] == 1
    assert len(s["generatedVideos"]) == 1


def test_two_workers_finishing_at_the_same_instant_both_appear(app, drive, job):
    ids = [drive.queue(0), drive.queue(1), drive.queue(2)]
    for r in ids:
        drive.start(r)
    barrier = threading.Barrier(3)
    errors = []

    def finish(render_id):
        try:
            with app.app_context():
                db.session.get(VideoJob, uuid.UUID(job.id))  # each worker holds its own (soon stale) copy
                barrier.wait(timeout=10)
                lifecycle.complete(render_id, frames=5, duration=0.5, size_bytes=100)
        except Exception as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(r,)) for r in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    s = drive.status()
    assert s["videoGenerationStatus"] == "completed"
    assert s["completedLessons"] == 3 and len(s["generatedVideos"]) == 3


def test_stored_summary_is_what_the_original_shape_reads(app, drive, job):
    r = drive.queue(0)
    drive.start(r)
    drive.complete(r)
    with app.app_context():
        stored = db.session.get(VideoJob, uuid.UUID(job.id))
        assert stored.video_generation_status.value == "completed"
        assert set(stored.video_generation_data) == {
            "currentLesson",
            "generatedVideos",
            "totalLessons",
            "completedLessons",
        }
