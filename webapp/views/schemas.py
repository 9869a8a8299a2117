"""The JSON API's shapes, as marshmallow schemas: each one validates a request or serialises a
response, and flask-smorest writes /openapi.json from the same schemas.

Request schemas only check shape (presence, type, length); the rules (is this a lesson of the
job, is the file name allowed) stay in the services and answer 422, as the contract says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import flask_smorest.fields
import marshmallow as ma
from flask import url_for
from marshmallow import fields, validate

from ..models import WEBHOOK_EVENTS, Render, RenderState, VideoGenerationStatus, VideoJob
from ..services.summary import LessonView, iso
from .params import ID_MAX
from .serializers import status_url, video_url

UUID_FORMAT = {"format": "uuid"}


class Schema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # clients may send fields we do not know; they are ignored


# --- requests ------------------------------------------------------------------------------


def _uuid_text(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise ma.ValidationError("must be a UUID.") from exc


def plain_text(value: str) -> None:
    """No NUL (a database cannot store it) and no lone surrogate (not Unicode text at all)."""
    if "\x00" in value:
        raise ma.ValidationError("must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ma.ValidationError("must be valid Unicode text.") from exc


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("must not be empty.")


def text(
    *, required: bool = True, max_length: int = 500, checks=(), plain: bool = True, **metadata
) -> fields.String:
    """A string field whose errors read like the API's: "'name' is required." etc. `plain`: refuse
    NUL and lone surrogates here (400); off where the service refuses the value itself (422)."""
    length = validate.Length(max=max_length, error=f"is longer than {max_length} characters.")
    checks = [*([plain_text] if plain else []), *checks, length]
    if required:
        checks.insert(0, _not_blank)
    options = {"required": True} if required else {"load_default": None}
    return fields.String(
        validate=checks,
        error_messages={"required": "is required.", "null": "is required.", "invalid": "must be a string."},
        metadata=metadata,
        **options,
    )


def whole(lo: int = 1, hi: int = ID_MAX, **options) -> fields.Integer:
    """A whole number within [lo, hi]; anything else: "'name' must be a whole number from lo to hi."."""
    message = f"must be a whole number from {lo} to {hi}."
    return fields.Integer(
        strict=False,
        validate=validate.Range(min=lo, max=hi, error=message),
        error_messages={"invalid": message, "too_large": message},
        **options,
    )


class GenerateVideoRequest(Schema):
    jobId = text(max_length=100, checks=[_uuid_text], **UUID_FORMAT)
    lessonPath = text(max_length=500, example="henIVlCPVIY/lesson_1")
    outputFileName = text(
        required=False,
        max_length=1000,
        plain=False,  # any name outside the allowed characters is the contract's 422
        description="A file name ending in .mp4 of letters, digits, spaces, '.', '-' and '_', at most "
        "100 characters, no leading dot, no '..'; default final_video.mp4. Any other name answers 422.",
        example="final_video.mp4",
    )


class TokenRequest(Schema):
    email = text(max_length=254, example="staff@example.com")
    password = text(max_length=1000)


class JobListQuery(Schema):
    course = whole(metadata={"description": "Course id"})
    status = fields.String(validate=validate.OneOf([s.value for s in VideoGenerationStatus]))
    q = fields.String(
        validate=[plain_text, validate.Length(max=200)], metadata={"description": "Title or video id"}
    )
    page = whole(1, 1_000_000, load_default=1)
    perPage = whole(1, 100, load_default=20)


class CreateJobRequest(Schema):
    video = text(max_length=500, description="A YouTube video id or URL", example="henIVlCPVIY")
    title = text(required=False, max_length=1000, description="At most 200 characters once trimmed")
    courseId = whole(
        load_default=None, metadata={"description": "May be left out when you belong to one course"}
    )


class RenameJobRequest(Schema):
    title = text(max_length=1000, description="At most 200 characters once trimmed")


class WebhookRequest(Schema):
    url = text(
        max_length=2000,
        description="http(s) URL on a public address",
        example="https://lms.example.com/hooks",
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)),
        load_default=None,
        validate=validate.Length(min=1, max=len(WEBHOOK_EVENTS)),
        metadata={"description": "Default: every event"},
    )
    courseId = whole(
        load_default=None, metadata={"description": "May be left out when you belong to one course"}
    )


class UploadQuery(Schema):
    lesson = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=999_999),
        metadata={"description": "The package is the inside of this one lesson's folder (lesson_<n>)"},
    )


class UploadFiles(Schema):
    package = flask_smorest.fields.Upload(
        required=True,
        metadata={
            "description": "A zip of lesson_<n>/ folders (and the files they share), or of one lesson's files"
        },
    )


class DeleteJobQuery(Schema):
    deleteVideos = fields.Boolean(
        load_default=False, metadata={"description": "Also delete the finished videos' files"}
    )


# --- responses -----------------------------------------------------------------------------


class Timestamp(fields.Field):
    """ISO 8601 UTC with a Z, as every timestamp of the API."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update(
            {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, ending in Z"}
        )
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


