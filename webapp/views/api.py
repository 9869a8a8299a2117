"""The JSON API: the original two endpoints (their exact shapes) and the additive ones.

Described by the schemas in schemas.py through flask-smorest: the schema that validates a
request or serialises a response is the one /openapi.json shows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import abort, current_app, make_response, render_template, request, send_file, url_for
from flask_login import current_user, login_required

from .. import metrics
from ..auth import csrf_exempt
from ..models import SIDECAR_KINDS
from ..services import access, accounts, events, jobs, renders, storage, summary, uploads
from ..services.packages import PackageError
from ..services.throttle import Throttled
from . import schemas as s
from .errors import error_response
from .negotiate import VARY, Reply, reply
from .rest import Blueprint
from .serializers import status_url

bp = Blueprint("api", __name__, description="The JSON API")

_ERRORS = {
    400: "The body or a parameter is malformed, or a field is missing or of the wrong type",
    401: "No credentials, or credentials that are not valid",
    404: "No such job (or render) within your courses",
    409: "The state does not allow this (e.g. the video already has a job)",
    413: "The request body is too large",
    415: "The body is not JSON",
    422: "The request is well formed but the rules refuse it (the message says why)",
    429: "Too many: failed logins (wait as Retry-After says), or renders of yours in progress",
    503: "The render queue is unavailable; nothing was queued",
}
_DEFAULT = (401,)  # any endpoint may answer this


def errors(*codes: int):
    """Document the error answers of an endpoint (every one has the Error shape)."""

    def decorate(view):
        for code in sorted({*codes, *_DEFAULT}):
            view = bp.alt_response(code, schema=s.ErrorSchema, description=_ERRORS[code])(view)
        return view

    return decorate


@bp.after_request
def _count_status_answers(response):
    if request.endpoint == "api.generation_status":
        metrics.status_request("html" if response.mimetype == "text/html" else "json", response.status_code)
    return response


@bp.errorhandler(PackageError)
def _package_refused(exc: PackageError):
    extra = {key: value for key, value in (("lesson", exc.lesson), ("field", exc.field)) if value}
    return error_response(exc.status, exc.message, **extra)


@bp.errorhandler(renders.RenderRequestError)
def _refused(exc: renders.RenderRequestError):
    return error_response(exc.status, exc.message)


@bp.errorhandler(jobs.JobError)
def _job_refused(exc: jobs.JobError):
    extra = {"jobId": str(exc.job.id)} if isinstance(exc, jobs.VideoTaken) and exc.job else {}
    return error_response(exc.status, str(exc), **extra)


def links_to_job(field: str) -> dict:
    """OpenAPI links from a response holding a job id (in `field`) to what can be done with it."""
    parameters = {"job_id": f"$response.body#/{field}"}
    return {
        name: {"operationId": operation, "parameters": parameters}
        for name, operation in (
            ("GetJob", "getJob"),
            ("GetStatus", "getGenerationStatus"),
            ("RenameJob", "renameJob"),
            ("RescanJob", "rescanJob"),
            ("GenerateAll", "generateAll"),
            ("DeleteJob", "deleteJob"),
        )
    }


def links_to_render(field: str) -> dict:
    parameters = {"render_id": f"$response.body#/{field}"}
    return {
        name: {"operationId": operation, "parameters": parameters}
        for name, operation in (("GetRender", "getRender"), ("CancelRender", "cancelRender"))
    }


def _lessons_root() -> Path:
    return Path(current_app.config["LESSONS_ROOT"])


def _job_detail(job) -> s.JobDetail:
    return s.JobDetail(job, summary.status(job).lessons)


# --- the original endpoints ----------------------------------------------------------------


@bp.route("/video-transform/generate-video", methods=["POST"])
@login_required
@bp.arguments(s.GenerateVideoRequest)
@bp.response(202, s.GenerateVideoResponse, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(
    operationId="generateVideo",
    responses={202: {"links": {**links_to_render("renderId"), **links_to_job("jobId")}}},
)
@errors(400, 404, 413, 415, 422, 429, 503)
def generate_video(body: dict):
    """Queue the render of one lesson.

    Answers 202 with Location set to the status URL. The same lesson and file name already
    queued or rendering returns that render (a double click is one render).
    """
    job = access.get_job_or_404(body["jobId"], current_user)
    render = renders.generate(current_user, job, body["lessonPath"], body["outputFileName"])
    url = status_url(job)
    result = {
        "success": True,
        "outputPath": render.output_path,
        "jobId": job.id,
        "videoGenerationStatus": job.video_generation_status,
        "currentLesson": render.lesson.path,
        "renderId": render.id,
        "statusUrl": url,
    }
    return result, 202, {"Location": url}


@bp.route("/video-transform/<uuid:job_id>/video-generation-status", methods=["GET"])
@login_required
@bp.response(200, s.GenerationStatus)
@bp.alt_response(
    200,
    schema={"type": "string"},
    content_type="text/html",
    description="The HTML status panel, for htmx requests (HX-Request) and clients that prefer "
    "text/html. Responses vary on HX-Request and Accept.",
)
@bp.doc(operationId="getGenerationStatus")
@errors(404)
def generation_status(job_id):
    """The generation status of a job."""
    job = access.get_job_or_404(job_id, current_user)
    if reply(offers_html=True) is Reply.JSON:
        # The document every status change publishes (its shape is GenerationStatus, tested):
        # a Redis read instead of the queries that build it; its hash is the ETag.
        response = current_app.response_class(events.cached_document(job), mimetype="application/json")
        response.set_etag(hashlib.blake2b(response.get_data(), digest_size=16).hexdigest())
        response.headers["Cache-Control"] = "private, no-cache"
        response.make_conditional(request)
    else:
        response = make_response(render_template("_status.html", state=summary.status(job), job=job))
        response.headers["Cache-Control"] = "no-store"
    response.vary.update(VARY)
    return response


# --- videos --------------------------------------------------------------------------------


@bp.route("/video-transform/<uuid:job_id>/videos/<path:video_path>", methods=["GET"])
@login_required
@bp.doc(
    description="video_path is outputPath without its leading 'videos/'. HTTP range requests (206) "
    "let players seek; ?download=1 saves it as a file.",
    parameters=[
        {"name": "download", "in": "query", "schema": {"type": "integer", "enum": [1]}},
        {"name": "Range", "in": "header", "schema": {"type": "string"}},
    ],
    responses={
        "200": {
            "description": "The whole video (or its poster, chapters or captions)",
            "content": {"video/mp4": {}, "image/jpeg": {}, "text/vtt": {}},
        },
        "206": {"description": "Part of the video", "content": {"video/mp4": {}}},
        "416": {"description": "The range asked for is not in the video"},
    },
)
@bp.doc(operationId="downloadVideo")
@errors(404)
def download_video(job_id, video_path: str):
    """Download or stream a finished video, or its poster (.jpg), chapters (.chapters.vtt) or
    captions (.vtt) written beside it."""
    job = access.get_job_or_404(job_id, current_user)
    output_path = f"videos/{video_path}"
    render = renders.completed_render_for(job, output_path)
    mimetype, name = "video/mp4", render.output_file_name if render else None
    if render is None:  # the poster, chapters or captions written beside a video
        found = renders.sidecar_for(job, output_path)
        if found is None:
            abort(404, description="No finished video at that path.")
        render, kind = found
        mimetype, name = SIDECAR_KINDS[kind], output_path.rsplit("/", 1)[1]
    try:
        path = storage.video_file(Path(current_app.config["VIDEOS_ROOT"]), output_path)
    except ValueError:
        abort(404, description="No finished video at that path.")
    if not path.is_file():
        abort(404, description="The video file is no longer in storage.")
    response = send_file(
        path,
        mimetype=mimetype,
        conditional=True,
        etag=True,
        max_age=0,
        as_attachment=request.args.get("download") == "1",
        download_name=name,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# --- jobs ----------------------------------------------------------------------------------


@bp.route("/api/jobs", methods=["GET"])
@login_required
@bp.arguments(s.JobListQuery, location="query")
@bp.response(200, s.JobPage)
@bp.doc(operationId="listJobs")
@errors(400)
def list_jobs(query: dict):
    """List the jobs of your courses, newest first."""
    return jobs.list_jobs(
        current_user,
        course_id=query.get("course"),
        status=query.get("status"),
        search=query.get("q"),
        page=query["page"],
        per_page=query["perPage"],
    )


@bp.route("/api/jobs", methods=["POST"])
@login_required
@bp.arguments(s.CreateJobRequest)
@bp.response(201, s.JobDetailSchema, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(operationId="createJob", responses={201: {"links": links_to_job("id")}})
@errors(400, 409, 413, 415, 422)
def create_job(body: dict):
    """Create a job for a video and discover its lessons.

    A video that already has a job answers 409, with that job's id when it is in your reach.
    """
    course = access.choose_course(current_user, body["courseId"])
    job = jobs.create_job(current_user, course, body["video"], body["title"], _lessons_root())
    return _job_detail(job), 201, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.route("/api/jobs/<uuid:job_id>", methods=["GET"])
@login_required
@bp.response(200, s.JobDetailSchema)
@bp.doc(operationId="getJob")
@errors(404)
def get_job(job_id):
    """A job with its lessons and every render attempt."""
    return _job_detail(access.get_job_or_404(job_id, current_user))


@bp.route("/api/jobs/<uuid:job_id>", methods=["PATCH"])
@login_required
@bp.arguments(s.RenameJobRequest)
@bp.response(200, s.JobSchema)
@bp.doc(operationId="renameJob")
@errors(400, 404, 413, 415, 422)
def rename_job(body: dict, job_id):
    """Rename a job."""
    return jobs.rename_job(access.get_job_or_404(job_id, current_user), body["title"])


@bp.route("/api/jobs/<uuid:job_id>", methods=["DELETE"])
@login_required
@bp.arguments(s.DeleteJobQuery, location="query")
@bp.response(204)
@bp.doc(operationId="deleteJob")
@errors(400, 404)
def delete_job(query: dict, job_id):
    """Delete a job with its lessons and renders.

    Renders in progress are cancelled. Video files stay unless deleteVideos=true.
    """
    jobs.delete_job(access.get_job_or_404(job_id, current_user), delete_videos=query["deleteVideos"])
    return current_app.response_class(status=204)


@bp.route("/api/jobs/<uuid:job_id>/rescan", methods=["POST"])
@login_required
@bp.response(200, s.RescanResult)
@bp.doc(operationId="rescanJob")
@errors(404)
def rescan_job(job_id):
    """Bring a job's lessons in line with the lesson folders on disk."""
    job = access.get_job_or_404(job_id, current_user)
    result = jobs.rescan_lessons(job, _lessons_root())
    return {
        "added": result.added,
        "updated": result.updated,
        "removed": result.removed,
        "message": result.message,
        "job": _job_detail(job),
    }


