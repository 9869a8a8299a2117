"""One lesson's files, from the browser: listed as renders read them, replaced or added one at a
time (a picture fixed, a narration recorded again on a phone), without making a zip.

A change makes a new lesson folder (the lesson's files as they are, the new one in its place)
and installs it by the steps a package takes (uploads.install): checked with the renderer's own
validation, then swapped in whole under the job's lock, refused while the lesson is being
rendered. A lesson that works is never left broken: a file that would break it is refused and
nothing changes. A lesson that is broken already takes the change and says what is still wrong,
so it can be mended file by file. The new file keeps the path it is given (lesson.json names it
so), whatever the name it was chosen under: the renderer reads pictures and sound by their
content, not their name.

The lesson's other files are hard-linked (local folders) or fetched (an object store) into the
new folder; a symbolic link in a local lesson stays a link, never followed (it may lead to
another course's file), and its target's size is not shown. Just before the swap, under the
job's lock, the lesson is read again: a change that landed meanwhile refuses this one (409).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flask import current_app
from werkzeug.exceptions import NotFound

from ..models import Lesson, VideoJob
from ..render.errors import ManifestError
from ..render.lesson_json import parse_json
from ..render.limits import MAX_MANIFEST_BYTES
from ..storage import ObjectInfo, ObjectMissing, StoreError
from ..storage import lessons as store_lessons
from . import admission, media, storage, uploads
from .lesson_paths import clean_path, hidden, own_name, refuse_file_folder_clash
from .packages import PackageError, Plan

CHANGED = "The lesson's files changed meanwhile; look at them again and retry."
UNKNOWN_USE = "cannot tell while lesson.json cannot be read"


@dataclass(frozen=True)
class LessonFile:
    path: str
    size: int | None  # None for a link (its target's size is not the lesson's to tell), or missing
    uses: tuple[str, ...] = ()  # what lesson.json uses it for: "segment 2's picture", …
    kind: str | None = None  # "picture", "narration" or "clip" when every use is of that kind
    missing: bool = False  # named by lesson.json, not in the lesson
    etag: str | None = None  # changes whenever the file does (If-Match); None for a link or missing


@dataclass(frozen=True)
class Source:
    """Where one file of the lesson is read from (a local path or a store key), and its etag."""

    where: Path | str
    etag: str


@dataclass(frozen=True)
class Changed:
    path: str
    added: bool  # a new file, not one replaced
    problem: str | None  # what is still wrong with the lesson (it was broken before), else None


@dataclass(frozen=True)
class _Entry:
    """A file of the lesson as it is: where it is read from (a local path or a store key), what
    changes when it does, and, in a local folder, where it leads if it is a symbolic link."""

    path: str
    size: int
    source: Path | str
    mark: tuple
    link: str | None = None
    info: ObjectInfo | None = None  # in an object store: the object

    @property
    def etag(self) -> str:
        """A digest of what changes when the file does (its inode, size and time; its version in a store)."""
        return hashlib.sha256(json.dumps(self.mark, default=str).encode()).hexdigest()[:24]


def lesson_or_404(job: VideoJob, number: int) -> Lesson:
    """The job's lesson_<number> (missing or not), or 404."""
    path = f"{job.video_id}/lesson_{number}"
    lesson = next((item for item in job.lessons if item.path == path), None)
    if lesson is None:
        raise NotFound("No such lesson in this job.")
    return lesson


def being_rendered(job: VideoJob, lesson: Lesson) -> bool:
    """Whether a render of the lesson is queued or running (its files wait until it ends)."""
    return bool(uploads.busy_lessons(job, [lesson.path]))


