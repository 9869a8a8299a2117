"""Lesson packages: a zip of lesson folders uploaded into a job, and a job's lessons (or one
lesson) downloaded as a zip in the same layout."""

from __future__ import annotations

from flask import abort, send_file, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import TooManyRequests

from ...services import access, admission, uploads
from .. import schemas as s
from ..bodies import InsufficientStorage
from .blueprint import bp, errors, job_detail, lessons_root


@bp.route("/api/jobs/<uuid:job_id>/lessons", methods=["POST"])
@login_required
@bp.arguments(s.UploadQuery, location="query")
@bp.arguments(s.UploadFiles, location="files")
@bp.response(201, s.UploadResult, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(operationId="uploadLessons")
@errors(400, 404, 409, 413, 415, 422, 429, 507)
def upload_lessons(query: dict, files: dict, job_id):
    """Upload a lesson package (multipart/form-data, field `package`).

    A zip of lesson_<n>/ folders, with the files they share (`../source.mp4`) beside them (or,
    with ?lesson=<n>, the files of one lesson). Every lesson.json is validated before anything
    changes; each lesson then replaces its folder whole, shared files their namesakes. 422 names
    the lesson and field at fault; 409 when a lesson (any lesson, for shared files) is being
    rendered. Before the body is read: 404 for a job outside your courses, 429 while you already
    have UPLOAD_MAX_CONCURRENT uploads in progress, 507 when the server's disk cannot take it.
    """
    job = access.get_job_or_404(job_id, current_user)
    installed = uploads.install_package(job, files["package"].stream, lessons_root(), lesson=query["lesson"])
    detail = job_detail(job)
    chosen = [view for view in detail.lesson_views if view.lesson.path in installed.lesson_paths]
    return {"lessons": chosen, "job": detail}, 201, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.route("/api/jobs/<uuid:job_id>/lessons/package", methods=["GET"])
@login_required
@bp.response(200, content_type="application/zip", description="The lesson folders as a zip")
@bp.doc(operationId="downloadLessons")
@errors(404, 429, 507)
def download_lessons(job_id):
    """The job's lesson folders as a zip (the layout an upload takes)."""
    job = access.get_job_or_404(job_id, current_user)
    return _package(job, None, f"{job.video_id}-lessons.zip")


@bp.route("/api/jobs/<uuid:job_id>/lessons/<int:number>/package", methods=["GET"])
@login_required
@bp.response(200, content_type="application/zip", description="The lesson's folder as a zip")
@bp.doc(operationId="downloadLesson")
@errors(404, 429, 507)
def download_lesson(job_id, number: int):
    """One lesson's folder as a zip."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = next((item for item in job.lessons if item.number == number and not item.missing), None)
    if lesson is None:
        abort(404, description="No such lesson in this job.")
    return _package(job, lesson, f"{job.video_id}-lesson_{number}.zip")


def _package(job, lesson, name: str):
    """Made whole beside the lessons, then sent: counted among the user's package transfers
    (services/admission.py) until its answer is sent."""
    try:
        admission.check_disk_space(0)
        slot = admission.take_download_slot(current_user)
    except admission.DiskFull as exc:
        raise InsufficientStorage(exc.message) from None
    except admission.TooManyDownloads as exc:
        raise TooManyRequests(exc.message, retry_after=admission.SLOT_RETRY_AFTER) from None
    give_back = admission.give_back(slot)
    try:
        file = uploads.lesson_package(job, lessons_root(), lesson)
    except FileNotFoundError:
        give_back()
        abort(404, description="The lesson folders are not on disk.")
    except BaseException:
        give_back()
        raise
    return send_file(
        _Closing(file, give_back), mimetype="application/zip", as_attachment=True, download_name=name
    )


class _Closing:
    """The package's file, giving the slot back once the server closes it (the body sent, or
    the client gone). A file answer bypasses the response's call_on_close: the server is handed
    the file itself."""

    def __init__(self, file, then):
        self._file, self._then = file, then

    def __getattr__(self, name):
        return getattr(self._file, name)

    def read(self, *args):
        return self._file.read(*args)

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._then()
