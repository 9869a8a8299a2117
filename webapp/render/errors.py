"""Typed render errors, so the worker can tell a bad lesson from a fault that may pass.

Every message is one line meant for people (no traceback):

- ManifestError: the lesson is wrong (lesson.json, an asset). Permanent: never retry.
- TransientRenderError: I/O or resource trouble (disk full, storage hiccup, a lost encoder
  process). Retrying later may succeed.
- RenderEnvironmentError: this machine cannot render (e.g. Pillow without raqm). Not the
  lesson's fault and not worth an immediate retry on the same worker.
- Cancelled: the caller asked to stop; all temporary output was removed.

Messages reach users, so they never carry a server path: files are named relative to their
root (`audio/1.wav` in the lesson folder, the output's file name, "render cache"), and any
absolute path that slips through is cut to its last component (`redact_paths`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

# An absolute POSIX path (at least one component), with the quotes Python puts around it.
_ABSOLUTE_PATH = re.compile(r"""(['"]?)(?<![\w.~/-])(/(?:[^\s/'"(),;:]+/)*([^\s/'"(),;:]+))\1""")


def redact_paths(text: str) -> str:
    """`text` with every absolute path replaced by its last component."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(3), text)


class RenderError(Exception):
    """Base class of every error the renderer raises on purpose."""

    kind = "render"
    retryable = False

    def __init__(self, message: str):
        message = redact_paths(" ".join(str(message).split()))  # always one line, no server path
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ManifestError(RenderError, ValueError):
    """lesson.json or one of its assets is invalid; never worth retrying.

    `field` names what is at fault, e.g. "segments[3].audio"; `reason` says why.
    str(error) is "field: reason"; when the check found further problems (`more`, in the
    order of the file), they follow: "field: reason; field2: reason2".
    """

    kind = "manifest"
    retryable = False

    def __init__(self, field: str, reason: str | None = None, more: Sequence[ManifestError] = ()):
        if reason is None:  # ManifestError("segments: at least one ...") style
            field, _, reason = str(field).partition(": ")
            if not reason:
                field, reason = "lesson.json", field
        self.field = field
        self.reason = redact_paths(" ".join(str(reason).split()))
        self.more = tuple(more)
        super().__init__("; ".join([f"{field}: {self.reason}", *(str(e) for e in self.more)]))

    def with_more(self, more: Sequence[ManifestError]) -> ManifestError:
        """This problem followed by `more` (each with its own field), as one error."""
        return ManifestError(self.field, self.reason, [*self.more, *more])


class Problems:
    """The ManifestErrors of a check that goes on past the first problem, so a user sees them
    together; it stops at `limit` problems (each may have cost a look at a file)."""

    def __init__(self, limit: int = 5):
        self.found: list[ManifestError] = []
        self.limit = limit

    def add(self, exc: ManifestError) -> None:
        self.found.append(exc)
        if len(self.found) >= self.limit:
            stop = ManifestError("lesson.json", f"checking stopped at {self.limit} problems")
            raise self.found[0].with_more([*self.found[1:], stop])

    def check(self) -> None:
        """Raise the problems found so far as one ManifestError, if there are any."""
        if self.found:
            raise self.found[0].with_more(self.found[1:])


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


# (root, name, relative): a file under `root` is called `name`, or, if `relative`, by its path
# inside `root` (the root itself is still `name`).
PathRoot = tuple[Path | str, str, bool]


def path_for_users(filename, roots: Iterable[PathRoot] = ()) -> str | None:
    """How to name `filename` in a message: relative to one of `roots`, else not at all."""
    if filename is None or filename == "":
        return None
    try:
        path = os.path.abspath(os.fsdecode(filename))
    except (TypeError, ValueError):
        return None
    # The deepest root wins: an output folder inside the lesson folder is still "the output".
    for root, name, relative in sorted(roots, key=lambda r: -len(os.path.abspath(r[0]))):
        base = os.path.abspath(root)
        if path == base:
            return name
        if path.startswith(base.rstrip(os.sep) + os.sep):
            return Path(os.path.relpath(path, base)).as_posix() if relative else name
    return None


def transient_from_oserror(exc: OSError, what: str, roots: Iterable[PathRoot] = ()) -> TransientRenderError:
    """Wrap an OSError met while doing `what` as a transient error with a one-line message.

    The file it names is shown only relative to one of `roots` (see path_for_users).
    """
    reason = exc.strerror or exc.__class__.__name__
    name = path_for_users(exc.filename, roots)
    return TransientRenderError(f"{what}: {reason} ({name})" if name else f"{what}: {reason}")
