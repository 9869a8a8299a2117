"""A render's media through the store: the lesson's material in, the video and its sidecars out.

The renderer reads and writes local paths and knows nothing of the store. With the local store
those paths are the store's own files (LESSONS_ROOT/<lessonPath>, VIDEOS_ROOT/<lessonPath>/<file>),
nothing is copied, and the renderer's own atomic rename publishes the video, as always.

With an object store the worker:
1. lists the lesson's objects: the lesson as readers see it (the version its pointer names, or
   its folder ``lessons/<lessonPath>/…``: webapp/storage/lessons.py), and the files of its video
   folder outside every lesson folder, which lessons may share as ``../file``; an object deleted
   while it is fetched (the lesson replaced meanwhile) starts the copy over, so a render reads one
   version of the lesson, whole;
2. takes each from the render cache under RENDER_CACHE_DIR, or downloads it there (whole files
   only), named by a hash of key, size and ETag: a changed object is a new entry. The entries
   live in the segment cache (webapp/render/cache.py), so one bound, RENDER_CACHE_MAX_BYTES,
   covers both and the renderer's pruning evicts the least recently used of either;
3. hard-links them into a private work folder (so pruning cannot pull them away), renders there;
4. uploads the sidecars, then the video, with `store.upload` (a temporary key, checked, then
   made visible) to ``videos/<lessonPath>/<file>``, before the render is marked completed.
A cancel or a kill before that leaves nothing at the output key: only the work folder (removed
here, or by the cache's sweep of dead renders' folders) and temporary keys (the hourly sweeper).

Lesson discovery and the manifest check before queueing read fetched copies the same way
(`lessons_root_for`, `lesson_copy`), so an object store is the only place lessons need to be.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from ..render import Cancelled, RenderResult
from ..render.cache import SegmentCache
from ..render.errors import transient_from_oserror
from ..storage import KeyRefused, ObjectInfo, ObjectMissing, Store, StoreUnavailable, check_prefix
from ..storage import lessons as store_lessons
from ..storage.lessons import Entry
from . import storage

log = logging.getLogger(__name__)
CACHE_SUFFIX = ".obj"  # beside the segment cache's .mp4, .m4a and .memo entries


@dataclass(frozen=True)
class Workspace:
    """Where the renderer reads the lesson and writes the video."""

    lesson_dir: Path
    output: Path
    output_key: str
    folder: Path | None = None  # the private work folder of an object store's render


def cache_key(info: ObjectInfo) -> str:
    return hashlib.sha256(f"store\0{info.key}\0{info.size}\0{info.etag}".encode()).hexdigest()


def lesson_objects(store: Store, lesson_path: str) -> list[Entry]:
    """(local key, object) of what a render of this lesson may read: the lesson as readers see
    it (storage/lessons.py: its current version, or its folder), and its video folder's files."""
    video_id, name = lesson_path.split("/", 1)
    shared, folders = store_lessons.video_listing(store, video_id)
    lesson = store_lessons.lesson_entries(store, lesson_path, folders.get(name, []))
    return [(f"lessons/{video_id}/{rel}", info) for rel, info in shared] + [
        (f"lessons/{lesson_path}/{rel}", info) for rel, info in lesson
    ]


def video_objects(store: Store, video_id: str) -> list[Entry]:
    """(local key, object) of a video's lessons as readers see them, and of their shared files."""
    shared, folders = store_lessons.video_listing(store, video_id)
    found = [(f"lessons/{video_id}/{rel}", info) for rel, info in shared]
    for name, listed in sorted(folders.items()):
        lesson = store_lessons.lesson_entries(store, f"{video_id}/{name}", listed)
        found += [(f"lessons/{video_id}/{name}/{rel}", info) for rel, info in lesson]
    return found


def _fetch(store: Store, info: ObjectInfo, dest: Path, cache: SegmentCache, private: Path) -> bool:
    """Put the object at `dest`, from the cache when it has it; True when it was downloaded."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    claimed = cache.claim(cache_key(info), CACHE_SUFFIX, private)
    if claimed is not None:
        if claimed.parent == private:
            os.replace(claimed, dest)  # our own hard link, moved into the lesson's tree
        else:  # no hard links on this filesystem: the entry itself
            shutil.copyfile(claimed, dest)
        return False
    got = store.download(info.key, dest)
    cache.publish(dest, cache_key(got), CACHE_SUFFIX)
    return True


def fetch_object(store: Store, info: ObjectInfo, dest: Path, private: Path) -> bool:
    """One object at `dest` through the render cache (from it when it has the object): `private`
    is the cache's private folder `dest` is in (private_folder). True when it was downloaded."""
    return _fetch(store, info, dest, render_cache(), private)


def remember(local: Path, info: ObjectInfo) -> None:
    """A file just put in the store, kept in the render cache as that object (the rescan after an
    upload, and the renders after it, fetch nothing): `local` is in the cache's file system."""
    render_cache().publish(local, cache_key(info), CACHE_SUFFIX)


