"""The building blocks of the API's schemas (a base Schema that ignores unknown fields, text
and whole-number fields whose errors read like the API's, timestamps), and the shapes every part
shares: Error, the token exchange, Health.

Request schemas only check shape (presence, type, length); the rules (is this a lesson of the
job, is the file name allowed) stay in the services and answer 422, as the contract says.
"""

from __future__ import annotations

import uuid

import marshmallow as ma
from marshmallow import fields, validate

from ...services.summary import iso
from ..params import ID_MAX

UUID_FORMAT = {"format": "uuid"}
ONE_COURSE_HELP = "May be left out when you can use only one course (administrators: when only one exists)"


class Schema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # clients may send fields we do not know; they are ignored


def uuid_text(value: str) -> None:
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
        checks[:0] = [_not_blank, validate.Length(min=1, error="must not be empty.")]  # minLength: 1
    options = {"required": True} if required else {"load_default": None}
    return fields.String(
        validate=checks,
        error_messages={"required": "is required.", "null": "is required.", "invalid": "must be a string."},
        metadata=metadata,
        **options,
    )


def whole(lo: int = 1, hi: int = ID_MAX, *, strict: bool = False, **options) -> fields.Integer:
    """A whole number within [lo, hi]; anything else: "'name' must be a whole number from lo to hi.".
    `strict` for JSON bodies: only a JSON integer (not 1.9 or 1.0, which int() would make 1, nor
    a string); without it, for query strings, the text of one."""
    message = f"must be a whole number from {lo} to {hi}."
    return fields.Integer(
        strict=strict,
        validate=validate.Range(min=lo, max=hi, error=message),
        error_messages={"invalid": message, "too_large": message},
        **options,
    )


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


class TokenRequest(Schema):
    email = text(max_length=254, example="staff@example.com")
    password = text(max_length=1000)


class TokenResponse(Schema):
    accessToken = fields.String(required=True)
    tokenType = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expiresIn = fields.Integer(required=True)


class Health(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok", "degraded"]))
    database = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable", "not migrated"]))
    redis = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    renderWorkers = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Render workers registered in Redis (0: renders wait); null without Redis"},
    )
