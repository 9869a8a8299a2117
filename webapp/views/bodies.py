"""Request bodies: JSON calls and small forms are capped at MAX_CONTENT_LENGTH, the few larger
forms (LARGE_FORMS) at their own size and number of parts; the endpoints that take a lesson
package accept up to UPLOAD_MAX_BYTES, spooled to a file beside the lessons
(never held in memory, never in a /tmp that may be RAM).

A package POST is admitted before anything reads its body (the CSRF check reads forms, the
API's parser reads files), so nothing of a package that is going to be refused is written
anywhere: its declared size (413), the job's course scope (404), its content type (415), the
disk space left beside the lessons (507) and the uploads the same user has in flight
(UPLOAD_MAX_CONCURRENT, 429; services/admission.py). A stranger's upload is not read either:
the view answers 401 first. (The web server may still take in and drop what the client goes on
sending after the refusal, as HTTP/1.1 servers do to let the client read the answer.)
"""

from __future__ import annotations

import flask
from flask import Flask, abort, current_app, g, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests

from ..render.limits import MAX_MANIFEST_BYTES
from ..services import access, admission, lesson_words, uploads
from .errors import handle_http_error, size_of

# Endpoints whose body is a lesson package (multipart/form-data, field "package"), or one file
# of a lesson (field "file").
UPLOAD_ENDPOINTS = {
    "api.upload_lessons": "package",
    "pages.upload_lessons": "package",
    "lesson_files.put": "file",
    "api.put_lesson_file": "file",
}

# Forms larger than MAX_CONTENT_LENGTH: {endpoint: (most bytes, most parts)}. A lesson's words
# (services/lesson_words.py) are at most lesson.json's size, sent as multipart/form-data.
LARGE_FORMS = {"lesson_files.save_words": (2 * MAX_MANIFEST_BYTES, lesson_words.MAX_FIELDS + 8)}


class _Spooled:
    """The file a package is spooled to; each write keeps the upload's slot alive."""

    def __init__(self, file, slot: admission.Slot):
        self._file, self._slot = file, slot

    def write(self, data) -> int:
        self._slot.touch()
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


class SpoolBesideLessons(flask.Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self.endpoint in UPLOAD_ENDPOINTS:
            slot = g.get("upload_slot")
            file = uploads.spool_file()
            return _Spooled(file, slot) if slot is not None else file
        return super()._get_file_stream(total_content_length, content_type, filename, content_length)


class InsufficientStorage(HTTPException):
    code = 507  # Insufficient Storage

    def get_headers(self, environ=None, scope=None):
        return [*super().get_headers(environ, scope), ("Retry-After", str(admission.DISK_RETRY_AFTER))]


def _admit_package() -> None:
    """Before anything reads the body: refuse what would be refused anyway, take an upload slot
    for the user, and raise the body's cap for the package."""
    if request.endpoint not in UPLOAD_ENDPOINTS or request.method != "POST":
        return
    cap = current_app.config["UPLOAD_MAX_BYTES"]
    if request.content_length is not None and request.content_length > cap + 64 * 1024:
        abort(413, _cap_message())
    if not current_user.is_authenticated:
        return  # login_required answers 401 without reading the body
    access.get_job_or_404((request.view_args or {}).get("job_id", ""), current_user)
    if request.mimetype != "multipart/form-data":
        field = UPLOAD_ENDPOINTS[request.endpoint]
        abort(415, f"Send the {field} as multipart/form-data, in a field named '{field}'.")
    try:
        admission.check_disk_space(request.content_length)
    except admission.DiskFull as exc:
        raise InsufficientStorage(exc.message) from None
    try:
        g.upload_slot = admission.take_slot(current_user)
    except admission.TooManyUploads as exc:
        raise TooManyRequests(exc.message, retry_after=admission.SLOT_RETRY_AFTER) from None
    request.max_content_length = cap + 64 * 1024  # room for the form's other fields


def _admit_large_form() -> None:
    caps = LARGE_FORMS.get(request.endpoint)
    # multipart only: werkzeug counts the parts of no other body (a urlencoded one could hold
    # hundreds of thousands of fields within the size)
    if (
        caps
        and request.method == "POST"
        and request.mimetype == "multipart/form-data"
        and current_user.is_authenticated
    ):
        request.max_content_length, request.max_form_parts = caps


def _cap_message() -> str:
    what = "A lesson package" if UPLOAD_ENDPOINTS[request.endpoint] == "package" else "A file"
    return f"{what} may be at most {size_of(current_app.config['UPLOAD_MAX_BYTES'])}."


def _end_package(_exc: BaseException | None = None) -> None:
    slot = g.pop("upload_slot", None)
    if slot is not None:
        admission.give_slot(slot)


def _too_large(exc: RequestEntityTooLarge):
    """werkzeug's own 413s, said in words: a body over its cap (named), or a form over werkzeug's
    limits on one field's size or the number of parts."""
    if exc.description != RequestEntityTooLarge.description:
        return handle_http_error(exc)  # ours, already in words
    length, cap = request.content_length, request.max_content_length
    if length is not None and cap is not None and length <= cap:
        message = "A form field is too large, or the form has too many parts."
    elif request.endpoint in UPLOAD_ENDPOINTS:
        message = _cap_message()
    else:
        message = f"The request body is larger than the {size_of(cap or 0)} allowed."
    return handle_http_error(RequestEntityTooLarge(message))


def init_app(app: Flask) -> None:
    app.request_class = type("Request", (SpoolBesideLessons, app.request_class), {})
    app.before_request(_admit_package)
    app.before_request(_admit_large_form)
    app.teardown_request(_end_package)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
