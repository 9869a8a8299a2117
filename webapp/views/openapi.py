"""The OpenAPI 3 document of the JSON API (served at /openapi.json and shown at /docs).

Written by hand: a test checks that every path and method here is a route of the app and
that every API route is described here, but not that the shapes agree; keep them in step
when an endpoint changes.
"""

from __future__ import annotations

from functools import cache

from .openapi_schemas import SCHEMAS, STATUS, UUID, ref


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    reasons = {
        400: "Malformed JSON, or a missing or ill-typed field",
        401: "No credentials, or credentials that are not valid",
        404: "No such job (or render) within your courses",
        409: "The render is not in a state that allows this",
        413: "The request body is too large",
        415: "The body is not JSON",
        422: "The lesson or file name cannot be used",
        429: "Too many: failed logins (wait as Retry-After says), or renders of yours queued or running",
        503: "The render queue is unavailable; nothing was queued",
    }
    return {str(code): _json(ref("Error"), reasons[code]) for code in codes}


def _job_id(name: str = "jobId") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": UUID}


_AUTHED = [{"bearer": []}, {"session": []}]


PATHS = {
    "/video-transform/generate-video": {
        "post": {
            "summary": "Queue the render of one lesson",
            "description": "Answers 202 with Location set to the status URL. The same lesson and file name "
            "already queued or rendering returns that render (a double click is one render).",
            "tags": ["Original API"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("GenerateVideoRequest")}},
            },
            "responses": {
                "202": {
                    **_json(ref("GenerateVideoResponse"), "Queued (or already queued)"),
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                **_errors(400, 401, 404, 413, 415, 422, 429, 503),
            },
        }
    },
    "/video-transform/{jobId}/video-generation-status": {
        "get": {
            "summary": "The generation status of a job",
            "description": "JSON for API clients; the HTML status panel for htmx requests (HX-Request) "
            "or clients that prefer text/html. Responses vary on HX-Request and Accept.",
            "tags": ["Original API"],
            "parameters": [_job_id()],
            "responses": {
                "200": {
                    "description": "The status",
                    "content": {
                        "application/json": {"schema": ref("GenerationStatus")},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                **_errors(401, 404),
            },
        }
    },
    "/video-transform/{jobId}/videos/{videoPath}": {
        "get": {
            "summary": "Download or stream a finished video",
            "description": "videoPath is outputPath without its leading 'videos/'. Supports HTTP range "
            "requests (206) so players can seek; add ?download=1 to save it as a file.",
            "tags": ["Videos"],
            "parameters": [
                _job_id(),
                {
                    "name": "videoPath",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "example": "henIVlCPVIY/lesson_1/final_video.mp4",
                },
                {
                    "name": "download",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "enum": [1]},
                },
                {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "The whole video", "content": {"video/mp4": {}}},
                "206": {"description": "Part of the video", "content": {"video/mp4": {}}},
                **_errors(401, 404),
            },
        }
    },
    "/api/jobs": {
        "get": {
            "summary": "List jobs in your courses, newest first",
            "tags": ["Jobs"],
            "parameters": [
                {"name": "course", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "status", "in": "query", "schema": STATUS},
                {
                    "name": "q",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Title or video id",
                },
                {
                    "name": "page",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                },
                {
                    "name": "perPage",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                },
            ],
            "responses": {"200": _json(ref("JobPage"), "A page of jobs"), **_errors(400, 401)},
        }
    },
    "/api/jobs/{jobId}": {
        "get": {
            "summary": "A job with its lessons and every render attempt",
            "tags": ["Jobs"],
            "parameters": [_job_id()],
            "responses": {"200": _json(ref("JobDetail"), "The job"), **_errors(401, 404)},
        }
    },
    "/api/jobs/{jobId}/generate-all": {
        "post": {
            "summary": "Queue every lesson of a job",
            "description": "Lessons already queued or rendering are returned as they are; lessons whose "
            "lesson.json is broken are listed under skipped.",
            "tags": ["Jobs"],
            "parameters": [_job_id()],
            "responses": {
                "202": _json(ref("GenerateAllResponse"), "Queued"),
                **_errors(401, 404, 422, 429, 503),
            },
        }
    },
    "/api/renders/{renderId}": {
        "get": {
            "summary": "One render attempt",
            "tags": ["Renders"],
            "parameters": [_job_id("renderId")],
            "responses": {"200": _json(ref("Render"), "The render"), **_errors(401, 404)},
        }
    },
    "/api/renders/{renderId}/cancel": {
        "post": {
            "summary": "Cancel a render",
            "description": "A queued render is removed from the queue at once (200). A rendering one is "
            "asked to stop; it stops within seconds, its temporary output removed (202).",
            "tags": ["Renders"],
            "parameters": [_job_id("renderId")],
            "responses": {
                "200": _json(ref("Render"), "Cancelled"),
                "202": _json(ref("Render"), "Stopping"),
                **_errors(401, 404, 409),
            },
        }
    },
    "/api/renders/{renderId}/retry": {
        "post": {
            "summary": "Retry a failed or cancelled render as a new attempt",
            "tags": ["Renders"],
            "parameters": [_job_id("renderId")],
            "responses": {
                "202": _json(ref("Render"), "The new attempt"),
                **_errors(401, 404, 409, 422, 429, 503),
            },
        }
    },
    "/auth/token": {
        "post": {
            "summary": "Email and password for a short-lived bearer token",
            "tags": ["Auth"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("TokenRequest")}},
            },
            "responses": {
                "200": _json(ref("TokenResponse"), "A signed token"),
                **_errors(400, 401, 415, 429),
            },
        }
    },
    "/health": {
        "get": {
            "summary": "Whether the database and Redis answer",
            "tags": ["Operations"],
            "security": [],
            "responses": {"200": _json(ref("Health"), "Healthy"), "503": _json(ref("Health"), "Degraded")},
        }
    },
}


@cache
def document() -> dict:
    """The OpenAPI 3 document."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Lesson videos API",
            "version": "1.0.0",
            "description": "Turn prepared lesson folders into lesson videos and follow every render. "
            "The two /video-transform endpoints keep the original design's shapes; everything else is "
            "additive. Authenticate with `Authorization: Bearer <token>` (a personal API token, or one "
            "from POST /auth/token). Browser sessions work too; their POSTs need the X-CSRFToken header.",
        },
        "servers": [{"url": "/"}],
        "security": _AUTHED,
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }
