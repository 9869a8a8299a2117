"""The OpenAPI 3 document of the JSON API (served at /openapi.json and shown at /docs).

Written by hand: a test checks that every path and method here is a route of the app and
that every API route is described here, but not that the shapes agree; keep them in step
when an endpoint changes.
"""

from __future__ import annotations

from functools import cache

UUID = {"type": "string", "format": "uuid"}
TIMESTAMP = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, ending in Z"}
STATUS = {"type": "string", "enum": ["not_started", "generating", "completed", "failed"]}
RENDER_STATE = {"type": "string", "enum": ["queued", "rendering", "completed", "failed", "cancelled"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


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
    return {str(code): _json(_ref("Error"), reasons[code]) for code in codes}


def _job_id(name: str = "jobId") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": UUID}


SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["success", "statusCode", "error", "message"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "statusCode": {"type": "integer", "example": 422},
            "error": {
                "type": "string",
                "description": "The HTTP reason phrase",
                "example": "Unprocessable Content",
            },
            "message": {"type": "string", "description": "What went wrong, in words"},
        },
    },
    "GenerateVideoRequest": {
        "type": "object",
        "required": ["jobId", "lessonPath"],
        "properties": {
            "jobId": UUID,
            "lessonPath": {"type": "string", "example": "henIVlCPVIY/lesson_1"},
            "outputFileName": {
                "type": "string",
                "default": "final_video.mp4",
                "maxLength": 100,
                "pattern": "^[A-Za-z0-9_-][A-Za-z0-9 ._-]*\\.[mM][pP]4$",
                "description": "A file name ending in .mp4 of letters, digits, spaces, '.', '-' and '_': "
                "no folders, no '..', no leading dot or space",
            },
        },
    },
    "GenerateVideoResponse": {
        "type": "object",
        "required": [
            "success",
            "outputPath",
            "jobId",
            "videoGenerationStatus",
            "currentLesson",
            "renderId",
            "statusUrl",
        ],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "outputPath": {"type": "string", "example": "videos/henIVlCPVIY/lesson_1/final_video.mp4"},
            "jobId": UUID,
            "videoGenerationStatus": STATUS,
            "currentLesson": {"type": "string", "example": "henIVlCPVIY/lesson_1"},
            "renderId": UUID,
            "statusUrl": {"type": "string"},
        },
    },
    "GeneratedVideo": {
        "type": "object",
        "required": ["lessonPath", "outputPath", "generatedAt", "success"],
        "properties": {
            "lessonPath": {"type": "string"},
            "outputPath": {"type": "string"},
            "generatedAt": TIMESTAMP,
            "success": {"type": "boolean"},
            "error": {"type": "string", "description": "Present when success is false"},
        },
    },
    "ActiveRender": {
        "type": "object",
        "properties": {
            "renderId": UUID,
            "lessonPath": {"type": "string"},
            "state": {"type": "string", "enum": ["queued", "rendering"]},
            "framesDone": {"type": "integer"},
            "framesTotal": {"type": "integer", "nullable": True},
            "percent": {"type": "number"},
            "etaSeconds": {"type": "integer", "nullable": True},
        },
    },
    "GenerationStatus": {
        "type": "object",
        "required": [
            "videoJobId",
            "videoGenerationStatus",
            "currentLesson",
            "generatedVideos",
            "totalLessons",
            "completedLessons",
        ],
        "properties": {
            "videoJobId": UUID,
            "videoGenerationStatus": STATUS,
            "currentLesson": {"type": "string", "nullable": True},
            "generatedVideos": {"type": "array", "items": _ref("GeneratedVideo")},
            "totalLessons": {"type": "integer"},
            "completedLessons": {"type": "integer"},
            "activeRenders": {"type": "array", "items": _ref("ActiveRender")},
            "updatedAt": TIMESTAMP,
        },
    },
    "Render": {
        "type": "object",
        "properties": {
            "renderId": UUID,
            "jobId": UUID,
            "lessonPath": {"type": "string"},
            "state": RENDER_STATE,
            "attempt": {"type": "integer"},
            "outputFileName": {"type": "string"},
            "outputPath": {"type": "string"},
            "framesDone": {"type": "integer"},
            "framesTotal": {"type": "integer", "nullable": True},
            "percent": {"type": "number"},
            "error": {
                "type": "object",
                "nullable": True,
                "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
            },
            "cancelRequested": {"type": "boolean"},
            "requestedBy": {"type": "string", "nullable": True},
            "queuedAt": TIMESTAMP,
            "startedAt": {**TIMESTAMP, "nullable": True},
            "finishedAt": {**TIMESTAMP, "nullable": True},
            "heartbeatAt": {**TIMESTAMP, "nullable": True},
            "durationSeconds": {"type": "number", "nullable": True},
            "sizeBytes": {"type": "integer", "nullable": True},
            "videoUrl": {"type": "string", "nullable": True, "description": "Set once the render completed"},
        },
    },
    "Job": {
        "type": "object",
        "properties": {
            "id": UUID,
            "title": {"type": "string"},
            "videoId": {"type": "string"},
            "course": {"type": "string"},
            "createdAt": TIMESTAMP,
            "videoGenerationStatus": STATUS,
            "totalLessons": {"type": "integer"},
            "completedLessons": {"type": "integer"},
            "statusUrl": {"type": "string"},
        },
    },
    "Lesson": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "number": {"type": "integer"},
            "title": {"type": "string"},
            "durationSeconds": {"type": "number", "nullable": True},
            "problem": {"type": "string", "nullable": True},
            "missing": {"type": "boolean"},
            "renders": {"type": "array", "items": _ref("Render")},
        },
    },
    "JobDetail": {
        "allOf": [
            _ref("Job"),
            {"type": "object", "properties": {"lessons": {"type": "array", "items": _ref("Lesson")}}},
        ]
    },
    "JobPage": {
        "type": "object",
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "page": {"type": "integer"},
            "pages": {"type": "integer"},
            "total": {"type": "integer"},
        },
    },
    "GenerateAllResponse": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "jobId": UUID,
            "renders": {"type": "array", "items": _ref("Render")},
            "skipped": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"lessonPath": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
            "statusUrl": {"type": "string"},
        },
    },
    "TokenRequest": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {"email": {"type": "string"}, "password": {"type": "string", "format": "password"}},
    },
    "TokenResponse": {
        "type": "object",
        "properties": {
            "accessToken": {"type": "string"},
            "tokenType": {"type": "string", "enum": ["Bearer"]},
            "expiresIn": {"type": "integer", "description": "Seconds"},
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "database": {"type": "string", "enum": ["ok", "unavailable"]},
            "redis": {"type": "string", "enum": ["ok", "unavailable"]},
        },
    },
}

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
                "content": {"application/json": {"schema": _ref("GenerateVideoRequest")}},
            },
            "responses": {
                "202": {
                    **_json(_ref("GenerateVideoResponse"), "Queued (or already queued)"),
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
                        "application/json": {"schema": _ref("GenerationStatus")},
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
            "responses": {"200": _json(_ref("JobPage"), "A page of jobs"), **_errors(400, 401)},
        }
    },
    "/api/jobs/{jobId}": {
        "get": {
            "summary": "A job with its lessons and every render attempt",
            "tags": ["Jobs"],
            "parameters": [_job_id()],
            "responses": {"200": _json(_ref("JobDetail"), "The job"), **_errors(401, 404)},
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
                "202": _json(_ref("GenerateAllResponse"), "Queued"),
                **_errors(401, 404, 422, 429, 503),
            },
        }
    },
    "/api/renders/{renderId}": {
        "get": {
            "summary": "One render attempt",
            "tags": ["Renders"],
            "parameters": [_job_id("renderId")],
            "responses": {"200": _json(_ref("Render"), "The render"), **_errors(401, 404)},
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
                "200": _json(_ref("Render"), "Cancelled"),
                "202": _json(_ref("Render"), "Stopping"),
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
                "202": _json(_ref("Render"), "The new attempt"),
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
                "content": {"application/json": {"schema": _ref("TokenRequest")}},
            },
            "responses": {
                "200": _json(_ref("TokenResponse"), "A signed token"),
                **_errors(400, 401, 415, 429),
            },
        }
    },
    "/health": {
        "get": {
            "summary": "Whether the database and Redis answer",
            "tags": ["Operations"],
            "security": [],
            "responses": {"200": _json(_ref("Health"), "Healthy"), "503": _json(_ref("Health"), "Degraded")},
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
