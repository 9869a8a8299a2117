"""The JSON API's blueprint and what its endpoints share: the documented error answers, the
error handlers, OpenAPI links between operations, and the job detail most answers hold."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, request

from ... import metrics
from ...services import admission, jobs, renders, summary
from ...services.packages import PackageError
from .. import schemas as s
from ..errors import error_response
from ..rest import Blueprint

bp = Blueprint("api", __name__, description="The JSON API")

_ERRORS = {
    400: "The body or a parameter is malformed, or a field is missing or of the wrong type",
    401: "No credentials, or credentials that are not valid",
    404: "No such job (or render) within your courses",
    409: "The state does not allow this (e.g. the video already has a job)",
    412: "If-Match names another version of the file than the one there now",
    413: "The request body is too large",
    415: "The body is not of the type the endpoint takes (JSON; multipart/form-data for uploads)",
    422: "The request is well formed but the rules refuse it (the message says why)",
    429: "Too many: failed logins or uploads in progress (wait as Retry-After says), or renders in progress",
    503: "The render queue is unavailable; nothing was queued",
    507: "Not enough disk space on the server for this upload now (wait as Retry-After says)",
}
_DEFAULT = (401,)  # any endpoint may answer this
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}
}


def errors(*codes: int):
    """Document the error answers of an endpoint (every one has the Error shape)."""

    def decorate(view):
        for code in sorted({*codes, *_DEFAULT}):
            headers = _RETRY_AFTER if code in (429, 507) else None
            answer = bp.alt_response(code, schema=s.ErrorSchema, description=_ERRORS[code], headers=headers)
            view = answer(view)
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
    response = error_response(exc.status, exc.message, **extra)
    if exc.status == 507:  # the disk filled up: worth trying again later
        response.headers["Retry-After"] = str(admission.DISK_RETRY_AFTER)
    return response


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


def lessons_root() -> Path:
    """Where the lesson folders of every job are."""
    return Path(current_app.config["LESSONS_ROOT"])


def job_detail(job) -> s.JobDetail:
    """A job with its lessons and their attempts, as JobDetailSchema shows it."""
    return s.JobDetail(job, summary.status(job).lessons)
