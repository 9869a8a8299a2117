"""Request bodies: JSON calls and small forms are capped at MAX_CONTENT_LENGTH; the endpoints
that take a lesson package accept up to UPLOAD_MAX_BYTES, spooled to a file beside the lessons
(never held in memory, never in a /tmp that may be RAM).

A package is admitted before anything reads its body (the CSRF check reads forms, the API's
parser reads files), so nobody can make the server take in gigabytes it is going to refuse:
its declared size, the job's course scope (404), the uploads the same user has in flight
(UPLOAD_MAX_CONCURRENT, 429) and the disk space left beside the lessons (507). A stranger's
upload is not read either: the view answers 401 before touching the body.
"""

from __future__ import annotations

import flask
from flask import Flask, abort, current_app, g, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException, TooManyRequests

from ..services import access, uploads
from .errors import size_of

# Endpoints whose body is a lesson package (multipart/form-data, field "package").
UPLOAD_ENDPOINTS = {"api.upload_lessons", "pages.upload_lessons"}


class SpoolBesideLessons(flask.Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self.endpoint in UPLOAD_ENDPOINTS:
            return uploads.spool_file()
        return super()._get_file_stream(total_content_length, content_type, filename, content_length)


class _DiskFull(HTTPException):
    code = 507  # Insufficient Storage

    def get_headers(self, environ=None, scope=None):
        return [*super().get_headers(environ, scope), ("Retry-After", str(uploads.DISK_RETRY_AFTER))]


def _admit_package() -> None:
    """Before anything reads the body: refuse what would be refused anyway, take an upload slot
    for the user, and raise the body's cap for the package."""
    if request.endpoint not in UPLOAD_ENDPOINTS:
        return
    cap = current_app.config["UPLOAD_MAX_BYTES"]
    if request.content_length is not None and request.content_length > cap + 64 * 1024:
        abort(413, f"A lesson package may be at most {size_of(cap)}.")
    if not current_user.is_authenticated:
        return  # login_required answers 401 without reading the body
    access.get_job_or_404((request.view_args or {}).get("job_id", ""), current_user)
    if request.mimetype != "multipart/form-data":
        abort(415, "Send the package as multipart/form-data, in a field named 'package'.")
    try:
        uploads.check_disk_space(request.content_length)
    except uploads.DiskFull as exc:
        raise _DiskFull(exc.message) from None
    try:
        g.upload_slot = uploads.take_slot(current_user)
    except uploads.TooManyUploads as exc:
        raise TooManyRequests(exc.message, retry_after=uploads.SLOT_RETRY_AFTER) from None
    request.max_content_length = cap + 64 * 1024  # room for the form's other fields


def _end_package(_exc: BaseException | None = None) -> None:
    slot = g.pop("upload_slot", None)
    if slot is not None:
        uploads.give_slot(slot)


def init_app(app: Flask) -> None:
    app.request_class = type("Request", (SpoolBesideLessons, app.request_class), {})
    app.before_request(_admit_package)
    app.teardown_request(_end_package)
