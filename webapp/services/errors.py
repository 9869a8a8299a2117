"""Requests a service refuses, each with the HTTP status that says why."""

from __future__ import annotations


class JobError(ValueError):
    """Input for a job that cannot be accepted; the message is for the user."""

    status = 422


class RenderRequestError(Exception):
    """A request the service refuses; `status` is the HTTP status that says why."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unprocessable(RenderRequestError):
    status = 422


class BrokenLesson(Unprocessable):
    """The lesson's lesson.json is not valid (the lesson shows why until it is fixed and rescanned)."""


class Conflict(RenderRequestError):
    status = 409


class TooManyRenders(RenderRequestError):
    status = 429


class QueueUnavailable(RenderRequestError):
    status = 503
