"""The JSON API: the original two endpoints (compatible shapes) and additive ones."""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response, render_template, request
from flask_login import current_user, login_required

from ..services import access, summary

bp = Blueprint("api", __name__)


def _wants_fragment() -> bool:
    """htmx asks for the status fragment; so does a client that prefers HTML to JSON."""
    if request.headers.get("HX-Request"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "text/html"
        and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]
    )


@bp.get("/video-transform/<job_id>/video-generation-status")
@login_required
def generation_status(job_id: str):
    job = access.get_job_or_404(job_id, current_user)
    state = summary.status(job)
    if _wants_fragment():
        response = make_response(render_template("_status.html", state=state, job=job))
    else:
        response = jsonify(state.as_json())
    response.vary.update(("HX-Request", "Accept"))
    response.headers["Cache-Control"] = "no-store"
    return response
