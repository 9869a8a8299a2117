"""Jobs: the list and its query, create, rename, delete, rescan, lesson packages, and a job
with its lessons and their attempts."""

from __future__ import annotations

from dataclasses import dataclass

import flask_smorest.fields
from flask import url_for
from marshmallow import fields, validate

from ...models import VideoGenerationStatus, VideoJob
from ...services.summary import LessonView
from ..serializers import status_url
from .base import ONE_COURSE_HELP, Schema, Timestamp, plain_text, text, whole
from .renders import RenderSchema


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
        strict=True,
        load_default=None,
        metadata={"description": ONE_COURSE_HELP},
    )


class RenameJobRequest(Schema):
    title = text(max_length=1000, description="At most 200 characters once trimmed")


class UploadQuery(Schema):
    lesson = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=999_999),
        metadata={"description": "The package is the inside of this one lesson's folder (lesson_<n>)"},
    )


class UploadFiles(Schema):
    package = flask_smorest.fields.Upload(
        required=True,
        error_messages={
            "required": "is required: send the package as multipart/form-data, in a field named 'package'."
        },
        metadata={
            "description": "A zip of lesson_<n>/ folders (and the files they share), or of one lesson's files"
        },
    )


class DeleteJobQuery(Schema):
    deleteVideos = fields.Boolean(
        load_default=False, metadata={"description": "Also delete the finished videos' files"}
    )


class JobSchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    videoId = fields.String(attribute="video_id", required=True)
    course = fields.String(attribute="course.name", required=True)
    courseId = fields.Integer(attribute="course_id", required=True)
    createdAt = Timestamp(attribute="created_at", required=True)
    videoGenerationStatus = fields.Enum(
        VideoGenerationStatus,
        by_value=True,
        attribute="video_generation_status",
        required=True,
        metadata={"type": "string"},
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


class LessonFileSchema(Schema):
    path = fields.String(required=True, metadata={"description": "The file's path inside the lesson folder"})
    size = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Bytes; null for a link (not followed) or a missing file"},
    )
    uses = fields.List(
        fields.String(),
        required=True,
        metadata={"description": 'What lesson.json uses it for ("segment 2\'s picture"); empty when unused'},
    )
    missing = fields.Boolean(
        required=True, metadata={"description": "Named by lesson.json but not in the lesson"}
    )
    etag = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Its version, for If-Match when changing it; null for a link or a missing file"
        },
    )


class LessonFiles(Schema):
    files = fields.List(fields.Nested(LessonFileSchema), required=True)


class LessonFileQuery(Schema):
    path = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=255),
        metadata={
            "description": "Where the file goes in the lesson, e.g. images/2.png (default: its own name)"
        },
    )


class LessonFileUpload(Schema):
    file = flask_smorest.fields.Upload(
        required=True,
        error_messages={"required": "is required: send it as multipart/form-data, in a field named 'file'."},
        metadata={"description": "The file's content (pictures and sound are read by content, not name)"},
    )


class LessonFileResult(Schema):
    path = fields.String(required=True)
    added = fields.Boolean(required=True, metadata={"description": "A new file, not one replaced"})
    problem = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "What is still wrong with the lesson (it was broken before the change)"},
    )
    lesson = fields.Nested(LessonSchema, required=True)
