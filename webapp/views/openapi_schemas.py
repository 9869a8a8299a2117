"""The components of the OpenAPI document: the JSON shapes the API reads and answers."""

from __future__ import annotations

UUID = {"type": "string", "format": "uuid"}
TIMESTAMP = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, ending in Z"}
STATUS = {"type": "string", "enum": ["not_started", "generating", "completed", "failed"]}
RENDER_STATE = {"type": "string", "enum": ["queued", "rendering", "completed", "failed", "cancelled"]}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


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
            "generatedVideos": {"type": "array", "items": ref("GeneratedVideo")},
            "totalLessons": {"type": "integer"},
            "completedLessons": {"type": "integer"},
            "activeRenders": {"type": "array", "items": ref("ActiveRender")},
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
            "renders": {"type": "array", "items": ref("Render")},
        },
    },
    "JobDetail": {
        "allOf": [
            ref("Job"),
            {"type": "object", "properties": {"lessons": {"type": "array", "items": ref("Lesson")}}},
        ]
    },
    "JobPage": {
        "type": "object",
        "properties": {
            "jobs": {"type": "array", "items": ref("Job")},
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
            "renders": {"type": "array", "items": ref("Render")},
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
