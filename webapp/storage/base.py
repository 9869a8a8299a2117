"""What every store offers, the rules its keys follow, and the errors it raises.

Keys keep the layout of the contract: ``lessons/<videoId>/lesson_<n>/…`` for lesson material
and ``videos/<lessonPath>/<file>`` for renders and the files beside them. A key that could
leave its area (``..``, an absolute path, a NUL, an empty part) is refused before any backend
sees it. Writes are atomic: an upload lands at a temporary key under ``<area>/.partial/``,
is checked, and only then appears at its key; the sweeper removes temporaries left behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

AREAS = ("lessons", "videos")
PARTIAL = ".partial"  # <area>/.partial/<token>: uploads not yet checked; never a video id (no dots)
CHUNK = 1024 * 1024


class StoreError(Exception):
    """The store refused or failed an operation for a lasting reason (configuration, integrity)."""


class StoreUnavailable(StoreError):
    """The store could not be reached, throttled us or failed on its side: a passing fault,
    worth retrying later."""


class ObjectMissing(StoreError, FileNotFoundError):
    """No object at that key."""


class KeyRefused(ValueError):
    """A key that would leave its area, or is not a key at all."""


class RangeRefused(StoreError, ValueError):
    """A byte range that starts past the end of the object (HTTP 416)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # changes when the content does: with the size, what a local cache is keyed by
    modified: datetime  # aware, UTC


def _parts(key: str, what: str) -> list[str]:
    if not isinstance(key, str) or not key:
        raise KeyRefused(f"{what} must be a non-empty string")
    if "\x00" in key or "\\" in key or key.startswith("/"):
        raise KeyRefused(f"{what} {key!r} leaves its folder")
    parts = key.split("/")
    if parts[0] not in AREAS:
        raise KeyRefused(f"{what} {key!r} is not under {' or '.join(a + '/' for a in AREAS)}")
    if any(part in ("", ".", "..") for part in parts[1:]):
        raise KeyRefused(f"{what} {key!r} leaves its folder")
    return parts


def check_key(key: str) -> str:
    """The key itself when it names one object inside an area; KeyRefused otherwise."""
    if len(_parts(key, "key")) < 2:
        raise KeyRefused(f"key {key!r} names an area, not an object")
    return key


def check_prefix(prefix: str, *, min_depth: int = 1) -> str:
    """A prefix to list or delete under: an area, then whole or partial parts ("videos/ab/")."""
    parts = _parts(prefix.removesuffix("/") or prefix, "prefix")
    if len(parts) < min_depth:
        raise KeyRefused(f"prefix {prefix!r} is too broad")
    return prefix


def temporary_key(key: str) -> str:
    """A fresh temporary key in the same area as `key` (same disk for the local store)."""
    return f"{check_key(key).split('/', 1)[0]}/{PARTIAL}/{uuid.uuid4().hex}"


def crc32_of(path: Path) -> int:
    return crc32_parts(path, None)[0]


def crc32_parts(path: Path, part_size: int | None) -> tuple[int, list[int]]:
    """The CRC32 of the whole file, and of each part of `part_size` bytes (S3's multipart)."""
    whole, parts, part, filled = 0, [], 0, 0
    step = min(CHUNK, part_size) if part_size else CHUNK
    with open(path, "rb") as fh:
        while chunk := fh.read(step if not part_size else min(step, part_size - filled)):
            whole = zlib.crc32(chunk, whole)
            if part_size:
                part, filled = zlib.crc32(chunk, part), filled + len(chunk)
                if filled == part_size:
                    parts.append(part)
                    part, filled = 0, 0
    if part_size and filled:
        parts.append(part)
    return whole, parts


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


Progress = Callable[[int], None]  # called with the bytes sent since the last call


class Store(ABC):
    """Lesson material and videos, wherever they are kept."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size, ETag and time of the object at `key`, or None when there is none."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    @abstractmethod
    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A reader of bytes start..end (inclusive, as in an HTTP range) of the object."""

    @abstractmethod
    def download(self, key: str, dest: Path) -> ObjectInfo:
        """Copy the object to a local file; `dest` appears whole or not at all."""

    @abstractmethod
    def upload(self, source: Path, key: str, progress: Progress | None = None) -> ObjectInfo:
        """Put a local file at `key`, atomically: it goes to a temporary key, is checked
        (size, and checksum where the store gives one), then appears at `key`. A failed or
        interrupted upload leaves nothing at `key` (at most a temporary for the sweeper)."""

    def copy(self, source_key: str, key: str) -> ObjectInfo:
        """Put a copy of the object at `source_key` at `key`, as upload puts a file (ObjectMissing
        when there is none). A store that copies in place overrides this: no bytes pass here."""
        with tempfile.TemporaryDirectory(prefix="store-copy-") as folder:
            local = Path(folder) / "object"
            self.download(source_key, local)
            return self.upload(local, key)

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (at least one level below an area)."""
        check_prefix(prefix, min_depth=2)
        return sum(self.delete(info.key) for info in list(self.list(prefix)))

    def url(
        self,
        key: str,
        *,
        expires: int = 300,
        filename: str | None = None,
        mimetype: str | None = None,
        attachment: bool = True,
    ):
        """A short-lived URL a browser can fetch (ranges included), or None when the web server
        must stream the object itself (the local store). With `filename`, the response names it
        (saved as a file with `attachment`, shown in the page without)."""
        check_key(key)
        return None

    def local_path(self, key: str) -> Path | None:
        """The object's file when the store is the local disk; None otherwise."""
        check_key(key)
        return None

    def temporaries(self) -> Iterator[ObjectInfo]:
        """Objects under the temporary prefixes: uploads that never finished."""
        for area in AREAS:
            yield from self.list(f"{area}/{PARTIAL}/")

    def sweep_temporaries(self, older_than: float) -> int:
        """Remove temporaries older than `older_than` seconds; how many were removed."""
        cutoff = time.time() - older_than
        stale = [info.key for info in self.temporaries() if info.modified.timestamp() <= cutoff]
        return sum(self.delete(key) for key in stale)


def content_disposition(filename: str, attachment: bool = True) -> str:
    """A Content-Disposition value naming `filename` (RFC 6266: ASCII fallback, UTF-8 name)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def copy_stream(reader: BinaryIO, dest: Path) -> int:
    """Write a reader into `dest` through a temporary file beside it; the bytes written."""
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(partial, "wb") as out:
            shutil.copyfileobj(reader, out, CHUNK)
            written = out.tell()
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return written