def _entries(lesson: Lesson, lessons_root: Path) -> list[_Entry]:
    """Every file of the lesson (hidden ones too), as a render would read the folder. Links in a
    local folder are taken as links, never followed: one may lead to another course's file."""
    store = storage.store()
    if not storage.is_local(store):
        found = store_lessons.lesson_entries(store, lesson.path)
        return [_Entry(rel, info.size, info.key, (info.etag, info.size), None, info) for rel, info in found]
    try:
        folder = storage.lesson_dir(lessons_root, lesson.path)
    except ValueError as exc:
        raise PackageError(409, "The lesson folder is not inside the lessons folder.") from exc
    entries = []
    for dirpath, dirs, files in os.walk(folder):  # a linked folder inside is listed, not entered
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]):
            path = Path(dirpath, name)
            st = os.lstat(path)
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            mark = (st.st_ino, st.st_size, st.st_mtime_ns, link)
            entries.append(_Entry(path.relative_to(folder).as_posix(), st.st_size, path, mark, link))
    return sorted(entries, key=lambda e: e.path)


def listing(lesson: Lesson, lessons_root: Path) -> list[LessonFile]:
    """The lesson's files (path inside it, size), hidden ones left out, each with what lesson.json
    uses it for; and the files lesson.json names that the lesson lacks, marked missing. In the
    order people count (audio/2.wav before audio/10.wav)."""
    entries = _entries(lesson, lessons_root)
    uses = _uses(_read_manifest(entries), _folder(lesson))
    present = {_nfc(e.path) for e in entries}
    unknown = ((UNKNOWN_USE, None),) if uses is None else ()  # lesson.json unreadable
    uses = uses or {}
    found = [
        _described(e.path, None if e.link is not None else e.size, uses.get(_nfc(e.path), unknown), False, e)
        for e in entries
        if not hidden(e.path)
    ]
    found += [_described(path, None, used, True) for path, used in uses.items() if path not in present]
    return sorted(
        found, key=lambda f: [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", f.path)]
    )


def _described(path: str, size: int | None, uses, missing: bool, entry: _Entry | None = None) -> LessonFile:
    kinds = {kind for _text, kind in uses}
    texts = ("the lesson itself",) if path == "lesson.json" else tuple(text for text, _kind in uses)
    etag = entry.etag if entry is not None and entry.link is None else None
    return LessonFile(path, size, texts, kinds.pop() if len(kinds) == 1 else None, missing, etag)


def _manifest_bytes(entries: list[_Entry]) -> bytes | None:
    """lesson.json's bytes, or None when it is missing, a link, too large or unreadable."""
    entry = next((e for e in entries if e.path == "lesson.json" and e.link is None), None)
    if entry is None or entry.size > MAX_MANIFEST_BYTES:
        return None
    try:
        if isinstance(entry.source, Path):
            with open(entry.source, "rb") as f:
                return f.read(MAX_MANIFEST_BYTES + 1)
        with storage.store().open(entry.source) as f:
            return f.read(MAX_MANIFEST_BYTES + 1)
    except (OSError, StoreError):
        return None


def _read_manifest(entries: list[_Entry]):
    """lesson.json's content as the renderer parses it, or None when it is missing, a link, too
    large or not a JSON object (or nested too deeply, or not UTF-8)."""
    raw = _manifest_bytes(entries)
    try:
        return None if raw is None else parse_json(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ManifestError):
        return None


def manifest_bytes(lesson: Lesson, lessons_root: Path) -> bytes | None:
    """The lesson's lesson.json as it is now (None: missing, a link, too large or unreadable)."""
    return None if lesson.missing else _manifest_bytes(_entries(lesson, Path(lessons_root)))


def rewrite_manifest(
    job: VideoJob, lesson: Lesson, lessons_root: Path, edit: Callable[[bytes | None], bytes | None]
) -> Changed | None:
    """lesson.json replaced by `edit(its bytes now)` through the same checked, locked swap as any
    file (None: `edit` changed nothing). `edit` may refuse with PackageError; a lesson.json that
    changes between this read and the swap refuses the change (409)."""
    if lesson.missing:
        raise PackageError(409, "The lesson folder is gone: upload the lesson again from the job page.")
    entries = _entries(lesson, Path(lessons_root))
    new = edit(_manifest_bytes(entries))
    if new is None:
        return None
    relative = PurePosixPath("lesson.json")
    return _change(job, lesson, Path(lessons_root), entries, relative, io.BytesIO(new), len(new))


_KINDS = {"image": "picture", "audio": "narration", "video": "clip"}


def _folder(lesson: Lesson) -> str:
    return lesson.path.rsplit("/", 1)[-1]


def _nfc(path: str) -> str:
    return unicodedata.normalize("NFC", path)


def _uses(manifest, folder: str) -> dict[str, list[tuple[str, str | None]]] | None:
    """{path inside the lesson folder `folder` ("lesson_2"), composed (NFC): [(what uses it,
    kind)]} from lesson.json's segments, music and font, each path read as the renderer reads it
    (render/assets.resolve_asset: either slash, `.` and `..` walked, `../lesson_2/x` is `x`);
    paths into the video folder and malformed ones are left out. None when there is no
    lesson.json that parses: which files it uses cannot be told."""
    if not isinstance(manifest, dict):
        return None
    found: dict[str, list[tuple[str, str | None]]] = {}

    def add(value, text: str, kind: str | None) -> None:
        if not isinstance(value, str) or not value.strip() or value.startswith(("/", "\\")):
            return
        walked = posixpath.normpath(posixpath.join(folder, *re.split(r"[\\/]+", value)))
        if walked.startswith(folder + "/") and not hidden(walked):
            path = _nfc(walked[len(folder) + 1 :])
            found.setdefault(path, []).append((text, kind))

    segments = manifest.get("segments")
    for number, segment in enumerate(segments if isinstance(segments, list) else [], start=1):
        if isinstance(segment, dict):
            for key, kind in _KINDS.items():
                add(segment.get(key), f"segment {number}'s {kind}", kind)
    music = manifest.get("music")
    if isinstance(music, dict):
        add(music.get("src"), "the music", None)
    add(manifest.get("font"), "the font", None)
    return found


def file_source(lesson: Lesson, path: str, lessons_root: Path) -> Source:
    """Where to read one file of the lesson, as the page lists it: its local path, or its key in
    the store. NotFound for anything else (a link, a hidden file, a path outside the lesson)."""
    found = next(
        (e for e in _entries(lesson, lessons_root) if e.path == path and e.link is None and not hidden(path)),
        None,
    )
    if lesson.missing or found is None:
        raise NotFound("No such file in this lesson.")
    return Source(found.source, found.etag)


def put_file(
    job: VideoJob,
    lesson: Lesson,
    path_text: str | None,
    file,
    lessons_root: Path,
    file_name: str | None = None,
    if_match: str | None = None,
    if_none_match: str | None = None,
) -> Changed:
    """Replace or add one file of `lesson` (`file`: an open binary file, read from its start)
    at `path_text`, else at the top of the lesson under the file's own name (`file_name`, of which
    a browser may send the whole path on the user's computer). With `if_match` (an If-Match
    header), only while the file is the one of that etag; with `if_none_match` "*", only while
    there is none (412). Raises PackageError (nothing changed)."""
    path_text = path_text or own_name(file_name)
    relative, entries = _target(lesson, path_text, Path(lessons_root), if_match, if_none_match)
    refuse_file_folder_clash(relative, {PurePosixPath(e.path) for e in entries})
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(0)
    return _change(job, lesson, Path(lessons_root), entries, relative, file, size)


def remove_file(
    job: VideoJob, lesson: Lesson, path_text: str | None, lessons_root: Path, if_match: str | None = None
) -> Changed:
    """Remove one file of `lesson` that lesson.json does not use (a stray upload), with
    `if_match` as put_file. Raises PackageError (nothing changed)."""
    relative, entries = _target(lesson, path_text, Path(lessons_root), if_match)
    if relative not in {PurePosixPath(e.path) for e in entries}:
        raise PackageError(404, f"“{relative}” is not a file of the lesson.", field="path")
    uses = _uses(_read_manifest(entries), _folder(lesson))
    if uses is None and relative.as_posix() != "lesson.json":
        raise PackageError(
            409,
            "lesson.json cannot be read, so whether the lesson uses this file cannot be told: "
            "mend lesson.json first (download it, fix it, replace it).",
        )
    used = (uses or {}).get(_nfc(relative.as_posix()))
    if used or relative.as_posix() == "lesson.json":
        what = ", ".join(text for text, _kind in used) if used else "the lesson itself"
        raise PackageError(409, f"“{relative}” is {what}: replace it instead, or change lesson.json first.")
    return _change(job, lesson, Path(lessons_root), entries, relative, None, 0)


def _target(
    lesson: Lesson,
    path_text: str | None,
    lessons_root: Path,
    if_match: str | None = None,
    if_none_match: str | None = None,
) -> tuple[PurePosixPath, list[_Entry]]:
    """The path a change is about (spelt as the lesson spells it) and the lesson's files now;
    PackageError 412 unless the file there matches `if_match` (an If-Match header's value) and,
    with `if_none_match` "*", there is none."""
    if lesson.missing:
        raise PackageError(409, "The lesson folder is gone: upload the lesson again from the job page.")
    relative = clean_path(path_text)
    entries = _entries(lesson, lessons_root)
    # A name written decomposed (as macOS may) is the same file as its composed form.
    same = {_nfc(e.path): e.path for e in entries}
    relative = PurePosixPath(same.get(relative.as_posix(), relative.as_posix()))
    if if_none_match is not None and if_none_match.strip() == "*" and relative.as_posix() in same.values():
        raise PackageError(412, f"“{relative}” is there already (If-None-Match: *).")
    if if_match is not None:
        there = next((e for e in entries if PurePosixPath(e.path) == relative and e.link is None), None)
        wanted = {tag.strip() for tag in if_match.split(",")}  # a weak tag (W/"…") matches nothing
        if there is None or not wanted & {"*", there.etag, f'"{there.etag}"'}:
            raise PackageError(412, f"“{relative}” changed since it was read (If-Match); read it again.")
    return relative, entries


def _change(
    job, lesson: Lesson, lessons_root: Path, entries, relative: PurePosixPath, file, size: int
) -> Changed:
    """The lesson as `entries` with `relative` replaced by `file` (or left out: None), checked and
    installed (uploads.install), compared again under the job's lock."""
    kept = [e for e in entries if PurePosixPath(e.path) != relative]
    total = size + sum(e.size for e in kept if e.link is None)
    config = current_app.config
    if len(kept) + 1 > config["UPLOAD_MAX_FILES"] or total > config["UPLOAD_MAX_UNCOMPRESSED_BYTES"]:
        raise PackageError(413, "With this file the lesson would be larger than a lesson package may be.")
    admission.check_unpacked_space(total)
    number = lesson.number
    store = storage.store()

    def unpack(new: Path) -> tuple[Plan, dict[int, Path]]:
        folder = new / f"lesson_{number}"
        folder.mkdir(parents=True)
        for entry in kept:
            target = folder.joinpath(*PurePosixPath(entry.path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.link is not None:
                os.symlink(entry.link, target)  # as it was: the render's checks judge where it leads
            elif isinstance(entry.source, Path):
                uploads.link_or_copy(entry.source, target)
            else:  # through the render cache: the next change to the lesson fetches nothing
                try:
                    media.fetch_object(store, entry.info, target, private=new.parent.parent)
                except ObjectMissing:  # its version was replaced under us
                    raise PackageError(409, CHANGED) from None
        if file is not None:
            target = folder.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(file, out, 1024 * 1024)
        return Plan(lessons={number: []}), {number: folder}

    def recheck() -> None:  # under the job's lock: nobody changed the lesson since it was read
        if [e.mark for e in _entries(lesson, lessons_root)] != [e.mark for e in entries]:
            raise PackageError(409, CHANGED)

    broken = frozenset({number}) if lesson.problem else frozenset()
    same = {e.path: e.source for e in kept if isinstance(e.source, str)}  # copied in the store, not sent
    try:
        installed = uploads.install(
            job, lessons_root, unpack, may_stay_broken=broken, recheck=recheck, copies={number: same}
        )
    except ObjectMissing:  # a version copied from was replaced meanwhile
        raise PackageError(409, CHANGED) from None
    problem = installed.problems.get(number)
    added = file is not None and relative not in {PurePosixPath(e.path) for e in entries}
    return Changed(relative.as_posix(), added, problem.message if problem else None)
