"""Request bodies: JSON calls and small forms are capped at MAX_CONTENT_LENGTH; the endpoints
that take a lesson package accept up to UPLOAD_MAX_BYTES, spooled to a file beside the lessons
(never held in memory, never in a /tmp that may be RAM)."""

from __future__ import annotations

import flask
from flask import Flask, abort, current_app, request

from ..services import uploads

# Endpoints whose body is a lesson package (multipart/form-data, field "package").
UPLOAD_ENDPOINTS = {"api.upload_lessons", "pages.upload_lessons"}


class SpoolBesideLessons(flask.Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self.endpoint in UPLOAD_ENDPOINTS:
            return uploads.spool_file()
        return super()._get_file_stream(total_content_length, content_type, filename, content_length)


def _size_of(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:g} {unit}" if unit == "bytes" else f"{count:.4g} {unit}"
        count /= 1024
    return str(count)


def _allow_packages() -> None:
    """Before anything reads the body (the CSRF check reads forms): raise the cap for uploads."""
    if request.endpoint not in UPLOAD_ENDPOINTS:
        return
    cap = current_app.config["UPLOAD_MAX_BYTES"]
    if request.content_length is not None and request.content_length > cap + 64 * 1024:
        abort(413, f"A lesson package may be at most {_size_of(cap)}.")
    request.max_content_length = cap + 64 * 1024  # room for the form's other fields


def init_app(app: Flask) -> None:
    app.request_class = type("Request", (SpoolBesideLessons, app.request_class), {})
    app.before_request(_allow_packages)
