"""JSON shapes of the API's additive endpoints (the original two keep their own shapes)."""

from __future__ import annotations

from flask import url_for

from ..models import Lesson, Render, RenderState, VideoJob
from ..services.summary import iso


def status_url(job: VideoJob) -> str:
    return url_for("api.generation_status", job_id=job.id)


def video_url(render: Render, *, download: bool = False) -> str | None:
    if render.state != RenderState.COMPLETED:
        return None
    extra = {"download": 1} if download else {}
    return url_for(
        "api.download_video",
        job_id=render.job_id,
        video_path=render.output_path.removeprefix("videos/"),
        **extra,
    )


def sidecar_url(render: Render, kind: str) -> str | None:
    """Where the browser gets a video's poster, chapters or captions (same scope as the video)."""
    path = render.sidecar_path(kind) if render.state == RenderState.COMPLETED else None
    if path is None:
        return None
    return url_for("api.download_video", job_id=render.job_id, video_path=path.removeprefix("videos/"))


def render_json(render: Render) -> dict:
    return {
        "renderId": str(render.id),
        "jobId": str(render.job_id),
        "lessonPath": render.lesson.path,
        "state": render.state.value,
        "attempt": render.attempt,
        "outputFileName": render.output_file_name,
        "outputPath": render.output_path,
        "framesDone": render.frames_done,
        "framesTotal": render.frames_total,
        "percent": render.percent,
        "error": {"kind": render.error_kind, "message": render.error_message} if render.error_kind else None,
        "cancelRequested": render.cancel_requested_at is not None,
        "requestedBy": render.requested_by.email if render.requested_by else None,
        "queuedAt": iso(render.queued_at),
        "startedAt": iso(render.started_at),
        "finishedAt": iso(render.finished_at),
        "heartbeatAt": iso(render.heartbeat_at),
        "durationSeconds": render.duration,
        "sizeBytes": render.size_bytes,
        "videoUrl": video_url(render),
    }


def job_json(job: VideoJob) -> dict:
    data = job.video_generation_data or {}
    return {
        "id": str(job.id),
        "title": job.title,
        "videoId": job.video_id,
        "course": job.course.name,
        "createdAt": iso(job.created_at),
        "videoGenerationStatus": job.video_generation_status.value,
        "totalLessons": data.get("totalLessons", sum(1 for lesson in job.lessons if not lesson.missing)),
        "completedLessons": data.get("completedLessons", 0),
        "statusUrl": status_url(job),
    }


def lesson_json(lesson: Lesson, attempts: list[Render]) -> dict:
    return {
        "path": lesson.path,
        "number": lesson.number,
        "title": lesson.title,
        "durationSeconds": lesson.duration,
        "problem": lesson.problem,
        "missing": lesson.missing,
        "renders": [render_json(render) for render in attempts],
    }
