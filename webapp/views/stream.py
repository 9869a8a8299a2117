"""Push: GET /video-transform/<id>/events, the job's status documents as server-sent events.

Each event is `event: status`, `id:` the document's per-job version, `data:` the status
endpoint's JSON. A reconnecting client sends Last-Event-ID and gets the current document at
once if it is newer. A comment line every EVENTS_HEARTBEAT_SECONDS keeps the stream alive;
the stream ends after EVENTS_MAX_SECONDS (EventSource reconnects and resumes), or as soon as
a check every EVENTS_RECHECK_SECONDS finds that the asker may no longer see the job (a revoked
token, a deactivated user, a removed membership, the job moved or deleted). The stream holds no
database connection between those checks: it forwards what Redis pub/sub brings.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, request
from flask_login import current_user, login_required

from .. import status_channel
from ..extensions import db
from ..services import access, admission, events
from . import schemas as s
from .errors import error_response
from .rest import Blueprint

bp = Blueprint("stream", __name__, description="Push updates")
RETRY_AFTER = 30  # seconds, told to a user at their limit of open streams


# Each event of the stream (comments carry nothing); its data is a GenerationStatus, as JSON.
EVENT = {
    "type": "object",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["status"]},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The document's per-job version"},
        "data": {"type": "string", "description": "The status document (GenerationStatus) as JSON"},
    },
}


def _last_event_id() -> int:
    raw = request.headers.get("Last-Event-ID", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else -1


def _still_allowed(app: Flask, job_id):
    """A check that this request's credentials (its bearer token or session cookie) still see the
    job, made the way the request itself was judged, from what the process remembers (at most a
    few seconds old, see principals.py) or else the database."""
    headers = {name: request.headers[name] for name in ("Authorization", "Cookie") if name in request.headers}
    path, remote = request.path, request.remote_addr

    def allowed() -> bool:
        with app.test_request_context(path, headers=headers, environ_base={"REMOTE_ADDR": remote}):
            try:
                user = current_user._get_current_object()
                return bool(user.is_authenticated) and access.job_in_reach(job_id, user)
            finally:
                db.session.remove()

    return allowed


def _slot_keepers(app: Flask, slot: admission.Slot | None):
    """(refresh the stream's slot, give it back): both run after the request's context is gone,
    as the response streams and when the server closes it."""

    def keep() -> None:
        if slot is not None and slot.due():  # no context for nothing: this runs at every event
            with app.app_context():
                slot.touch()

    return keep, admission.give_back(slot)


def _event(version: int, document: str) -> str:
    return f"event: status\nid: {version}\ndata: {document}\n\n"


@bp.route("/video-transform/<uuid:job_id>/events", methods=["GET"])
@login_required
@bp.doc(
    operationId="streamStatus",
    parameters=[{"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}],
    responses={
        200: {
            "description": "text/event-stream of `status` events; each event's data is the status document",
            "content": {"text/event-stream": {"schema": EVENT}},
        },
        401: {"description": "No credentials", "content": {"application/json": {"schema": s.ErrorSchema}}},
        404: {
            "description": "No such job within your courses",
            "content": {"application/json": {"schema": s.ErrorSchema}},
        },
        429: {
            "description": "You hold EVENTS_MAX_PER_USER open streams already (see Retry-After)",
            "content": {"application/json": {"schema": s.ErrorSchema}},
        },
    },
)
def status_events(job_id):
    """The job's status document, pushed each time it changes (server-sent events)."""
    job = access.get_job_or_404(job_id, current_user)
    config = current_app.config
    heartbeat, recheck = config["EVENTS_HEARTBEAT_SECONDS"], config["EVENTS_RECHECK_SECONDS"]
    try:
        slot = admission.take_stream_slot(current_user, heartbeat)
    except admission.TooManyStreams as exc:
        refused = error_response(429, exc.message)
        refused.headers["Retry-After"] = str(RETRY_AFTER)
        return refused
    keep, give = _slot_keepers(current_app._get_current_object(), slot)
    updates = status_channel.status_updates(job.id, min(heartbeat, recheck))
    latest = status_channel.current_status(job.id) or (0, events.document(job))
    db.session.remove()  # the stream needs no database connection
    last_seen = _last_event_id()
    allowed = _still_allowed(current_app._get_current_object(), job.id)
    deadline = time.monotonic() + config["EVENTS_MAX_SECONDS"]

    def stream():
        sent = last_seen
        if latest[0] > sent or sent < 0:
            sent = latest[0]
            yield _event(*latest)
        beat = check = time.monotonic()
        for update in updates:
            now = time.monotonic()
            keep()  # whether it sends events or heartbeats (at most every few seconds)
            if now - check >= recheck:
                if not allowed():
                    break
                check = now
            if update is None:
                if now - beat >= heartbeat:
                    beat = now
                    yield ": heartbeat\n\n"
            elif update[0] > sent:
                sent = update[0]
                yield _event(*update)
            if now > deadline:
                break

    response = current_app.response_class(stream(), mimetype="text/event-stream")
    response.call_on_close(give)  # however the stream ends: run out, refused, or the client gone
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # proxies must not hold events back
    return response
