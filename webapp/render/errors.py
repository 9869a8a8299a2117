"""Typed render errors, so the worker can tell a bad lesson from a fault that may pass.

Every message is one line meant for people (no traceback):

- ManifestError: the lesson is wrong (lesson.json, an asset). Permanent: never retry.
- TransientRenderError: I/O or resource trouble (disk full, storage hiccup, a lost encoder
  process). Retrying later may succeed.
- RenderEnvironmentError: this machine cannot render (e.g. Pillow without raqm). Not the
  lesson's fault and not worth an immediate retry on the same worker.
- Cancelled: the caller asked to stop; all temporary output was removed.
"""

from __future__ import annotations


class RenderError(Exception):
    """Base class of every error the renderer raises on purpose."""

    kind = "render"
    retryable = False

    def __init__(self, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ManifestError(RenderError, ValueError):
    """lesson.json or one of its assets is invalid; never worth retrying.

    `field` names what is at fault, e.g. "segments[3].audio"; `reason` says why.
    str(error) is "field: reason".
    """

    kind = "manifest"
    retryable = False

    def __init__(self, field: str, reason: str | None = None):
        if reason is None:  # ManifestError("segments: at least one ...") style
            field, _, reason = str(field).partition(": ")
            if not reason:
                field, reason = "lesson.json", field
        self.field = field
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{field}: {self.reason}")


class TransientRenderError(RenderError):
    """An I/O or resource fault (disk full, unreadable storage, a lost encoder process)."""

    kind = "transient"
    retryable = True


class RenderEnvironmentError(RenderError):
    """The machine cannot render (missing library, broken install). Fix the worker."""

    kind = "environment"
    retryable = False


class Cancelled(RenderError):
    """The render was cancelled on request; no output or temporary file is left."""

    kind = "cancelled"
    retryable = False

    def __init__(self, message: str = "render cancelled"):
        super().__init__(message)


def transient_from_oserror(exc: OSError, what: str) -> TransientRenderError:
    """Wrap an OSError met while doing `what` as a transient error with a one-line message."""
    reason = exc.strerror or exc.__class__.__name__
    name = f" ({exc.filename})" if exc.filename else ""
    return TransientRenderError(f"{what}: {reason}{name}")
