"""Renders: queue every lesson of a job, and read, cancel or retry one render attempt."""

from __future__ import annotations

from flask import abort
from flask_login import current_user, login_required

from ...services import access, renders
from .. import schemas as s
from ..serializers import status_url
from .blueprint import bp, errors, links_to_render


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
