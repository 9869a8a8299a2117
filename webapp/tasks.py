"""RQ entry points. Thin: they run in the worker's app context (`flask worker`) and call the
renderer and the render services. RQ names them by dotted path (webapp/queue.py), so no
service imports this module.

The original design's `onStatusUpdate` callback is the renderer's `on_progress`: it goes
straight to `progress.record_progress`, with the rate of the last few seconds
(`progress.ProgressReporter`; the renderer already reports only twice a second).
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

from flask import Flask, current_app
from rq import Retry, get_current_job
from rq.cron import CronScheduler
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from . import queue
from .extensions import db
from .models import ErrorKind, Render
from .render import Cancelled, ManifestError, RenderError, RenderSettings, TransientRenderError
from .render import render_lesson as render_video
from .services import lifecycle, media, progress, recovery, storage, uploads, webhooks
from .storage import StoreError, StoreUnavailable

log = logging.getLogger(__name__)


class RenderFailed(Exception):
    """What RQ records for a failed render: ids and the kind only.

    The RQ dashboard shows a job's exception unescaped, and a render's real reason may
    quote a lesson.json or a file name; that reason is on the Render row, shown by our pages.
    """

    def __init__(self, render_id: uuid.UUID, kind: str):
        super().__init__(f"render {render_id} failed ({kind}). {_on_its_page(render_id)}")


def _on_its_page(render_id: uuid.UUID | None) -> str:
    """Where an operator reads a render's reason and starts it again: requeueing its RQ job in the
    dashboard renders nothing (the attempt it ran is over; the worker skips it)."""
    render = db.session.get(Render, render_id) if render_id else None
    page = f"its job's page, /jobs/{render.job_id}" if render else "its job's page"
    return f"Its reason is on {page}, where Retry starts a new attempt (requeueing this RQ job does not)."


def render_settings(config) -> RenderSettings:
    return RenderSettings(
        preset=config["RENDER_PRESET"],
        crf=config["RENDER_CRF"],
        tune=config["RENDER_TUNE"] or None,
        processes=config["RENDER_PROCESSES"],
        cache_max_bytes=config["RENDER_CACHE_MAX_BYTES"],
        max_duration=config["LESSON_MAX_SECONDS"],
    )


class Heartbeat:
    """A thread that says "this render's process is alive" every few seconds, even while the
    renderer is between progress reports (a long encode, a join)."""

    def __init__(self, render_id: uuid.UUID):
        self.render_id = render_id
        # Seconds between beats; the reaper declares a render lost after LOST_RENDER_SECONDS.
        self.interval = current_app.config["RENDER_HEARTBEAT_SECONDS"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(db.engine,), daemon=True)

    def _beat(self, engine) -> None:
        while not self._stop.wait(self.interval):
            progress.record_heartbeat(engine, self.render_id)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)


def _render(assignment: lifecycle.Assignment):
    """Render into the attempt's workspace (the store's files, or a fetched copy) and publish."""
    rid, config = assignment.render_id, current_app.config
    should_cancel = lambda: progress.cancel_requested(rid)  # noqa: E731
    cache_dir = Path(config["RENDER_CACHE_DIR"])
    with (
        Heartbeat(rid),
        media.workspace(assignment.lesson_path, assignment.output_key) as space,
    ):
        result = render_video(
            space.lesson_dir,
            space.output,
            on_progress=progress.ProgressReporter(rid),
            should_cancel=should_cancel,
            cache_dir=cache_dir,
            settings=render_settings(config),
        )
        media.publish(space, result, should_cancel)
    return result


def render_lesson(render_id: str):
    """Render one attempt (looked up by the RQ job, which outlives attempts it retries)."""
    rq_job = get_current_job()
    rq_job_id = rq_job.id if rq_job else queue.render_job_id(render_id)
    assignment = lifecycle.begin(rq_job_id)
    if assignment is None:  # its attempt is over (finished, failed or cancelled): nothing to render
        attempt = lifecycle.current_attempt(rq_job_id)
        return {"skipped": True, "reason": _on_its_page(attempt.id if attempt else None)}
    rid = assignment.render_id
    try:
        result = _render(assignment)
    except Cancelled:
        lifecycle.mark_cancelled(rid)
        return {"renderId": str(rid), "state": "cancelled"}
    except ManifestError as exc:
        lifecycle.fail(rid, ErrorKind.MANIFEST, str(exc))
        raise RenderFailed(rid, ErrorKind.MANIFEST) from None  # a bad lesson is never retried
    except (TransientRenderError, StoreUnavailable) as exc:  # storage that may come back
        retried = lifecycle.fail(rid, ErrorKind.TRANSIENT, str(exc), requeue=True, same_rq_job=True)
        if retried is not None:
            log.info("render will be retried render_id=%s next=%s", rid, retried.id)
            config = current_app.config
            return Retry(max=config["RENDER_MAX_ATTEMPTS"], interval=config["RENDER_RETRY_INTERVALS"])
        raise RenderFailed(rid, ErrorKind.TRANSIENT) from None
    except (RenderError, StoreError) as exc:
        # A store that refuses us (credentials, bucket) is this machine's setup, not the lesson's.
        kind = ErrorKind.of(exc.kind) if isinstance(exc, RenderError) else ErrorKind.ENVIRONMENT
        lifecycle.fail(rid, kind, str(exc))
        raise RenderFailed(rid, kind) from None
    except JobTimeoutException:
        limit = rq_job.timeout if rq_job else "?"
        message = f"The render took longer than its time limit ({limit} s) and was stopped."
        lifecycle.fail(rid, ErrorKind.TIMEOUT, message)
        raise
    except Exception as exc:
        # A bug: the user sees a sentence, the worker's log the traceback.
        log.exception("render crashed render_id=%s", rid)
        lifecycle.fail(rid, ErrorKind.INTERNAL, f"The render stopped unexpectedly ({type(exc).__name__}).")
        raise RenderFailed(rid, ErrorKind.INTERNAL) from None
    lifecycle.complete(
        rid,
        frames=result.frames,
        duration=result.duration,
        size_bytes=result.size_bytes,
        sidecars=_sidecars(result),
    )
    return {"renderId": str(rid), "state": "completed"}


def on_render_failed(rq_job, connection, exc_type=None, exc_value=None, traceback=None):
    """RQ failure callback: a job RQ found abandoned, or an exception the task did not record
    (the task records its own failures first, which makes this a no-op for them)."""
    render = lifecycle.current_attempt(rq_job.id)
    if render is None:
        return
    if exc_type is not None and issubclass(exc_type, AbandonedJobError):
        lifecycle.fail(render.id, ErrorKind.WORKER_LOST, lifecycle.WORKER_LOST, requeue=True)
    else:
        name = exc_type.__name__ if exc_type else "unknown error"
        lifecycle.fail(render.id, ErrorKind.INTERNAL, f"The render stopped unexpectedly ({name}).")


def on_render_stopped(rq_job, connection):
    """RQ stopped-callback: the stop command killed the work horse (a cancel the render ignored)."""
    render = lifecycle.current_attempt(rq_job.id)
    if render is not None:
        lifecycle.mark_cancelled(render.id, "Cancelled; the worker was stopped.")


def deliver_webhook(message_id: str, first_attempt: int = 1):
    """One delivery attempt of a webhook message; RQ retries it with backoff when it fails."""
    if not queue.claim_webhook_send(message_id):
        log.info("webhook attempt skipped: a redelivery replaced it message_id=%s", message_id)
        return {"messageId": message_id, "delivered": False, "replaced": True}
    attempt = first_attempt + queue.webhook_attempt() - 1
    try:
        delivered = webhooks.deliver(message_id, attempt)
    finally:
        queue.end_webhook_send(message_id)
    return {"messageId": message_id, "delivered": delivered is not None}


def reap_lost_renders():
    """Periodic: settle renders whose worker is gone (see services.recovery.reap)."""
    counts = recovery.reap()
    if any(counts.values()):
        # Lost workers deserve an operator's attention even with quiet logs.
        log.warning("reaper %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _sidecars(result) -> dict:
    """The files the renderer wrote beside the video, by kind (names only), for the Render row."""
    written = {"poster": result.poster, "chapters": result.chapters, "captions": result.captions}
    found = {kind: path.name for kind, path in written.items() if path is not None}
    if result.captions is not None and result.captions_language:
        found["language"] = result.captions_language
    return found


def sweep_uploads():
    """Periodic: remove staging folders of uploads that died half way, and temporary keys of
    uploads to the store that never finished (older than the longest render)."""
    removed = uploads.sweep_stale(Path(current_app.config["LESSONS_ROOT"]))
    temporaries = storage.sweep_temporaries()
    if removed or temporaries:
        log.info("upload staging swept folders=%s temporaries=%s", removed, temporaries)
    return removed + temporaries


def register_cron(scheduler: CronScheduler, app: Flask) -> None:
    """Periodic jobs for `flask cron`."""
    scheduler.register(
        sweep_uploads,
        queue_name=queue.MAINTENANCE_QUEUE,
        interval=3600,
        job_timeout=600,
        result_ttl=60,
        failure_ttl=24 * 3600,
    )
    scheduler.register(
        reap_lost_renders,
        queue_name=queue.MAINTENANCE_QUEUE,
        interval=app.config["REAP_INTERVAL_SECONDS"],
        job_timeout=60,
        result_ttl=60,
        failure_ttl=24 * 3600,
    )
