"""One log line per request, `key=value`, with a request id taken from `X-Request-ID` (or made
up) and echoed in the response. Nothing secret is logged: no query string, no headers, no body."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

import sqlalchemy as sa
from flask import Flask, g, request

log = logging.getLogger("webapp.requests")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BARE = re.compile(r"[!#-<>-\[\]-~]+")  # printable ASCII but space, '"', '=' and '\\'


def logfmt(value: object) -> str:
    """A value for a key=value line: as it is when it is one plain word, else quoted and escaped
    (JSON's rules), so a path a stranger chose cannot end the line or forge another field."""
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text)


def request_id() -> str:
    """This request's id (a caller's X-Request-ID when it is a sane one)."""
    return g.get("request_id", "-")


def _start() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _user_id() -> str:
    # Only a user this request already loaded, read without touching the database: logging
    # must not cost a query (or reload a user a view has just logged out).
    state = sa.inspect(g.get("_login_user"), raiseerr=False)
    identity = state.identity if state is not None else None
    return str(identity[0]) if identity else "-"


def _finish(response):
    response.headers["X-Request-ID"] = request_id()
    if not log.isEnabledFor(logging.INFO):
        return response  # the line would be dropped: do not spend a poll's time building it
    elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
    args = request.view_args or {}
    fields = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": f"{elapsed:.1f}",
        "request_id": request_id(),
        "user_id": _user_id(),
        "job_id": args.get("job_id"),
        "render_id": args.get("render_id"),
    }
    line = " ".join(f"{key}={logfmt(value)}" for key, value in fields.items() if value is not None)
    log.info("request %s", line)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
