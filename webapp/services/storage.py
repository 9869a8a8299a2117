"""The app's media: its store (STORAGE_URL), and the local paths of the local store.

Keys follow the contract (``lessons/<videoId>/lesson_<n>/…``, ``videos/<lessonPath>/<file>``);
webapp.storage does the work, with every key confined to its area. Renders reach the store
(and lesson discovery, and the manifest check before queueing) through services/media.py,
downloads through views/api/generation.py, uploaded lesson packages through services/uploads.py
and webapp/storage/lessons.py (ARCHITECTURE.md, "Storage").
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, current_app

from .. import queue
from ..models import SIDECAR_KINDS, Render
from ..render import partial_outputs
from ..storage import LocalStore, Store, StoreError, open_store
from ..storage import lessons as store_lessons
from ..storage.local import confined

log = logging.getLogger(__name__)
STALE_TEMPORARY_SECONDS = 24 * 3600  # at least: an upload of a video takes minutes


def init_app(app: Flask) -> None:
    config = app.config
    store = open_store(
        config.get("STORAGE_URL"),
        config["LESSONS_ROOT"],
        config["VIDEOS_ROOT"],
        read_timeout=config["STORAGE_READ_TIMEOUT"],
    )
    app.extensions["store"] = store
    app.extensions["store_origin"] = url_origin(store)


def url_origin(store: Store) -> str | None:
    """The origin (scheme://host:port) of the store's presigned URLs, which the pages' player
    fetches videos from; None for a store that gives no URLs. Signing is local: no request."""
    try:
        url = store.url("videos/origin/probe")
    except StoreError as exc:
        log.warning("the store cannot sign URLs (downloads will fail): %s", exc)
        return None
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def store() -> Store:
    return current_app.extensions["store"]


def is_local(found: Store | None = None) -> bool:
    """Whether media is on this machine's disk (LESSONS_ROOT, VIDEOS_ROOT), read in place."""
    return isinstance(found or store(), LocalStore)


def lesson_dir(lessons_root: Path, lesson_path: str) -> Path:
    """The folder of a lesson path ("<videoId>/lesson_<n>"), refusing anything outside LESSONS_ROOT."""
    return confined(lessons_root, "lessons", lesson_path, "lesson path")


def video_file(videos_root: Path, output_path: str) -> Path:
    """Where a render's output lives: VIDEOS_ROOT/<lessonPath>/<file> for "videos/<lessonPath>/<file>"."""
    return confined(videos_root, "videos", output_path.removeprefix("videos/"), "output path")


def render_output(render: Render) -> Path:
    return video_file(Path(current_app.config["VIDEOS_ROOT"]), render.output_path)


def render_keys(render: Render) -> list[str]:
    """The keys of the video and of the files written beside it (poster, chapters, captions)."""
    sidecars = [render.sidecar_path(kind) for kind in SIDECAR_KINDS]
    return [render.output_path] + [path for path in sidecars if path]


def delete_keys(keys: list[str]) -> int:
    """Remove these objects from the store; best effort (the rows are already gone)."""
    removed = 0
    for key in keys:
        try:
            removed += store().delete(key)
        except (StoreError, ValueError) as exc:
            log.warning("could not delete a stored file key=%s error=%s", key, exc)
    return removed


def stale_after() -> float:
    """The age past which an unfinished upload is surely dead: older than the longest upload.
    A video goes up inside its render, and RQ stops a render at its hard limit, at most
    `queue.job_timeout` of the longest lesson allowed (LESSON_MAX_SECONDS; 16 h 5 min for 4 h):
    past that and an hour, nothing is sending it any more. Never less than a day."""
    longest = queue.job_timeout(current_app.config["LESSON_MAX_SECONDS"])
    return max(STALE_TEMPORARY_SECONDS, longest + 3600)


def sweep_temporaries(older_than: float | None = None) -> int:
    """Remove uploads to the store that never finished (temporary keys, unfinished multipart
    uploads) older than `older_than` seconds, by default `stale_after()`, and lesson versions no
    reader sees (uploads that died before their switch, replaced lessons' leftovers)."""
    older_than = stale_after() if older_than is None else older_than
    found = store()
    removed = found.sweep_temporaries(older_than)
    if not is_local(found):  # the local store keeps lessons as folders, renamed into place
        removed += store_lessons.sweep_versions(found, older_than)
    return removed


def remove_partial_outputs(render: Render) -> None:
    """Delete what a stopped render left beside its target; best effort."""
    try:
        for leftover in partial_outputs(render_output(render)):
            leftover.unlink(missing_ok=True)
    except (OSError, ValueError) as exc:
        log.warning("could not remove partial output render_id=%s error=%s", render.id, exc)
