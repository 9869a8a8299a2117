"""Lesson packages: a zip of lesson folders uploaded into a job, and a job's lessons (or one
lesson) downloaded as a zip in the same layout; one lesson's files listed, and one replaced or
added (services/lesson_files.py)."""

from __future__ import annotations

from flask import abort, request, send_file, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import TooManyRequests

from ...services import access, admission, lesson_files, uploads
from .. import schemas as s
from ..bodies import InsufficientStorage
from ..lesson_files import file_download
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


@bp.route("/api/jobs/<uuid:job_id>/lessons/<int:number>/files", methods=["GET"])
@login_required
@bp.response(200, s.LessonFiles)
@bp.doc(operationId="listLessonFiles")
@errors(404)
def list_lesson_files(job_id, number: int):
    """One lesson's files, as renders read them (hidden files left out; a link is not followed)."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    return {"files": [] if lesson.missing else lesson_files.listing(lesson, lessons_root())}


@bp.route("/api/jobs/<uuid:job_id>/lessons/<int:number>/files/<path:file_path>", methods=["GET"])
@login_required
@bp.response(
    200,
    content_type="application/octet-stream",
    description="The file, as an attachment; from object storage, a 302 to a link valid 5 minutes",
    headers={
        "ETag": {
            "description": "Send it as If-Match to change this file only if it is still this one",
            "schema": {"type": "string"},
        }
    },
)
@bp.doc(operationId="downloadLessonFile")
@errors(404)
def download_lesson_file(job_id, number: int, file_path: str):
    """One file of a lesson (e.g. lesson.json, to edit it and put it back with If-Match)."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    return file_download(lesson_files.file_source(lesson, file_path, lessons_root()), file_path)


@bp.route("/api/jobs/<uuid:job_id>/lessons/<int:number>/files", methods=["POST"])
@login_required
@bp.arguments(s.LessonFileQuery, location="query")
@bp.arguments(s.LessonFileUpload, location="files")
@bp.response(200, s.LessonFileResult, description="The file replaced (201: added)")
@bp.alt_response(201, schema=s.LessonFileResult, description="The file added")
@bp.doc(operationId="putLessonFile")
@errors(400, 404, 409, 412, 413, 415, 422, 429, 507)
def put_lesson_file(query: dict, files: dict, job_id, number: int):
    """Replace or add one file of a lesson (multipart/form-data, field `file`), at ?path=.

    The lesson with the new file is validated before anything changes: a file that would break a
    working lesson is 422 (nothing changed); a lesson broken already takes it, and `problem` says
    what is still wrong. 409 while the lesson is being rendered or when its files changed
    meanwhile. With an If-Match header (the file's ETag from its download or the listing), only
    while the file is still that one, and with If-None-Match: * only while there is none: 412
    otherwise. Admitted before the body is read, as package
    uploads are (404, 413, 429, 507)."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    upload = files["file"]
    changed = lesson_files.put_file(
        job,
        lesson,
        query["path"],
        upload.stream,
        lessons_root(),
        file_name=upload.filename,
        if_match=request.headers.get("If-Match"),
        if_none_match=request.headers.get("If-None-Match"),
    )
    return _changed(job, lesson, changed), 201 if changed.added else 200


@bp.route("/api/jobs/<uuid:job_id>/lessons/<int:number>/files", methods=["DELETE"])
@login_required
@bp.arguments(s.LessonFileQuery, location="query")
@bp.response(200, s.LessonFileResult)
@bp.doc(operationId="removeLessonFile")
@errors(404, 409, 412, 422)
def remove_lesson_file(query: dict, job_id, number: int):
    """Remove one file of a lesson that lesson.json does not use (?path=); 409 for one it uses,
    or while the lesson is being rendered; 412 when If-Match names another version of it."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = lesson_files.lesson_or_404(job, number)
    changed = lesson_files.remove_file(
        job, lesson, query["path"], lessons_root(), if_match=request.headers.get("If-Match")
    )
    return _changed(job, lesson, changed)


def _changed(job, lesson, changed: lesson_files.Changed) -> dict:
    """A change's answer: the file, whether it was added, what is still wrong, the lesson now."""
    view = next(view for view in job_detail(job).lesson_views if view.lesson.id == lesson.id)
    return {"path": changed.path, "added": changed.added, "problem": changed.problem, "lesson": view}


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
