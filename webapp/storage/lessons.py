"""Lessons in a store, replaced whole: what readers see of a lesson, and how a new one lands.

An object store has no rename of many keys, so a lesson written by this app lives in a version
of its own and a pointer names the version readers see:

    lessons/<videoId>/lesson_<n>/.version.json                    {"version": T, "files": [...]}
    lessons/<videoId>/lesson_<n>/.lesson-versions/<T>/lesson.json, …   the files of version T

A new lesson is uploaded under a fresh version (invisible: nothing points at it), then the
pointer, one small object written at once, is switched to it: readers see the old lesson or the
new one, never a mix. The pointer lists the version's files, so a file the new lesson lacks is
not part of it even before the replaced version is deleted. A lesson without a pointer is read
as before, from the files under its folder (lessons put there by earlier pipeline steps).

A reader that finds the version it read deleted under it (replaced meanwhile) reads the pointer
again (`LessonChanged` after a few tries). Versions that no pointer names (an upload that died
before its switch) and files hidden by a pointer are removed by `sweep_versions`.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .base import ObjectInfo, ObjectMissing, Store, StoreError, StoreUnavailable, check_prefix

LESSON_DIR = re.compile(r"\Alesson_([0-9]{1,6})\Z")  # ASCII digits; \Z: nothing, not even a newline, after
POINTER = ".version.json"
VERSIONS = ".lesson-versions"  # not ".versions": SeaweedFS keeps its own object versions there
POINTER_MAX_BYTES = 4 * 1024 * 1024
READ_TRIES = 5

Entry = tuple[str, ObjectInfo]  # (path inside the lesson or video folder, the object holding it)


class LessonChanged(StoreUnavailable):
    """The lesson was replaced again and again while it was read: a passing fault."""


@dataclass(frozen=True)
class Version:
    token: str
    files: tuple[str, ...]


def lesson_prefix(lesson_path: str) -> str:
    return check_prefix(f"lessons/{lesson_path}/", min_depth=3)


def _version_prefix(lesson_path: str, token: str) -> str:
    return f"{lesson_prefix(lesson_path)}{VERSIONS}/{token}/"


def _internal(relative: str) -> bool:
    """The pointer or a version: the machinery, never a file of the lesson itself."""
    return relative == POINTER or relative.startswith(f"{VERSIONS}/")


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def read_pointer(store: Store, lesson_path: str) -> Version | None:
    """The version readers see, or None for a lesson without a pointer."""
    key = lesson_prefix(lesson_path) + POINTER
    try:
        with store.open(key) as reader:
            raw = reader.read(POINTER_MAX_BYTES + 1)
    except ObjectMissing:
        return None
    try:
        data = json.loads(raw)
        version = Version(str(data["version"]), tuple(str(name) for name in data["files"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{key!r} is not a lesson pointer; remove it to read the lesson's files") from exc
    _version_prefix(lesson_path, version.token)  # refuses a token that leaves its folder
    return version


def lesson_entries(store: Store, lesson_path: str, listed: Iterable[ObjectInfo] | None = None) -> list[Entry]:
    """(path inside the lesson, object) of every file of the lesson as readers see it: the files
    of the version its pointer names, else the files under its folder. `listed`: the folder's
    objects when the caller has listed them already."""
    prefix = lesson_prefix(lesson_path)
    for _ in range(READ_TRIES):
        found = list(store.list(prefix) if listed is None else listed)
        listed = None
        if not any(info.key == prefix + POINTER for info in found):
            # Listed before any pointer was written, so before anything it hides was deleted.
            return [(rel, info) for info in found if not _internal(rel := info.key[len(prefix) :])]
        version = read_pointer(store, lesson_path)
        if version is None:
            continue  # the pointer went meanwhile: list again
        inside = _version_prefix(lesson_path, version.token)
        stored = {info.key[len(inside) :]: info for info in store.list(inside)}
        if all(name in stored for name in version.files):
            return [(name, stored[name]) for name in version.files]
        # That version was replaced and deleted while we read it: read the pointer again.
    raise LessonChanged(f"the lesson {lesson_path} kept changing while it was read; try again")


def video_listing(store: Store, video_id: str) -> tuple[list[Entry], dict[str, list[ObjectInfo]]]:
    """One listing of ``lessons/<videoId>/``: the files its lessons share (outside every
    lesson_<n>/ folder, nothing hidden), and the objects of each lesson folder by its name."""
    prefix = check_prefix(f"lessons/{video_id}/", min_depth=2)
    shared: list[Entry] = []
    folders: dict[str, list[ObjectInfo]] = {}
    for info in store.list(prefix):
        relative = info.key[len(prefix) :]
        first, _, rest = relative.partition("/")
        if rest and LESSON_DIR.match(first):
            folders.setdefault(first, []).append(info)
        elif not _hidden(relative):
            shared.append((relative, info))
    return shared, folders


def new_token() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:12]}"


def put_version(
    store: Store,
    lesson_path: str,
    folder: Path,
    copies: dict[str, str] | None = None,
    placed: Callable[[Path, ObjectInfo], None] | None = None,
) -> Version:
    """Upload a local lesson folder as a new version nobody reads yet. A file named in `copies`
    ({path in the lesson: key of an object with its bytes}) is copied in the store instead when
    the key is of one of this lesson's own versions, which never change (a caption fixed does not
    send the lesson's clips again). `placed(local file, its object)` is told of each file. On
    failure, what was uploaded is removed (best effort; the sweeper takes what is left)."""
    found = [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()]
    files = tuple(sorted(path.relative_to(folder).as_posix() for path in found))
    version = Version(new_token(), files)
    inside = _version_prefix(lesson_path, version.token)
    own = _version_prefix(lesson_path, "")[:-1]  # this lesson's versions: written once, never changed
    copies = {name: key for name, key in (copies or {}).items() if key.startswith(own)}
    try:
        for name in files:
            if name in copies:
                info = store.copy(copies[name], inside + name)
            else:
                info = store.upload(folder / name, inside + name)
            if placed is not None:
                placed(folder / name, info)
    except BaseException:
        discard(store, lesson_path, version)
        raise
    return version


def switch(store: Store, lesson_path: str, version: Version) -> Version | None:
    """Make `version` the lesson readers see (one object written: atomic); the one it replaced."""
    previous = read_pointer(store, lesson_path)
    body = json.dumps({"version": version.token, "files": list(version.files)}).encode()
    with tempfile.TemporaryDirectory(prefix="pointer-") as folder:
        path = Path(folder) / POINTER
        path.write_bytes(body)
        store.upload(path, lesson_prefix(lesson_path) + POINTER)
    return previous


def drop_replaced(store: Store, lesson_path: str, previous: Version | None) -> int:
    """After a switch: delete the version it replaced and the files of the folder the pointer now
    hides. Readers of those see them vanish and read the pointer again."""
    prefix = lesson_prefix(lesson_path)
    doomed = [info.key for info in store.list(prefix) if not _internal(info.key[len(prefix) :])]
    removed = sum(store.delete(key) for key in doomed)
    if previous is not None:
        removed += store.delete_prefix(_version_prefix(lesson_path, previous.token))
    return removed


def discard(store: Store, lesson_path: str, version: Version) -> None:
    """Remove a version that was never switched to; best effort."""
    with contextlib.suppress(StoreError):
        store.delete_prefix(_version_prefix(lesson_path, version.token))


def replace(store: Store, lesson_path: str, folder: Path) -> Version:
    """Put a local lesson folder in the store as the lesson, whole (what `flask demo` uses; an
    upload switches under the job's lock instead)."""
    version = put_version(store, lesson_path, folder)
    # A switch that fails may have happened all the same (its answer lost): the version stays
    # for the sweeper, which removes it only when no pointer names it.
    previous = switch(store, lesson_path, version)
    drop_replaced(store, lesson_path, previous)
    return version


def sweep_versions(store: Store, older_than: float) -> int:
    """Remove what no reader sees, once older than `older_than` seconds: versions no pointer names
    (uploads that died before their switch) and files of a folder that a pointer hides."""
    cutoff = time.time() - older_than
    by_lesson: dict[str, list[ObjectInfo]] = {}
    for info in store.list("lessons/"):
        parts = info.key.split("/")
        if len(parts) >= 4 and LESSON_DIR.match(parts[2]):
            by_lesson.setdefault(f"{parts[1]}/{parts[2]}", []).append(info)
    removed = 0
    for lesson_path, found in by_lesson.items():
        prefix = lesson_prefix(lesson_path)
        relatives = {info.key: info.key[len(prefix) :] for info in found}
        if not any(rel.startswith(f"{VERSIONS}/") for rel in relatives.values()):
            continue
        current = read_pointer(store, lesson_path)
        keep = None if current is None else f"{VERSIONS}/{current.token}/"
        for info in found:
            rel = relatives[info.key]
            hidden_file = current is not None and not _internal(rel)
            stray_version = rel.startswith(f"{VERSIONS}/") and (keep is None or not rel.startswith(keep))
            if (hidden_file or stray_version) and info.modified.timestamp() <= cutoff:
                removed += store.delete(info.key)
    return removed
