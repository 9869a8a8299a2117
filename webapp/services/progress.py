"""A rendering attempt's reports, sent by its worker: progress (with the recent rate the time
left is based on), a heartbeat that marks it alive, and whether it should stop.

Each is one small statement on the Render row, guarded by `state = rendering`, so a report
that arrives after the attempt finished changes nothing. The state changes themselves
(begin, complete, fail, cancel) are lifecycle.py's.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa

from ..extensions import db
from ..models import Render, RenderState, utcnow
from . import estimates, summary

log = logging.getLogger(__name__)


def record_progress(
    render_id: uuid.UUID, frames_done: int, frames_total: int, frames_per_second: float | None = None
) -> None:
    """Write progress, the recent rate and a heartbeat (the renderer reports about twice a second)."""
    job_id = db.session.scalar(
        sa.update(Render)
        .where(Render.id == render_id, Render.state == RenderState.RENDERING)
        .values(
            frames_done=frames_done,
            frames_total=frames_total,
            frames_per_second=frames_per_second,
            heartbeat_at=utcnow(),
        )
        .returning(Render.job_id)
    )
    if job_id is not None:
        summary.changed(job_id)  # the status document shows progress
    db.session.commit()


class ProgressReporter:
    """The renderer's progress callback for one attempt: records each report with the rate of
    the last few seconds (estimates.ProgressRate), which the page's time left is based on."""

    def __init__(self, render_id: uuid.UUID):
        self.render_id = render_id
        self.rate = estimates.ProgressRate()

    def __call__(self, frames_done: int, frames_total: int) -> None:
        record_progress(self.render_id, frames_done, frames_total, self.rate.add(frames_done))


def record_heartbeat(engine: sa.Engine, render_id: uuid.UUID) -> None:
    """Mark a rendering attempt alive, on a connection of its own (called from the heartbeat
    thread: the session belongs to the task's thread)."""
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(Render)
                .where(Render.id == render_id, Render.state == RenderState.RENDERING)
                .values(heartbeat_at=utcnow())
            )
    except sa.exc.SQLAlchemyError as exc:
        log.warning("heartbeat failed render_id=%s error=%s", render_id, exc)


def cancel_requested(render_id: uuid.UUID) -> bool:
    """Whether the worker should stop: a cancel was asked for, or the attempt is no longer rendering."""
    requested = db.session.execute(
        sa.select(Render.cancel_requested_at, Render.state).where(Render.id == render_id)
    ).one_or_none()
    db.session.rollback()  # end the read so the next one sees new commits (SQLite snapshot)
    return requested is None or requested[0] is not None or requested[1] != RenderState.RENDERING
