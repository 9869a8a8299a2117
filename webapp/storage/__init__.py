"""Where lesson material and videos are kept: the local disk or S3-compatible object storage.

This package knows nothing of Flask; the app picks a store with `open_store(STORAGE_URL, …)`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import (
    AREAS,
    PARTIAL,
    KeyRefused,
    ObjectInfo,
    ObjectMissing,
    RangeRefused,
    Store,
    StoreError,
    StoreUnavailable,
    check_key,
    check_prefix,
)
from .local import LocalStore

__all__ = [
    "AREAS",
    "PARTIAL",
    "KeyRefused",
    "LocalStore",
    "ObjectInfo",
    "ObjectMissing",
    "RangeRefused",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "check_key",
    "check_prefix",
    "local_roots",
    "open_store",
]


def local_roots(url: str | None) -> tuple[Path, Path] | None:
    """(lessons root, videos root) for a ``file:///path`` URL: path/lessons and path/videos."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise ValueError(f"STORAGE_URL {url!r}: a local store is file:///absolute/path")
    base = Path(unquote(parts.path))
    return base / "lessons", base / "videos"


def open_store(url: str | None, lessons_root: Path | str, videos_root: Path | str, **s3_options) -> Store:
    """The store STORAGE_URL names: unset or ``file:///path`` → the local disk (for unset, the
    given roots), ``s3://bucket/prefix`` → S3-compatible object storage."""
    roots = local_roots(url)
    if not url or roots:
        return LocalStore(*(roots or (lessons_root, videos_root)))
    parts = urlsplit(url)
    if parts.scheme == "s3" and parts.netloc:
        from .s3 import S3Store  # boto3 is imported only when a bucket is used

        return S3Store(parts.netloc, unquote(parts.path), **s3_options)
    raise ValueError(f"STORAGE_URL {url!r}: expected file:///path or s3://bucket/prefix")
