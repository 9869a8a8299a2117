"""flask-smorest, fitted to the API's contract.

- Errors keep the API's body `{success, statusCode, error, message}`: our error handlers
  (errors.py) answer every HTTP error; flask-smorest's own handler is not registered.
- A body that is not JSON is 415, malformed JSON or a missing or ill-typed field is 400
  (webargs would say 422, which the contract keeps for requests the rules refuse).
"""

from __future__ import annotations

import flask_smorest
from flask import current_app
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from .schemas import ErrorSchema

DESCRIPTION = (
    "Turn prepared lesson folders into lesson videos and follow every render. The two "
    "/video-transform endpoints keep the original design's shapes; everything else is additive. "
    "Authenticate with `Authorization: Bearer <token>` (a personal API token, or one from "
    "POST /auth/token). Browser sessions work too; their POSTs need the X-CSRFToken header. "
    "Every error answers {success: false, statusCode, error, message}."
)


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *, spec_kwargs=None):
        for name, value in {
            "API_TITLE": "Lesson videos API",
            "API_VERSION": "1.0.0",
            "OPENAPI_VERSION": "3.0.3",
            "OPENAPI_URL_PREFIX": "/",
            "OPENAPI_JSON_PATH": "openapi.json",
            "API_SPEC_OPTIONS": {
                "info": {"description": DESCRIPTION},
                "servers": [{"url": "/"}],
                "security": [{"bearer": []}, {"session": []}],
                "components": {
                    "securitySchemes": {
                        "bearer": {"type": "http", "scheme": "bearer"},
                        "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                    }
                },
            },
        }.items():
            app.config.setdefault(name, value)
        super().init_app(app, spec_kwargs=spec_kwargs)

    def _register_error_handlers(self):
        """errors.py answers every HTTP error in the API's shape."""


def document() -> dict:
    """The OpenAPI document, as /openapi.json serves it."""
    return current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def _message(messages, path: str = "") -> str:
    """One sentence from marshmallow's nested error messages: "'jobId' must be a UUID.", naming
    a nested field by its path ("'events[0]': Must be one of: …")."""
    if isinstance(messages, dict):
        if not path:
            for location in ("json", "query", "view_args", "files"):
                if location in messages:
                    return _message(messages[location])
            if "_schema" in messages:
                return "The body must be a JSON object."
        name, detail = next(iter(messages.items()))
        name = f"{path}[{name}]" if isinstance(name, int) else f"{path}.{name}" if path else str(name)
        if isinstance(detail, dict):
            return _message(detail, name)
        text = detail[0] if isinstance(detail, list) and detail else str(detail)
        if text[:1].isupper():  # marshmallow's own sentences ("Not a valid integer.")
            return f"'{name}': {text}"
        return f"'{name}' {text}"
    if isinstance(messages, list) and messages:
        return f"'{path}': {messages[0]}" if path else str(messages[0])
    return "The request is not valid."


class ApiParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "json": None, "query": None}

    def _raw_load_json(self, req):
        if not is_json_request(req):
            abort(415, message="Send the body as JSON with Content-Type: application/json.")
        try:
            return core.parse_json(req.get_data(cache=True))
        except RecursionError:  # nested deeper than the parser goes: malformed for us, not a 500
            abort(400, message="The body is not valid JSON: it is nested too deeply.")

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, exc=error, message="The body is not valid JSON.")

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        abort(
            error_status_code or self.DEFAULT_VALIDATION_STATUS,
            exc=error,
            message=_message(error.messages),
            errors=error.messages,
            headers=error_headers,
        )


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ApiParser()