def fetch(
    store: Store, listing: Callable[[], list[Entry]], folder: Path, cache: SegmentCache, what: str
) -> list[Entry]:
    """Copy what `listing` names under `folder` (local keys as paths). An object deleted while it
    is copied (its lesson replaced meanwhile) starts it over from a new listing, the files copied
    so far removed first, so the copy holds one version of each lesson, whole."""
    attempt = 0
    while True:
        attempt += 1
        placed: list[Path] = []
        try:
            found = listing()
            downloaded = 0
            for key, info in found:
                placed.append(folder / key)
                downloaded += _fetch(store, info, folder / key, cache, folder)
        except ObjectMissing:
            for path in placed:
                path.unlink(missing_ok=True)
            if attempt < store_lessons.READ_TRIES:
                continue
            raise StoreUnavailable(
                f"The lesson's material kept changing while it was fetched: {what}"
            ) from None
        except StoreUnavailable as exc:
            log.warning("store unavailable while fetching %s error=%s", what, exc)
            raise StoreUnavailable(
                "The media store could not be reached to fetch the lesson's material."
            ) from exc
        log.info("fetched %s files=%s downloaded=%s", what, len(found), downloaded)
        return found


def fetch_lesson(store: Store, lesson_path: str, folder: Path, cache: SegmentCache) -> Path:
    """Copy the lesson's material under `folder` (keys as paths); the local lesson folder."""
    fetch(store, lambda: lesson_objects(store, lesson_path), folder, cache, f"lesson={lesson_path}")
    return folder / "lessons" / lesson_path


def render_cache() -> SegmentCache:
    config = current_app.config
    return SegmentCache(Path(config["RENDER_CACHE_DIR"]), config["RENDER_CACHE_MAX_BYTES"])


def _new_private_folder() -> tuple[SegmentCache, Path]:
    cache = render_cache()
    return cache, cache.new_private_dir()


@contextlib.contextmanager
def private_folder() -> Iterator[tuple[SegmentCache, Path]]:
    """A private folder in the render cache, removed afterwards; the cache is then brought under
    its bound (the web process never renders, so it prunes here)."""
    cache, folder = _new_private_folder()
    try:
        yield cache, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        cache.prune()


@contextlib.contextmanager
def lesson_copy(lesson_path: str) -> Iterator[Path]:
    """A local folder of the lesson, to validate its manifest: the store's own folder, or a copy
    fetched through the render cache. OSError when the local disk fails; StoreUnavailable."""
    store = storage.store()
    if storage.is_local(store):
        yield store.local_path(f"lessons/{lesson_path}")
        return
    with private_folder() as (cache, folder):
        yield fetch_lesson(store, lesson_path, folder, cache)


@contextlib.contextmanager
def lessons_root_for(video_id: str, lessons_root: Path) -> Iterator[Path]:
    """Where to discover a video's lessons: LESSONS_ROOT for the local store; for an object
    store, a copy of ``lessons/<videoId>/`` (its lesson_<n> folders and its own files) fetched
    through the render cache, so discovery reads the manifests and checks the assets as locally."""
    store = storage.store()
    if storage.is_local(store):
        yield lessons_root
        return
    with private_folder() as (cache, folder):
        try:
            check_prefix(f"lessons/{video_id}/", min_depth=2)
        except KeyRefused:  # discovery explains a name that is no folder name
            pass
        else:
            fetch(store, lambda: video_objects(store, video_id), folder, cache, f"video={video_id}")
        (folder / "lessons").mkdir(exist_ok=True)
        yield folder / "lessons"


@contextlib.contextmanager
def workspace(lesson_path: str, output_key: str) -> Iterator[Workspace]:
    """The local paths of one render; with an object store, the fetched lesson in a private
    work folder, removed when the render is over (rendered, uploaded, failed or cancelled)."""
    store = storage.store()
    if storage.is_local(store):
        yield Workspace(store.local_path(f"lessons/{lesson_path}"), store.local_path(output_key), output_key)
        return
    try:
        cache, folder = _new_private_folder()  # pruned by the renderer
    except OSError as exc:
        raise transient_from_oserror(exc, "no room for the lesson's material") from exc
    try:
        try:
            lesson_dir = fetch_lesson(store, lesson_path, folder, cache)
        except OSError as exc:
            raise transient_from_oserror(exc, "cannot copy the lesson's material here") from exc
        yield Workspace(lesson_dir, folder / output_key, output_key, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(space: Workspace, result: RenderResult, should_cancel: Callable[[], bool]) -> None:
    """Put the rendered files at their keys (nothing to do for the local store): the sidecars
    first, the video last, so a video at its key always has its sidecars beside it."""
    if space.folder is None:
        return
    if should_cancel():
        raise Cancelled()
    store = storage.store()
    folder_key = space.output_key.rsplit("/", 1)[0]
    sidecars = [path for path in (result.poster, result.chapters, result.captions) if path is not None]
    try:
        for path in sidecars:
            store.upload(path, f"{folder_key}/{path.name}")
        store.upload(result.output_path, space.output_key)
    except StoreUnavailable as exc:
        log.warning("store unavailable while uploading key=%s error=%s", space.output_key, exc)
        raise StoreUnavailable("The media store could not be reached to upload the video.") from exc
    log.info("render uploaded key=%s sidecars=%s", space.output_key, len(sidecars))