class ErrorSchema(Schema):
    success = fields.Boolean(required=True, metadata={"enum": [False]})
    statusCode = fields.Integer(required=True)
    error = fields.String(required=True, metadata={"description": "The HTTP reason phrase"})
    message = fields.String(required=True)
    jobId = fields.UUID(
        metadata={"description": "409 on creating a job: the video's job, when in your reach"}
    )
    lesson = fields.String(metadata={"description": "422 on a lesson package: the lesson at fault"})
    field = fields.String(metadata={"description": "422 on a lesson package: the lesson.json field at fault"})


class GenerateVideoResponse(Schema):
    success = fields.Boolean(required=True)
    outputPath = fields.String(
        required=True, metadata={"example": "videos/henIVlCPVIY/lesson_1/final_video.mp4"}
    )
    jobId = fields.UUID(required=True)
    videoGenerationStatus = fields.Enum(VideoGenerationStatus, by_value=True, required=True)
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
    state = fields.Enum(RenderState, by_value=True, required=True)
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


class JobSchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    videoId = fields.String(attribute="video_id", required=True)
    course = fields.String(attribute="course.name", required=True)
    courseId = fields.Integer(attribute="course_id", required=True)
    createdAt = Timestamp(attribute="created_at", required=True)
    videoGenerationStatus = fields.Enum(
        VideoGenerationStatus, by_value=True, attribute="video_generation_status", required=True
    )
    totalLessons = fields.Method("_total", required=True, metadata={"type": "integer"})
    completedLessons = fields.Method("_completed", required=True, metadata={"type": "integer"})
    statusUrl = fields.Method("_status_url", required=True, metadata={"type": "string"})
    url = fields.Method("_url", required=True, metadata={"type": "string"})

    def _total(self, job: VideoJob) -> int:
        data = job.video_generation_data or {}
        return data.get("totalLessons", sum(1 for lesson in job.lessons if not lesson.missing))

    def _completed(self, job: VideoJob) -> int:
        return (job.video_generation_data or {}).get("completedLessons", 0)

    def _status_url(self, job: VideoJob) -> str:
        return status_url(job)

    def _url(self, job: VideoJob) -> str:
        return url_for("api.get_job", job_id=job.id)


class LessonSchema(Schema):
    path = fields.String(attribute="lesson.path", required=True)
    number = fields.Integer(attribute="lesson.number", required=True)
    title = fields.String(attribute="lesson.title", required=True)
    durationSeconds = fields.Float(attribute="lesson.duration", required=True, allow_none=True)
    problem = fields.String(attribute="lesson.problem", required=True, allow_none=True)
    missing = fields.Boolean(attribute="lesson.missing", required=True)
    renders = fields.List(fields.Nested(RenderSchema), attribute="attempts", required=True)


@dataclass(frozen=True)
class JobDetail:
    """A job with its lessons and their attempts, as the API shows it."""

    job: VideoJob
    lesson_views: list[LessonView]

    def __getattr__(self, name: str):
        return getattr(self.job, name)


class JobDetailSchema(JobSchema):
    lessons = fields.List(fields.Nested(LessonSchema), attribute="lesson_views", required=True)


class JobPage(Schema):
    jobs = fields.List(fields.Nested(JobSchema), attribute="items", required=True)
    page = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    total = fields.Integer(required=True)


class Skipped(Schema):
    lessonPath = fields.String(required=True)
    reason = fields.String(required=True)


class GenerateAllResponse(Schema):
    success = fields.Boolean(required=True)
    jobId = fields.UUID(required=True)
    renders = fields.List(fields.Nested(RenderSchema), required=True)
    skipped = fields.List(fields.Nested(Skipped), required=True)
    statusUrl = fields.String(required=True)


class UploadResult(Schema):
    lessons = fields.List(
        fields.Nested(LessonSchema),
        required=True,
        metadata={"description": "The lessons the package installed (new or replaced)"},
    )
    job = fields.Nested(JobDetailSchema, required=True)


class RescanResult(Schema):
    added = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    removed = fields.Integer(required=True)
    message = fields.String(
        required=True, allow_none=True, metadata={"description": "Why no lessons were found, if none were"}
    )
    job = fields.Nested(JobDetailSchema, required=True)


class WebhookSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True)
    courseId = fields.Integer(attribute="course_id", required=True)
    course = fields.String(attribute="course.name", required=True)
    createdAt = Timestamp(attribute="created_at", required=True)


class WebhookCreated(WebhookSchema):
    secret = fields.String(
        required=True, metadata={"description": "The signing secret (whsec_…), shown only in this answer"}
    )


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    messageId = fields.String(attribute="message_id", required=True)
    event = fields.String(required=True)
    attempt = fields.Integer(required=True)
    statusCode = fields.Integer(attribute="status_code", required=True, allow_none=True)
    latencyMs = fields.Integer(attribute="latency_ms", required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    succeeded = fields.Boolean(required=True)
    createdAt = Timestamp(attribute="created_at", required=True)


class TokenResponse(Schema):
    accessToken = fields.String(required=True)
    tokenType = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expiresIn = fields.Integer(required=True)


class Health(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    database = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    redis = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
