"""The time left of a render: its rate over the last few seconds, and before it has one, the
speed of past renders of similar length (webapp/services/estimates.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from webapp.extensions import db
from webapp.models import Render, VideoJob, utcnow
from webapp.services import estimates, lifecycle, progress, renders, summary


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_is_that_of_the_last_few_seconds():
    clock = Clock()
    rate = estimates.ProgressRate(window=5.0, clock=clock)
    assert rate.add(0) is None  # the renderer starts
    clock.now += 3.0  # and prepares for 3 s: none of that is rendering speed
    assert rate.add(30) is None  # one report after the first frame: nothing to measure from yet
    clock.now += 0.5
    assert rate.add(60) == pytest.approx(60.0)
    # Slow for 10 s (10 frames a second), then fast (100 a second) for 6 s: the rate is the fast one.
    frames = 60
    for _ in range(20):
        clock.now += 0.5
        frames += 5
        rate.add(frames)
    for _ in range(11):
        clock.now += 0.5
        frames += 50
        last = rate.add(frames)
    assert last == pytest.approx(100.0)
    # A stall (no new frame over the whole window) has no rate.
    for _ in range(12):
        clock.now += 0.5
        last = rate.add(frames)
    assert last is None


@pytest.fixture
def job(factory):
    return factory.job("Course A", lessons=3)


def _job(job) -> VideoJob:
    return db.session.get(VideoJob, uuid.UUID(job.id))


def _start(app, job, lesson: int, started_seconds_ago: float) -> uuid.UUID:
    """A rendering attempt of the lesson, started that long ago (before any progress report)."""
    with app.app_context():
        render = renders.generate(None, _job(job), job.lessons[lesson])
        assert lifecycle.begin(render.rq_job_id) is not None
        row = db.session.get(Render, render.id)
        row.started_at = utcnow() - timedelta(seconds=started_seconds_ago)
        db.session.commit()
        return render.id


def _active(app, job) -> dict:
    with app.app_context():
        (active,) = summary.status(_job(job)).as_json()["activeRenders"]
        return active


def test_the_first_reports_do_not_count_the_set_up_time(app, job):
    """Set-up took 2 s; then 150 frames went by in half a second. Measured since the start, 420
    frames left would take 6 s (and the first report of a 2 s render once read 3:34); at the
    recent rate they take about 1.4 s."""
    render_id = _start(app, job, 0, started_seconds_ago=2.5)
    clock = Clock()
    with app.app_context():
        report = progress.ProgressReporter(render_id)
        report.rate.clock = clock
        report(0, 600)
        clock.now += 2.0
        report(30, 600)
        assert db.session.get(Render, render_id).frames_per_second is None
        clock.now += 0.5
        report(180, 600)
        assert db.session.get(Render, render_id).frames_per_second == pytest.approx(300.0)
    active = _active(app, job)
    assert active["framesDone"] == 180 and active["etaSeconds"] == 1


def _past_render(app, job, lesson: int, frames: int, seconds: float) -> None:
    """A completed render of `frames` frames that took `seconds` from start to finish."""
    render_id = _start(app, job, lesson, started_seconds_ago=0)
    with app.app_context():
        lifecycle.complete(render_id, frames=frames, duration=frames / 10, size_bytes=100)
        row = db.session.get(Render, render_id)
        row.started_at = row.finished_at - timedelta(seconds=seconds)
        db.session.commit()


def test_before_any_report_past_renders_of_similar_length_tell(app, job):
    with app.app_context():
        queued = renders.generate(None, _job(job), job.lessons[2])
        frames = queued.frames_total
        assert frames  # the manifest's frame count, known when the render is queued
        renders.cancel(queued)
    # Similar lengths at 1, 1.25 and 0.8 frames a second (median 1: the lesson takes `frames` s);
    # a far longer render, much faster per frame, does not count.
    for seconds in (frames / 1.0, frames / 1.25, frames / 0.8):
        _past_render(app, job, 0, frames, seconds)
    _past_render(app, job, 1, frames * 100, 1.0)
    _start(app, job, 2, started_seconds_ago=2)
    active = _active(app, job)
    assert active["framesDone"] == 0
    assert active["etaSeconds"] == pytest.approx(frames - 2, abs=1)


def test_no_estimate_without_a_rate_or_a_past(app, job):
    _start(app, job, 0, started_seconds_ago=3)
    assert _active(app, job)["etaSeconds"] is None