@bp.route("/api/jobs/<uuid:job_id>/lessons", methods=["POST"])
@login_required
@bp.arguments(s.UploadQuery, location="query")
@bp.arguments(s.UploadFiles, location="files")
@bp.response(201, s.UploadResult, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(operationId="uploadLessons")
@errors(400, 404, 409, 413, 422)
def upload_lessons(query: dict, files: dict, job_id):
    """Upload a lesson package (multipart/form-data, field `package`).

    A zip of lesson_<n>/ folders, with the files they share (`../source.mp4`) beside them (or,
    with ?lesson=<n>, the files of one lesson). Every lesson.json is validated before anything
    changes; each lesson then replaces its folder whole, shared files their namesakes. 422 names
    the lesson and field at fault; 409 when a lesson (any lesson, for shared files) is being
    rendered.
    """
    job = access.get_job_or_404(job_id, current_user)
    installed = uploads.install_package(job, files["package"].stream, _lessons_root(), lesson=query["lesson"])
    detail = _job_detail(job)
    chosen = [view for view in detail.lesson_views if view.lesson.path in installed.lesson_paths]
    return {"lessons": chosen, "job": detail}, 201, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.route("/api/jobs/<uuid:job_id>/lessons/package", methods=["GET"])
@login_required
@bp.response(200, content_type="application/zip", description="The lesson folders as a zip")
@bp.doc(operationId="downloadLessons")
@errors(404)
def download_lessons(job_id):
    """The job's lesson folders as a zip (the layout an upload takes)."""
    job = access.get_job_or_404(job_id, current_user)
    return _package(job, None, f"{job.video_id}-lessons.zip")


@bp.route("/api/jobs/<uuid:job_id>/lessons/<int:number>/package", methods=["GET"])
@login_required
@bp.response(200, content_type="application/zip", description="The lesson's folder as a zip")
@bp.doc(operationId="downloadLesson")
@errors(404)
def download_lesson(job_id, number: int):
    """One lesson's folder as a zip."""
    job = access.get_job_or_404(job_id, current_user)
    lesson = next((item for item in job.lessons if item.number == number and not item.missing), None)
    if lesson is None:
        abort(404, description="No such lesson in this job.")
    return _package(job, lesson, f"{job.video_id}-lesson_{number}.zip")


def _package(job, lesson, name: str):
    try:
        file = uploads.lesson_package(job, _lessons_root(), lesson)
    except FileNotFoundError:
        abort(404, description="The lesson folders are not on disk.")
    return send_file(file, mimetype="application/zip", as_attachment=True, download_name=name)


@bp.route("/api/jobs/<uuid:job_id>/generate-all", methods=["POST"])
@login_required
@bp.response(202, s.GenerateAllResponse, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(operationId="generateAll")
@errors(404, 422, 429, 503)
def generate_all(job_id):
    """Queue every lesson of a job.

    Lessons already queued or rendering are returned as they are; lessons whose lesson.json is
    broken, or past your limit of renders in progress, are listed under skipped.
    """
    job = access.get_job_or_404(job_id, current_user)
    result = renders.generate_all(current_user, job)
    body = {
        "success": True,
        "jobId": job.id,
        "renders": result.renders,
        "skipped": [{"lessonPath": path, "reason": reason} for path, reason in result.skipped],
        "statusUrl": status_url(job),
    }
    return body, 202, {"Location": status_url(job)}


# --- renders -------------------------------------------------------------------------------


def _render_or_404(render_id):
    render = renders.get_render(render_id, current_user)
    if render is None:
        abort(404, description="No such render.")
    return render


@bp.route("/api/renders/<uuid:render_id>", methods=["GET"])
@login_required
@bp.response(200, s.RenderSchema)
@bp.doc(operationId="getRender")
@errors(404)
def get_render(render_id):
    """One render attempt."""
    return _render_or_404(render_id)


@bp.route("/api/renders/<uuid:render_id>/cancel", methods=["POST"])
@login_required
@bp.response(202, s.RenderSchema, description="A rendering render is asked to stop; it stops within seconds")
@bp.alt_response(200, schema=s.RenderSchema, description="A queued render is cancelled at once")
@bp.doc(operationId="cancelRender")
@errors(404, 409)
def cancel_render(render_id):
    """Cancel a render."""
    render = renders.cancel(_render_or_404(render_id))
    return render, 202 if render.state.active else 200


@bp.route("/api/renders/<uuid:render_id>/retry", methods=["POST"])
@login_required
@bp.response(202, s.RenderSchema, headers={"Location": {"schema": {"type": "string"}}})
@bp.doc(operationId="retryRender", responses={202: {"links": links_to_render("renderId")}})
@errors(404, 409, 422, 429, 503)
def retry_render(render_id):
    """Retry a failed or cancelled render as a new attempt."""
    render = renders.retry(current_user, _render_or_404(render_id))
    return render, 202, {"Location": status_url(render.job)}


# --- signed tokens -------------------------------------------------------------------------


@bp.route("/auth/token", methods=["POST"])
@csrf_exempt
@bp.arguments(s.TokenRequest)
@bp.response(200, s.TokenResponse)
@bp.doc(security=[])
@bp.doc(operationId="issueToken")
@errors(400, 413, 415, 429)
def issue_token(body: dict):
    """Email and password for a short-lived signed bearer token (for JWT-style clients)."""
    try:
        user = accounts.log_in(body["email"], body["password"], request.remote_addr)
    except Throttled as exc:
        response = error_response(429, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if user is None:
        return error_response(401, "Wrong email or password.")
    token = accounts.issue_signed_token(user, current_app.config["SECRET_KEY"])
    return {"accessToken": token, "tokenType": "Bearer", "expiresIn": current_app.config["AUTH_TOKEN_TTL"]}
