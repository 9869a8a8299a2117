"""The original endpoints, under /video-transform/ (their exact shapes): queue the render of a
lesson, the generation status of a job, and the finished videos with the files beside them."""

from __future__ import annotations

import hashlib

from flask import abort, current_app, make_response, redirect, request, send_file
from flask_login import current_user, login_required
from werkzeug.exceptions import NotFound

from ...models import SIDECAR_KINDS
from ...services import access, events, renders, storage
from ...storage.base import content_disposition
from .. import panel
from .. import schemas as s
from ..negotiate import VARY, Reply, reply
from ..serializers import status_url
from .blueprint import bp, errors, links_to_job, links_to_render

# A presigned video URL's life. The player goes on asking that URL for ranges while the video
# plays (seeking included), so it must outlast one viewing of a long lesson.
URL_SECONDS = 3600


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
@bp.response(200, s.GenerationStatus, headers={"ETag": {"schema": {"type": "string"}}})
@bp.alt_response(
    200,
    schema={"type": "string"},
    content_type="text/html",
    description="The HTML status panel, for htmx requests (HX-Request) and clients that prefer "
    "text/html. Responses vary on HX-Request and Accept.",
)
@bp.doc(
    operationId="getGenerationStatus",
    parameters=[
        {
            "name": "If-None-Match",
            "in": "header",
            "schema": {"type": "string"},
            "description": "The ETag of a JSON answer you have: 304 while the status is the same",
        }
    ],
    responses={
        "304": {"description": "Not modified: the status is still the one whose ETag was sent"},
    },
)
@errors(404)
def generation_status(job_id):
    """The generation status of a job."""
    # Answered from what this process remembers and the document kept in Redis: no query
    # while the job's status is kept (principals.py, events.py).
    if not access.job_in_reach(job_id, current_user):
        raise NotFound("No such video job.")
    kept = events.kept_document(job_id)

    def load_job():
        return access.get_job_or_404(job_id, current_user)

    if reply(offers_html=True) is Reply.JSON:
        text = kept[1] if kept else events.cached_document(load_job())
        response = current_app.response_class(text, mimetype="application/json")
        response.set_etag(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
        response.headers["Cache-Control"] = "private, no-cache"
        response.make_conditional(request)
    else:
        response = make_response(panel.polled(job_id, kept[0] if kept else None, load_job))
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
        "302": {
            "description": "With object storage: the video at a short-lived presigned URL, which "
            "answers ranges too",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        "304": {"description": "Not modified: If-None-Match or If-Modified-Since still hold"},
        "416": {"description": "The range asked for is not in the video"},
    },
)
@bp.doc(operationId="downloadVideo")
@errors(404, 503)
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
    download = request.args.get("download") == "1"
    if download:  # saved among others (each lesson's video may be final_video.mp4): say whose it is
        name = f"{job.video_id}-{render.lesson.path.rsplit('/', 1)[-1]}-{name}"
    store = storage.store()
    try:
        path = store.local_path(output_path)
    except ValueError:
        abort(404, description="No finished video at that path.")
    if path is None:  # an object store: after the scope check, the store serves the bytes
        return _from_store(store, output_path, name, mimetype, download)
    if not path.is_file():
        abort(404, description="The video file is no longer in storage.")
    response = send_file(
        path,
        mimetype=mimetype,
        conditional=True,
        etag=True,
        max_age=0,
        as_attachment=download,
        download_name=name,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _from_store(store, key: str, name: str, mimetype: str, download: bool):
    """A video: 302 to a short-lived presigned URL (the store answers ranges, so players seek).
    Its sidecars, a few kilobytes, pass through here: a caption track must come from our own
    origin (a bucket seldom answers CORS), and the page's policy admits the store for media only."""
    if store.stat(key) is None:  # also what answers 503 when the store is down (signing is local)
        abort(404, description="The video file is no longer in storage.")
    if mimetype == "video/mp4":
        url = store.url(key, expires=URL_SECONDS, filename=name, mimetype=mimetype, attachment=download)
        response = redirect(url, 302)
        response.headers["Cache-Control"] = "private, no-store"  # the URL expires
        return response
    with store.open(key) as reader:
        data = reader.read()
    response = current_app.response_class(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = content_disposition(name, download)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
