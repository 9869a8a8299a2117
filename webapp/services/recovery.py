"""Recovery, run every few seconds by `flask cron`: renders whose worker is gone, cancels a
render ignores, and queued renders whose RQ job vanished (Redis lost its data)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from .. import queue
from ..extensions import db
from ..models import ErrorKind, Render, RenderState, utcnow
from . import attempts, lifecycle

log = logging.getLogger(__name__)

# How long a cancelled-but-still-running render may take to stop by itself before
# the RQ stop command is sent.
CANCEL_GRACE = timedelta(seconds=10)
# A queued render whose RQ job vanished (Redis restarted without its data) is
# enqueued again after this long.
LOST_QUEUE_GRACE = timedelta(seconds=60)


def _rendering_lost(render: Render, now: datetime, stale_after: timedelta) -> bool:
    last_sign = render.heartbeat_at or render.started_at or render.queued_at
    if now - last_sign > stale_after:
        return True
    # RQ already knows the job is over (e.g. the work horse died and its worker noticed).
    return now - last_sign > timedelta(seconds=5) and queue.job_status(render.rq_job_id) in queue.OVER


def _settle_rendering(now: datetime, counts: dict[str, int]) -> None:
    stale_after = timedelta(seconds=current_app.config["LOST_RENDER_SECONDS"])
    rendering = list(db.session.scalars(sa.select(Render).where(Render.state == RenderState.RENDERING)))
    db.session.rollback()
    for render in rendering:
        if _rendering_lost(render, now, stale_after):
            if render.cancel_requested_at is not None:
                lifecycle.mark_cancelled(render.id, "Cancelled; the worker stopped before confirming.")
            else:
                lifecycle.fail(render.id, ErrorKind.WORKER_LOST, lifecycle.WORKER_LOST, requeue=True)
            # Free the course slot the dead job holds in RQ now, not when RQ notices (~90 s).
            queue.abandon_job(render.rq_job_id)
            counts["lost"] += 1
        elif render.cancel_requested_at is not None and now - render.cancel_requested_at > CANCEL_GRACE:
            counts["stopped"] += queue.stop_job(render.rq_job_id)


def _requeue_vanished(now: datetime, counts: dict[str, int]) -> None:
    queued = list(
        db.session.scalars(
            sa.select(Render).where(
                Render.state == RenderState.QUEUED, Render.queued_at < now - LOST_QUEUE_GRACE
            )
        )
    )
    db.session.rollback()
    for render in queued:
        status = queue.job_status(render.rq_job_id)
        if status is None:
            try:
                render.rq_job_id = attempts.enqueue(render)
                db.session.commit()
                counts["requeued"] += 1
            except queue.Unavailable:
                db.session.rollback()
        elif status in queue.DROPPED:
            lifecycle.fail(render.id, ErrorKind.QUEUE, f"The queue dropped this render ({status}).")


def reap(now: datetime | None = None) -> dict[str, int]:
    """Settle renders whose worker is gone, stop cancelled ones that ignore the request, and
    re-enqueue queued renders whose RQ job vanished. Returns counts of what was done."""
    now = now or utcnow()
    counts = {"lost": 0, "stopped": 0, "requeued": 0}
    _settle_rendering(now, counts)
    _requeue_vanished(now, counts)
    queue.release_abandoned_jobs()
    return counts
