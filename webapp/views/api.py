"""The JSON API: the original two endpoints (compatible shapes) and additive ones."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, make_response, render_template, request, send_file
from flask_login import current_user, login_required

from ..services import access, jobs, renders, summary
from . import jsonbody, openapi
from .errors import error_response
from .negotiate import VARY, Reply, reply
from .params import MAX_PAGE, query_int
from .serializers import job_json, lesson_json, render_json, status_url

bp = Blueprint("api", __name__)


def _refused(exc: renders.RenderRequestError):
    return error_response(exc.status, exc.message)


@bp.post("/video-transform/generate-video")
@login_required
def generate_video():
    """Queue a lesson's render: 202 with the original keys plus renderId and statusUrl."""
    data = jsonbody.read_object()
    job_id = jsonbody.string_field(data, "jobId", max_length=100)
    lesson_path = jsonbody.string_field(data, "lessonPath", max_length=500)
    file_name = jsonbody.string_field(data, "outputFileName", required=False, max_length=1000)
    if access.parse_uuid(job_id) is None:
        abort(400, description="'jobId' must be a UUID.")
    job = access.get_job_or_404(job_id, current_user)
    try:
        render = renders.generate(current_user, job, lesson_path, file_name)
    except renders.RenderRequestError as exc:
        return _refused(exc)
    url = status_url(job)
    body = {
        "success": True,
        "outputPath": render.output_path,
        "jobId": str(job.id),
        "videoGenerationStatus": job.video_generation_status.value,
        "currentLesson": render.lesson.path,
        "renderId": str(render.id),
        "statusUrl": url,
    }
    return body, 202, {"Location": url}


@bp.get("/video-transform/<job_id>/video-generation-status")
@login_required
def generation_status(job_id: str):
    """The job's status as JSON, or as the HTML status panel for htmx and clients preferring HTML."""
    job = access.get_job_or_404(job_id, current_user)
    state = summary.status(job)
    if reply(offers_html=True) is not Reply.JSON:
        response = make_response(render_template("_status.html", state=state, job=job))
    else:
        response = jsonify(state.as_json())
    response.vary.update(VARY)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/video-transform/<job_id>/videos/<path:subpath>")
@login_required
def download_video(job_id: str, subpath: str):
    """A finished video, with HTTP range requests so players can seek."""
    job = access.get_job_or_404(job_id, current_user)
    output_path = f"videos/{subpath}"
    render = renders.completed_render_for(job, output_path)
    if render is None:
        abort(404, description="No finished video at that path.")
    try:
        path = renders.video_file(Path(current_app.config["VIDEOS_ROOT"]), output_path)
    except ValueError:
        abort(404, description="No finished video at that path.")
    if not path.is_file():
        abort(404, description="The video file is no longer in storage.")
    response = send_file(
        path,
        mimetype="video/mp4",
        conditional=True,
        etag=True,
        max_age=0,
        as_attachment=request.args.get("download") == "1",
        download_name=render.output_file_name,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/api/jobs")
@login_required
def list_jobs():
    page = jobs.list_jobs(
        current_user,
        course_id=query_int("course", None),
        status=request.args.get("status") or None,
        search=(request.args.get("q") or "")[:200] or None,
        page=query_int("page", 1, hi=MAX_PAGE),
        per_page=query_int("perPage", 20, hi=100),
    )
    return {
        "jobs": [job_json(job) for job in page.items],
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
    }


@bp.get("/api/jobs/<job_id>")
@login_required
def get_job(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    state = summary.status(job)
    return {**job_json(job), "lessons": [lesson_json(view.lesson, view.attempts) for view in state.lessons]}


@bp.post("/api/jobs/<job_id>/generate-all")
@login_required
def generate_all(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    try:
        result = renders.generate_all(current_user, job)
    except renders.RenderRequestError as exc:
        return _refused(exc)
    body = {
        "success": True,
        "jobId": str(job.id),
        "renders": [render_json(render) for render in result.renders],
        "skipped": [{"lessonPath": path, "reason": reason} for path, reason in result.skipped],
        "statusUrl": status_url(job),
    }
    return body, 202, {"Location": status_url(job)}


def _render_or_404(render_id: str):
    render = renders.get_render(render_id, current_user)
    if render is None:
        abort(404, description="No such render.")
    return render


@bp.get("/api/renders/<render_id>")
@login_required
def get_render(render_id: str):
    return render_json(_render_or_404(render_id))


@bp.post("/api/renders/<render_id>/cancel")
@login_required
def cancel_render(render_id: str):
    """Cancel: a queued render at once (200); a running one is asked to stop (202)."""
    try:
        render = renders.cancel(_render_or_404(render_id))
    except renders.RenderRequestError as exc:
        return _refused(exc)
    return render_json(render), 202 if render.state.active else 200


@bp.post("/api/renders/<render_id>/retry")
@login_required
def retry_render(render_id: str):
    try:
        render = renders.retry(current_user, _render_or_404(render_id))
    except renders.RenderRequestError as exc:
        return _refused(exc)
    return render_json(render), 202, {"Location": status_url(render.job)}


@bp.get("/openapi.json")
def openapi_document():
    return openapi.document()


@bp.get("/docs")
def docs():
    return render_template("docs.html", spec=openapi.document())
