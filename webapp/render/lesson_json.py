"""Read a lesson's lesson.json safely: inside its folder, a regular file, within the size cap.

Every problem raises ManifestError naming "lesson folder" or "lesson.json".
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from . import limits
from .errors import ManifestError

MANIFEST_NAME = "lesson.json"


def lesson_root(lesson_dir: Path | str) -> Path:
    """The lesson folder, resolved; ManifestError if it is missing or not a folder."""
    try:
        root = Path(lesson_dir).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ManifestError("lesson folder", "not found") from exc
    if not root.is_dir():
        raise ManifestError("lesson folder", "not a folder")
    return root


def read_manifest(root: Path) -> str:
    """The text of ROOT/lesson.json: a regular file inside ROOT (after symlinks), within the cap."""
    fd = _open_manifest(_manifest_path(root))
    try:
        data = _read_regular_file(fd)
    finally:
        os.close(fd)
    if len(data) > limits.MAX_MANIFEST_BYTES:
        raise ManifestError(MANIFEST_NAME, _too_large())
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(MANIFEST_NAME, "not UTF-8 text") from exc


def _manifest_path(root: Path) -> Path:
    """ROOT/lesson.json with symlinks resolved; ManifestError if that leads out of ROOT."""
    try:
        path = (root / MANIFEST_NAME).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        raise ManifestError(MANIFEST_NAME, f"cannot resolve path ({exc.__class__.__name__})") from exc
    if not path.is_relative_to(root):  # checked before anything outside is opened
        raise ManifestError(MANIFEST_NAME, "resolves outside the lesson folder (symlink leading out)")
    return path


def _open_manifest(path: Path) -> int:
    """A read-only file descriptor of lesson.json, or ManifestError."""
    # O_NOFOLLOW: a symlink swapped in after resolve() is refused; O_NONBLOCK: a FIFO cannot
    # hang the open (it is refused later as not a regular file).
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        return os.open(path, flags)
    except FileNotFoundError as exc:
        raise ManifestError(MANIFEST_NAME, "file not found") from exc
    except OSError as exc:
        raise ManifestError(MANIFEST_NAME, f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc


def _read_regular_file(fd: int) -> bytes:
    """At most the cap + 1 bytes of lesson.json; ManifestError unless it is a regular file within the cap."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(MANIFEST_NAME, "not a regular file")
        if info.st_size > limits.MAX_MANIFEST_BYTES:
            raise ManifestError(MANIFEST_NAME, _too_large())
        chunks, size = [], 0
        while size <= limits.MAX_MANIFEST_BYTES:  # the file may grow after fstat: read at most cap + 1
            chunk = os.read(fd, min(1 << 20, limits.MAX_MANIFEST_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ManifestError(MANIFEST_NAME, f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc
    return b"".join(chunks)


def _too_large() -> str:
    """The reason given for a lesson.json over the cap, in MB when the cap is whole megabytes."""
    if limits.MAX_MANIFEST_BYTES % (1024 * 1024) == 0:
        return f"too large (the limit is {limits.MAX_MANIFEST_BYTES // (1024 * 1024)} MB)"
    return f"too large (the limit is {limits.MAX_MANIFEST_BYTES // 1024} KB)"


def parse_json(text: str) -> dict:
    """lesson.json's text parsed to its top-level object, or ManifestError."""
    try:
        raw = json.loads(text, parse_constant=lambda c: float("nan"))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        # Python's words point at a position it gives apart ("Unterminated string starting at"):
        # the position is said first here, so they end without it.
        reason = exc.msg.removesuffix(" starting at").removesuffix(" at")
        raise ManifestError(MANIFEST_NAME, f"invalid JSON at {where}: {reason}") from exc
    except ValueError as exc:  # a number of more than 4300 digits (Python's int limit)
        raise ManifestError(MANIFEST_NAME, "invalid JSON: a number is too long") from exc
    except RecursionError as exc:  # e.g. [[[[...]]]] nested thousands deep
        raise ManifestError(MANIFEST_NAME, "invalid JSON: nested too deeply") from exc
    if not isinstance(raw, dict):
        raise ManifestError(MANIFEST_NAME, "must be a JSON object")
    return raw
