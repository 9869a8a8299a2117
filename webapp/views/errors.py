"""Errors answer JSON for API clients and an HTML page for browsers."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)

# Paths whose every answer is JSON, whatever the Accept header says.
JSON_PREFIXES = ("/video-transform/", "/auth/token", "/api/", "/openapi.json", "/health")


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES) and not request.headers.get("HX-Request"):
        return True
    if request.headers.get("HX-Request"):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(status: int, message: str):
    """The JSON error shape of the API: success, statusCode, error (reason phrase), message."""
    # The reason phrase of the response's own status line, so the two always agree.
    response = jsonify(
        {"success": False, "statusCode": status, "error": HTTP_STATUS_CODES[status], "message": message}
    )
    response.status_code = status
    return response


def _page(status: int, message: str):
    return render_template(
        "error.html", status=status, phrase=HTTP_STATUS_CODES[status], message=message
    ), status


def handle_http_error(exc: HTTPException):
    status = exc.code or 500
    message = exc.description or HTTP_STATUS_CODES[status]
    response = make_response(error_response(status, message) if wants_json() else _page(status, message))
    # Keep headers the exception carries, such as Allow on a 405 or Retry-After on a 429.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def handle_csrf_error(exc: CSRFError):
    message = "The form's security token is missing or expired. Reload the page and try again."
    return (
        error_response(400, message)
        if wants_json() or request.headers.get("HX-Request")
        else _page(400, message)
    )


def handle_unexpected(exc: Exception):
    log.exception("unhandled error path=%s", request.path)
    message = "Something went wrong on our side. The error was logged."
    return error_response(500, message) if wants_json() else _page(500, message)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
