"""How long a render has left: from its own speed over the last few seconds of progress, and
before it has one, from the speed of past renders of similar length.

The rate since the render started misleads at first: the time before the first frame (reading
the lesson, preparing fonts and audio) counts as rendering time, so the first report of a 2 s
render once read "3:34 left". The worker that renders sees every progress report and keeps the
rate of its last few seconds (ProgressRate); the page divides the frames left by it.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa

from ..extensions import db
from ..models import Render, RenderState

RATE_WINDOW_SECONDS = 5.0
# Past renders that count as "of similar length": half to twice as many frames, the newest few.
SIMILAR_FRAMES_FACTOR = 2.0
PAST_RENDERS = 20


class ProgressRate:
    """Frames per second over the last few seconds of progress reports.

    The renderer reports 0 frames as it starts, then nothing or 0 while it prepares: the rate
    is measured only between reports that both come after the first frame, so the set-up time
    (of unknown length) never dilutes it. None until there are two such reports."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()
        self.first_frames: int | None = None

    def add(self, frames_done: int) -> float | None:
        """Note a report; the rate since the oldest report of the window (at least `window` s
        back once there are enough), or None while there is nothing to measure from."""
        now = self.clock()
        if self.first_frames is None:
            self.first_frames = frames_done
        if frames_done <= self.first_frames:
            return None  # still setting up
        self.samples.append((now, frames_done))
        # Drop a report only when the next one still opens a window of `window` seconds.
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        start, start_frames = self.samples[0]
        if now <= start or frames_done <= start_frames:
            return None
        return (frames_done - start_frames) / (now - start)


def past_speeds() -> list[tuple[int, float]]:
    """(frames, frames per second from start to finish) of the newest completed renders, set-up
    time included: what a render that has not reported yet can expect."""
    rows = db.session.execute(
        sa.select(Render.frames_total, Render.started_at, Render.finished_at)
        .where(
            Render.state == RenderState.COMPLETED,
            Render.frames_total > 0,
            Render.started_at.is_not(None),
            Render.finished_at.is_not(None),
        )
        .order_by(Render.finished_at.desc())
        .limit(5 * PAST_RENDERS)
    )
    speeds = []
    for frames, started, finished in rows:
        seconds = (finished - started).total_seconds()
        if seconds > 0:
            speeds.append((frames, frames / seconds))
    return speeds


def typical_speed(frames_total: int, speeds: Iterable[tuple[int, float]]) -> float | None:
    """The median speed of the newest past renders of similar length (None without any)."""
    similar = [
        fps
        for frames, fps in speeds
        if frames_total / SIMILAR_FRAMES_FACTOR <= frames <= frames_total * SIMILAR_FRAMES_FACTOR
    ][:PAST_RENDERS]
    return statistics.median(similar) if similar else None


def eta_seconds(render: Render, now: datetime, typical_fps: float | None) -> int | None:
    """Seconds left for a rendering attempt: the frames left at its recent rate, or, before it
    has one, the typical time of its length less the time it has run. None when unknown."""
    if render.state != RenderState.RENDERING or not render.frames_total:
        return None
    left = max(0, render.frames_total - render.frames_done)
    if render.frames_per_second:
        return round(left / render.frames_per_second)
    if typical_fps:
        elapsed = (now - render.started_at).total_seconds() if render.started_at else 0.0
        expected = render.frames_total / typical_fps
        return max(0, round(expected - elapsed))
    return None


# A queued render's place is counted among at most this many queued renders ahead of it.
PLACES_COUNTED = 1000


def queue_places(queued: list[Render], speeds: list[tuple[int, float]]) -> dict:
    """{render id: (place in line, seconds until it starts or None)} for queued renders.

    The line is every queued render of every course, oldest first (workers take them in that
    order, fair share aside). The wait is the frames still to render ahead of it (the renders
    rendering now and those queued before it) at the median speed of past renders, shared by
    as many renders as are rendering at once."""
    if not queued:
        return {}
    last = max(r.queued_at for r in queued)
    line = db.session.execute(
        sa.select(Render.id, Render.frames_total)
        .where(Render.state == RenderState.QUEUED, Render.queued_at <= last)
        .order_by(Render.queued_at, Render.attempt, Render.id)
        .limit(PLACES_COUNTED)
    ).all()
    rendering, frames_left = db.session.execute(
        sa.select(
            sa.func.count(Render.id),
            sa.func.coalesce(sa.func.sum(Render.frames_total - Render.frames_done), 0),
        ).where(Render.state == RenderState.RENDERING)
    ).one()
    speed = statistics.median(fps for _, fps in speeds) if speeds else None
    parallel = max(1, rendering)
    ahead = frames_left or 0
    places = {}
    for place, (render_id, frames) in enumerate(line, start=1):
        wait = round(ahead / speed / parallel) if speed else None
        places[render_id] = (place, wait)
        ahead += frames or 0
    return {r.id: places.get(r.id, (None, None)) for r in queued}
