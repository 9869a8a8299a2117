"""Renders: queue one lesson or all, the generation status, and one render attempt."""

from __future__ import annotations

from marshmallow import fields, validate

from ...models import Render, RenderState, VideoGenerationStatus
from ..serializers import video_url
from .base import UUID_FORMAT, Schema, Timestamp, text, uuid_text


class GenerateVideoRequest(Schema):
    jobId = text(max_length=100, checks=[uuid_text], **UUID_FORMAT)
    lessonPath = text(max_length=500, example="henIVlCPVIY/lesson_1")
    outputFileName = text(
        required=False,
        max_length=1000,
        plain=False,  # any name outside the allowed characters is the contract's 422
        description="A file name ending in .mp4 of letters, digits, spaces, '.', '-' and '_', at most "
        "100 characters, no leading dot, no '..'; default final_video.mp4. Any other name answers 422.",
        example="final_video.mp4",
    )


class GenerateVideoResponse(Schema):
    success = fields.Boolean(required=True)
    outputPath = fields.String(
        required=True, metadata={"example": "videos/henIVlCPVIY/lesson_1/final_video.mp4"}
    )
    jobId = fields.UUID(required=True)
    videoGenerationStatus = fields.Enum(
        VideoGenerationStatus, by_value=True, required=True, metadata={"type": "string"}
    )
    currentLesson = fields.String(required=True)
    renderId = fields.UUID(required=True)
    statusUrl = fields.String(required=True)


class GeneratedVideo(Schema):
    lessonPath = fields.String(required=True)
    outputPath = fields.String(required=True)
    generatedAt = fields.String(required=True, metadata={"format": "date-time"})
    success = fields.Boolean(required=True)
    error = fields.String(metadata={"description": "Why it failed (failed attempts only)"})
    captionsPath = fields.String(metadata={"description": "The WebVTT captions beside the video, if any"})
    posterPath = fields.String(metadata={"description": "The poster (JPEG) beside the video"})


class ActiveRender(Schema):
    renderId = fields.UUID(required=True)
    lessonPath = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(["queued", "rendering"]))
    framesDone = fields.Integer(required=True)
    framesTotal = fields.Integer(required=True, allow_none=True)
    percent = fields.Float(required=True)
    etaSeconds = fields.Integer(required=True, allow_none=True)
    queuePosition = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Queued: its place in line, 1 = next"}
    )
    waitSeconds = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Queued: about how long until it starts, from past render speed"},
    )


STATUSES = [status.value for status in VideoGenerationStatus]


class GenerationStatus(Schema):
    videoJobId = fields.UUID(required=True)
    videoGenerationStatus = fields.String(required=True, validate=validate.OneOf(STATUSES))
    currentLesson = fields.String(required=True, allow_none=True)
    generatedVideos = fields.List(fields.Nested(GeneratedVideo), required=True)
    totalLessons = fields.Integer(required=True)
    completedLessons = fields.Integer(required=True)
    activeRenders = fields.List(fields.Nested(ActiveRender), required=True)
    updatedAt = fields.String(required=True, metadata={"format": "date-time"})


class RenderError(Schema):
    kind = fields.String(required=True)
    message = fields.String(required=True, allow_none=True)


class RenderSchema(Schema):
    renderId = fields.UUID(attribute="id", required=True)
    jobId = fields.UUID(attribute="job_id", required=True)
    lessonPath = fields.String(attribute="lesson.path", required=True)
    state = fields.Enum(RenderState, by_value=True, required=True, metadata={"type": "string"})
    attempt = fields.Integer(required=True)
    outputFileName = fields.String(attribute="output_file_name", required=True)
    outputPath = fields.String(attribute="output_path", required=True)
    framesDone = fields.Integer(attribute="frames_done", required=True)
    framesTotal = fields.Integer(attribute="frames_total", required=True, allow_none=True)
    percent = fields.Float(required=True)
    error = fields.Nested(RenderError, required=True, allow_none=True)
    cancelRequested = fields.Boolean(attribute="cancel_requested", required=True)
    requestedBy = fields.Method(
        "_requested_by", required=True, allow_none=True, metadata={"type": "string", "format": "email"}
    )
    queuedAt = Timestamp(attribute="queued_at", required=True)
    startedAt = Timestamp(attribute="started_at", required=True, allow_none=True)
    finishedAt = Timestamp(attribute="finished_at", required=True, allow_none=True)
    heartbeatAt = Timestamp(attribute="heartbeat_at", required=True, allow_none=True)
    durationSeconds = fields.Float(attribute="duration", required=True, allow_none=True)
    sizeBytes = fields.Integer(attribute="size_bytes", required=True, allow_none=True)
    videoUrl = fields.Method("_video_url", required=True, allow_none=True, metadata={"type": "string"})

    def _requested_by(self, render: Render) -> str | None:
        return render.requested_by.email if render.requested_by else None

    def _video_url(self, render: Render) -> str | None:
        return video_url(render)


class Skipped(Schema):
    lessonPath = fields.String(required=True)
    reason = fields.String(required=True)


class GenerateAllResponse(Schema):
    success = fields.Boolean(required=True)
    jobId = fields.UUID(required=True)
    renders = fields.List(fields.Nested(RenderSchema), required=True)
    skipped = fields.List(fields.Nested(Skipped), required=True)
    statusUrl = fields.String(required=True)
