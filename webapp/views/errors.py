"""Errors answer JSON for API clients and an HTML page for browsers."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from ..storage import StoreError, StoreUnavailable
from .negotiate import Reply, reply

log = logging.getLogger(__name__)


def error_response(status: int, message: str, **extra):
    """The JSON error shape of the API: success, statusCode, error (reason phrase), message."""
    # The reason phrase of the response's own status line, so the two always agree.
    response = jsonify(
        {
            "success": False,
            "statusCode": status,
            "error": HTTP_STATUS_CODES[status],
            "message": message,
            **extra,
        }
    )
    response.status_code = status
    return response


def size_of(count: int) -> str:
    """A byte count as people read it: 65536 -> "64 KiB"."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:g} {unit}" if unit == "bytes" else f"{count:.4g} {unit}"
        count /= 1024
    return str(count)


def _page(status: int, message: str):
    return render_template(
        "error.html", status=status, phrase=HTTP_STATUS_CODES[status], message=message
    ), status


# werkzeug's own sentences for a page, in a person's words (ours, when a view gave one, stay).
_PLAIN = {
    404: "There is no page at this address. Check it, or start again from the jobs list.",
    405: "This address does not answer a link or a typed address: use the page's button for it.",
}


def handle_http_error(exc: HTTPException):
    status = exc.code or 500
    # A request the API's parser refused carries its own sentence (rest.ApiParser).
    data = getattr(exc, "data", None)
    message = (data.get("message") if isinstance(data, dict) else None) or exc.description
    message = message or HTTP_STATUS_CODES[status]
    wants_json = reply() is Reply.JSON
    if not wants_json and message == type(exc).description and status in _PLAIN:
        message = _PLAIN[status]
    response = make_response(error_response(status, message) if wants_json else _page(status, message))
    # Keep headers the exception carries, such as Allow on a 405 or Retry-After on a 429.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def handle_csrf_error(exc: CSRFError):
    message = "The form's security token is missing or expired. Reload the page and try again."
    # A plain form post gets the page; API clients and htmx, the JSON error.
    kind = reply()
    if kind is Reply.PAGE:
        return _page(400, message)
    if kind is Reply.JSON:  # a script using a browser session
        message = (
            "A request with a browser session needs its CSRF token in the X-CSRFToken header "
            "(or use a bearer token, which needs none)."
        )
    return error_response(400, message)


STORE_RETRY_AFTER = 30  # seconds: botocore already retried; the store is down or throttling


def handle_store_unavailable(exc: StoreUnavailable):
    """The media store cannot be reached (down, throttling, failing): 503 and when to come
    back, never a 500. What the store said goes to the log, not to the client."""
    log.warning("media store unavailable path=%s error=%s", request.path, exc)
    message = "The media store cannot be reached right now. Try again in a moment."
    wants_json = reply() is Reply.JSON
    response = make_response(error_response(503, message) if wants_json else _page(503, message))
    response.headers["Retry-After"] = str(STORE_RETRY_AFTER)
    return response


def handle_store_error(exc: StoreError):
    """The media store answered but refused (its bucket gone, keys revoked: a setting to fix, not
    a passing fault): 502, naming the store, never a 500. What it said goes to the log."""
    log.error("media store refused path=%s error=%s", request.path, exc)
    message = "The media store refused the request; an administrator must check its settings."
    return error_response(502, message) if reply() is Reply.JSON else _page(502, message)


def handle_unexpected(exc: Exception):
    log.exception("unhandled error path=%s", request.path)
    message = "Something went wrong on our side. The error was logged."
    return error_response(500, message) if reply() is Reply.JSON else _page(500, message)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(StoreUnavailable, handle_store_unavailable)
    app.register_error_handler(StoreError, handle_store_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
