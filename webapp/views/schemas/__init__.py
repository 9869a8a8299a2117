"""The JSON API's shapes, as marshmallow schemas: each one validates a request or serialises a
response, and flask-smorest writes /openapi.json from the same schemas.

By concern: base (building blocks; Error, tokens, Health), renders, jobs, webhooks. Every
schema is importable from here (`from ..views import schemas as s; s.RenderSchema`).
"""

from .base import (
    UUID_FORMAT,
    ErrorSchema,
    Health,
    Schema,
    Timestamp,
    TokenRequest,
    TokenResponse,
    plain_text,
    text,
    whole,
)
from .jobs import (
    CreateJobRequest,
    DeleteJobQuery,
    JobDetail,
    JobDetailSchema,
    JobListQuery,
    JobPage,
    JobSchema,
    LessonSchema,
    RenameJobRequest,
    RescanResult,
    UploadFiles,
    UploadQuery,
    UploadResult,
)
from .renders import (
    STATUSES,
    ActiveRender,
    GenerateAllResponse,
    GeneratedVideo,
    GenerateVideoRequest,
    GenerateVideoResponse,
    GenerationStatus,
    RenderError,
    RenderSchema,
    Skipped,
)
from .webhooks import DeliverySchema, QueuedSendSchema, WebhookCreated, WebhookRequest, WebhookSchema

__all__ = [
    "STATUSES",
    "UUID_FORMAT",
    "ActiveRender",
    "CreateJobRequest",
    "DeleteJobQuery",
    "DeliverySchema",
    "ErrorSchema",
    "GenerateAllResponse",
    "GenerateVideoRequest",
    "GenerateVideoResponse",
    "GeneratedVideo",
    "GenerationStatus",
    "Health",
    "JobDetail",
    "JobDetailSchema",
    "JobListQuery",
    "JobPage",
    "JobSchema",
    "LessonSchema",
    "QueuedSendSchema",
    "RenameJobRequest",
    "RenderError",
    "RenderSchema",
    "RescanResult",
    "Schema",
    "Skipped",
    "Timestamp",
    "TokenRequest",
    "TokenResponse",
    "UploadFiles",
    "UploadQuery",
    "UploadResult",
    "WebhookCreated",
    "WebhookRequest",
    "WebhookSchema",
    "plain_text",
    "text",
    "whole",
]
