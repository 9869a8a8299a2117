"""Operators: health, metrics, and the RQ dashboard behind an admin check."""

from __future__ import annotations

import html
import ipaddress
import json
import logging
from urllib.parse import urlparse

import rq_dashboard
import sqlalchemy as sa
from flask import Flask, abort, current_app, request, url_for
from flask_login import current_user
from prometheus_client import CONTENT_TYPE_LATEST

from .. import embedded_redis, metrics, queue, readiness
from ..extensions import db, login_manager
from .rest import Api, Blueprint
from .schemas import Health

bp = Blueprint("ops", __name__, description="Operations")
log = logging.getLogger(__name__)


@bp.route("/health", methods=["GET"])
@bp.response(200, Health, description="The database and Redis answer")
@bp.alt_response(
    503, schema=Health, description="The database or Redis does not answer, or the database is not migrated"
)
@bp.doc(security=[])
def health():
    """Whether the database and Redis answer (503 when either does not, or while the database
    lacks this code's migrations: "not migrated"), and how many render workers are registered:
    0 means renders wait, but the web process is well (not a 503, which would take it out of a
    load balancer; nor is a database newer than this code, as during a rolling deploy)."""
    checks = {}
    try:
        kind, problem = readiness.schema_state()
        checks["database"] = "not migrated" if kind in ("empty", "behind") else "ok"
        if problem:
            log.warning("health: %s", problem)
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        checks["database"] = "unavailable"
    workers = None
    try:
        queue.connection().ping()
        checks["redis"] = "ok"
        workers = queue.workers_alive(queue.RENDER_QUEUE)
    except Exception:  # any failure to reach Redis means "unavailable" here
        checks["redis"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return {
        "status": "ok" if healthy else "degraded",
        **checks,
        "renderWorkers": workers,
    }, 200 if healthy else 503


def _metrics_allowed_address() -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    for entry in current_app.config["METRICS_ALLOW"].split(","):
        entry = entry.strip()
        if entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                log.warning("METRICS_ALLOW entry is not an address or network: %r", entry)
    return False


@bp.route("/metrics", methods=["GET"])
@bp.doc(
    operationId="getMetrics",
    description="For administrators' tokens, or from the addresses in METRICS_ALLOW (default loopback).",
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: {"description": "Not from an allowed address, and no credentials"},
        403: {"description": "Credentials of someone who is not an administrator"},
    },
)
def metrics_endpoint():
    """Metrics in Prometheus' text format."""
    if not _metrics_allowed_address():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            abort(403, description="Metrics are for administrators.")
    body = metrics.exposition()
    return current_app.response_class(
        body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], headers={"Cache-Control": "no-store"}
    )


def guard_dashboard():
    """The dashboard can delete and requeue jobs: admins only, and posts only from this site."""
    if request.blueprint != "rq_dashboard":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403, description="The queue dashboard is for administrators.")
    # rq-dashboard's "requeue all" also answers GET (its button posts): a link, followed after
    # our own login redirect (same site), would requeue a whole queue's failed jobs.
    if request.endpoint == "rq_dashboard.requeue_all" and request.method in ("GET", "HEAD"):
        abort(405, description="Requeue all is a POST: use the dashboard's button.")
    if request.method not in ("GET", "HEAD"):
        # Its JavaScript cannot send our CSRF token; a same-origin check stands in for it.
        origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if urlparse(origin).netloc != request.host:
            abort(403, description="Cross-site request refused.")
    return None


def _escaped(value, kept: frozenset[str] = frozenset()):
    """Every string HTML-escaped, but those under a key in `kept` (which the page escapes)."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list):
        return [_escaped(item, kept) for item in value]
    if isinstance(value, dict):
        return {key: item if key in kept else _escaped(item, kept) for key, item in value.items()}
    return value


# What the dashboard's own templates escape (jobs.html: `$('<div/>').text(…).html()`; workers.html:
# `<%- … %>`): escaped here as well, an operator read `File &quot;…&quot;` in every traceback.
_ESCAPED_BY_THE_PAGE = {
    "/data/jobs/": frozenset({"description", "exc_info"}),
    "/data/workers.json": frozenset({"description"}),
}


def escape_dashboard_data(response):
    """HTML-escape every string in the dashboard's JSON: its pages insert most of them as markup.

    Nothing a user typed should reach RQ (job descriptions and errors carry ids only), but
    the dashboard would run whatever did; escaped, it shows it as text.
    """
    if request.blueprint == "rq_dashboard" and response.mimetype == "application/json":
        data = response.get_json(silent=True)
        if data is not None:
            kept = next(
                (keys for part, keys in _ESCAPED_BY_THE_PAGE.items() if part in request.path), frozenset()
            )
            response.set_data(json.dumps(_escaped(data, kept)))
    return response


DASHBOARD_BRAND = '<a class="navbar-brand">RQ-dashboard</a>'


def link_dashboard_to_app(response):
    """Give the dashboard's pages a way back to the app, our icon (it links a favicon.ico that
    this site does not have) and our few corrections to its layout (static/rq-dashboard.css)."""
    if request.blueprint != "rq_dashboard" or response.mimetype != "text/html" or response.is_streamed:
        return response
    if response.status_code >= 400:  # our own error page (a 403 for staff): it has the site's header
        return response
    page = response.get_data(as_text=True)
    back = (
        f'<a class="navbar-brand" href="{html.escape(url_for("pages.jobs"))}" title="Back to Lesson videos">'
        "&larr; Lesson videos</a>"
        '<span class="navbar-text mr-3">Queues (RQ dashboard)</span>'
    )
    if DASHBOARD_BRAND in page:
        page = page.replace(DASHBOARD_BRAND, back, 1)
    else:  # another dashboard version: a plain link at the top of the page
        page = page.replace("<body>", f'<body><nav class="px-3 pt-2">{back}</nav>', 1)
    icon = html.escape(url_for("static", filename="favicon.svg"))
    page = page.replace(f'href="{url_for("static", filename="favicon.ico")}"', f'href="{icon}"', 1)
    css = html.escape(url_for("static", filename="rq-dashboard.css"))
    page = page.replace("</head>", f'<link rel="stylesheet" href="{css}">\n</head>', 1)
    response.set_data(page)
    return response


def init_app(app: Flask, rest_api: Api) -> None:
    rest_api.register_blueprint(bp)
    # rq-dashboard reads a *list* of Redis URLs (a bare string is indexed character by character).
    app.config["RQ_DASHBOARD_REDIS_URL"] = [
        app.config.get("REDIS_URL") or embedded_redis.url(app.instance_path)
    ]
    # App-level hooks run before the dashboard blueprint's own (which connects to Redis).
    app.before_request(guard_dashboard)
    app.after_request(escape_dashboard_data)
    app.after_request(link_dashboard_to_app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
    rq_dashboard.web.setup_rq_connection(app)
