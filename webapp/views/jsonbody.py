"""Reading a JSON object from a request body, with the API's status codes."""

from __future__ import annotations

import json

from flask import abort, request
from werkzeug.exceptions import RequestEntityTooLarge


def read_object() -> dict:
    """The request's JSON object: 415 when not JSON, 413 when too large, 400 when malformed."""
    if not request.is_json:
        abort(415, description="Send the body as JSON with Content-Type: application/json.")
    limit = request.max_content_length
    if request.content_length is not None and limit is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    try:
        data = json.loads(request.get_data(cache=True) or b"")
    except (ValueError, UnicodeDecodeError):
        abort(400, description="The body is not valid JSON.")
    if not isinstance(data, dict):
        abort(400, description="The body must be a JSON object.")
    return data


def string_field(data: dict, name: str, *, required: bool = True, max_length: int = 500) -> str | None:
    """A string field of the body; 400 when missing (if required) or not a string."""
    value = data.get(name)
    if value is None:
        if required:
            abort(400, description=f"'{name}' is required.")
        return None
    if not isinstance(value, str):
        abort(400, description=f"'{name}' must be a string.")
    if required and not value.strip():
        abort(400, description=f"'{name}' must not be empty.")
    if len(value) > max_length:
        abort(400, description=f"'{name}' is longer than {max_length} characters.")
    return value
