"""RQ entry points. Thin: they run in the worker's app context (`flask worker`) and call
the renderer and the render service. The original design's `onStatusUpdate(status, data)`
callback pattern is kept: the renderer reports progress, the callback records it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app
from rq import Retry, get_current_job
from rq.cron import CronScheduler
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from . import queue
from .extensions import db
from .models import Render, RenderState, utcnow
from .render import Cancelled, ManifestError, RenderError, RenderSettings, TransientRenderError
from .render import render_lesson as render_video
from .services import renders

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 1.0  # seconds between progress writes
CANCEL_CHECK_INTERVAL = 0.5  # seconds between cancel checks
HEARTBEAT_INTERVAL = 5.0  # seconds; the reaper declares a render lost after LOST_RENDER_SECONDS
REAP_INTERVAL = 10  # seconds between runs of the lost-render reaper


class RenderFailed(Exception):
    """What RQ records for a failed render: ids and the kind only.

    The RQ dashboard shows a job's exception unescaped, and a render's real reason may
    quote a lesson.json or a file name; that reason is on the Render row, shown by our pages.
    """

    def __init__(self, render_id: uuid.UUID, kind: str):
        super().__init__(f"render {render_id} failed ({kind}); its reason is on the render's record")


def render_settings(config) -> RenderSettings:
    return RenderSettings(
        preset=config["RENDER_PRESET"],
        crf=config["RENDER_CRF"],
        tune=config["RENDER_TUNE"] or None,
        processes=config["RENDER_PROCESSES"],
        cache_max_bytes=config["RENDER_CACHE_MAX_BYTES"],
        max_duration=config["LESSON_MAX_SECONDS"],
    )


class StatusUpdates:
    """The onStatusUpdate(status, data) callback of one render: progress at most once a
    second, cancel checks at most twice a second, a heartbeat from a thread of its own."""

    def __init__(self, render_id: uuid.UUID):
        self.render_id = render_id
        self._last_progress = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(db.engine,), daemon=True)

    def __call__(self, status: str, data: dict) -> None:
        if status == "rendering":
            now = time.monotonic()
            done, total = data["framesDone"], data["framesTotal"]
            if now - self._last_progress >= PROGRESS_INTERVAL or done >= total:
                self._last_progress = now
                renders.record_progress(self.render_id, done, total)

    def on_progress(self, frames_done: int, frames_total: int) -> None:
        self("rendering", {"framesDone": frames_done, "framesTotal": frames_total})

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_CHECK_INTERVAL:
            self._last_cancel_check = now
            self._cancelled = renders.cancel_requested(self.render_id)
        return self._cancelled

    def _beat(self, engine) -> None:
        # Its own connection: the session belongs to the task's thread. The heartbeat says
        # "this process is alive", even while the renderer is between progress reports.
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                with engine.begin() as conn:
                    conn.execute(
                        sa.update(Render)
                        .where(Render.id == self.render_id, Render.state == RenderState.RENDERING)
                        .values(heartbeat_at=utcnow())
                    )
            except sa.exc.SQLAlchemyError as exc:
                log.warning("heartbeat failed render_id=%s error=%s", self.render_id, exc)

    def __enter__(self):
        self._heartbeat.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._heartbeat.join(timeout=2)


def render_lesson(render_id: str):
    """Render one attempt (looked up by the RQ job, which outlives attempts it retries)."""
    rq_job = get_current_job()
    assignment = renders.begin(rq_job.id if rq_job else f"render-{render_id}")
    if assignment is None:
        return {"skipped": True}
    rid = assignment.render_id
    log.info("render started render_id=%s lesson=%s", rid, assignment.lesson_path)
    try:
        with StatusUpdates(rid) as updates:
            result = render_video(
                assignment.lesson_dir,
                assignment.output,
                on_progress=updates.on_progress,
                should_cancel=updates.should_cancel,
                cache_dir=Path(current_app.config["RENDER_CACHE_DIR"]),
                settings=render_settings(current_app.config),
            )
    except Cancelled:
        renders.mark_cancelled(rid)
        return {"renderId": str(rid), "state": "cancelled"}
    except ManifestError as exc:
        renders.fail(rid, "manifest", str(exc))
        raise RenderFailed(rid, "manifest") from None  # a bad lesson is never retried
    except TransientRenderError as exc:
        retried = renders.fail(rid, "transient", str(exc), requeue=True, same_rq_job=True)
        if retried is not None:
            log.info("render will be retried render_id=%s next=%s", rid, retried.id)
            config = current_app.config
            return Retry(max=config["RENDER_MAX_ATTEMPTS"], interval=config["RENDER_RETRY_INTERVALS"])
        raise RenderFailed(rid, "transient") from None
    except RenderError as exc:
        renders.fail(rid, exc.kind, str(exc))
        raise RenderFailed(rid, exc.kind) from None
    except JobTimeoutException:
        limit = rq_job.timeout if rq_job else "?"
        renders.fail(
            rid, "timeout", f"The render took longer than its time limit ({limit} s) and was stopped."
        )
        raise
    except Exception as exc:
        # Bugs: the user sees a sentence, the worker's log the traceback.
        log.exception("render crashed render_id=%s", rid)
        renders.fail(rid, "internal", f"The render stopped unexpectedly ({type(exc).__name__}).")
        raise RenderFailed(rid, "internal") from None
    renders.complete(rid, frames=result.frames, duration=result.duration, size_bytes=result.size_bytes)
    return {"renderId": str(rid), "state": "completed"}


def _render_id_of(rq_job) -> uuid.UUID | None:
    # The attempt RQ is running now: the newest one of this RQ job.
    render = db.session.scalars(
        sa.select(Render).where(Render.rq_job_id == rq_job.id).order_by(Render.attempt.desc())
    ).first()
    return render.id if render else None


def on_render_failed(rq_job, connection, exc_type=None, exc_value=None, traceback=None):
    """RQ failure callback: a job RQ found abandoned, or an exception the task did not record
    (the task records its own failures first, which makes this a no-op for them)."""
    render_id = _render_id_of(rq_job)
    if render_id is None:
        return
    if exc_type is not None and issubclass(exc_type, AbandonedJobError):
        renders.fail(render_id, "worker_lost", renders.WORKER_LOST, requeue=True)
    else:
        name = exc_type.__name__ if exc_type else "unknown error"
        renders.fail(render_id, "internal", f"The render stopped unexpectedly ({name}).")


def on_render_stopped(rq_job, connection):
    """RQ stopped-callback: the stop command killed the work horse (a cancel the render ignored)."""
    render_id = _render_id_of(rq_job)
    if render_id is not None:
        renders.mark_cancelled(render_id, "Cancelled; the worker was stopped.")


def reap_lost_renders():
    """Periodic: settle renders whose worker is gone (see services.renders.reap)."""
    counts = renders.reap()
    if any(counts.values()):
        # Lost workers deserve an operator's attention even with quiet logs.
        log.warning("reaper %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def register_cron(scheduler: CronScheduler, app: Flask) -> None:
    """Periodic jobs for `flask cron`."""
    scheduler.register(
        reap_lost_renders,
        queue_name=queue.MAINTENANCE_QUEUE,
        interval=REAP_INTERVAL,
        job_timeout=60,
        result_ttl=60,
        failure_ttl=24 * 3600,
    )
