"""Webhooks: an endpoint registered for a course's events, and its delivery log."""

from __future__ import annotations

from marshmallow import fields, validate

from ...models import WEBHOOK_EVENTS
from .base import ONE_COURSE_HELP, Schema, Timestamp, text, whole


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
        strict=True,
        load_default=None,
        metadata={"description": ONE_COURSE_HELP},
    )


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


class QueuedSendSchema(Schema):
    messageId = fields.String(
        attribute="message_id", required=True, metadata={"description": "Its webhook-id header"}
    )
    event = fields.String(required=True)
    attempt = fields.Integer(required=True, metadata={"description": "As the delivery log will number it"})
