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
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flask import current_app

from ..models import Lesson, VideoJob
from ..storage import lessons as store_lessons
from . import admission, storage, uploads
from .packages import PackageError, Plan

PATH_MAX = 255  # characters of a path inside the lesson
PART_MAX = 120  # characters of one name in it
DEPTH_MAX = 8
EXAMPLE = "images/2.png"


@dataclass(frozen=True)
class LessonFile:
    path: str
    size: int


@dataclass(frozen=True)
class Changed:
    path: str
    added: bool  # a new file, not one replaced
    problem: str | None  # what is still wrong with the lesson (it was broken before), else None


def listing(lesson: Lesson) -> list[LessonFile]:
    """The lesson's files (path inside it, size), as a render would read them; hidden ones left out."""
    entries = store_lessons.lesson_entries(storage.store(), lesson.path)
    return sorted(
        (LessonFile(rel, info.size) for rel, info in entries if not _hidden(rel)), key=lambda f: f.path
    )


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def clean_path(text: str | None) -> PurePosixPath:
    """A path inside the lesson as typed (or a file's own name): "images/2.png". Raises PackageError."""
    text = unicodedata.normalize("NFC", (text or "").strip()).replace("\\", "/")
    if not text:
        raise PackageError(422, f"Give the file's path in the lesson, for example {EXAMPLE}.", field="path")
    if len(text) > PATH_MAX:
        raise PackageError(422, f"A path in the lesson has at most {PATH_MAX} characters.", field="path")
    parts = text.split("/")
    if text.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise PackageError(
            422, f"“{text}”: give a path inside the lesson, for example {EXAMPLE}.", field="path"
        )
    if len(parts) > DEPTH_MAX or any(len(part) > PART_MAX for part in parts):
        raise PackageError(422, f"“{text}”: too many folders or too long a name.", field="path")
    if any(part.startswith(".") for part in parts):
        raise PackageError(422, f"“{text}”: names that start with a dot are hidden files.", field="path")
    if any(not ch.isprintable() for ch in text):
        raise PackageError(422, "A path in the lesson cannot hold control characters.", field="path")
    return PurePosixPath(text)


def put_file(job: VideoJob, lesson: Lesson, path_text: str | None, file, lessons_root: Path) -> Changed:
    """Replace or add one file of `lesson` (`file`: an open binary file, read from its start)
    at `path_text`, else at the file's own name. Raises PackageError (nothing changed)."""
    relative = clean_path(path_text)
    store = storage.store()
    entries = [(rel, info) for rel, info in store_lessons.lesson_entries(store, lesson.path)]
    there = {PurePosixPath(rel): info for rel, info in entries}
    _refuse_file_folder_clash(relative, there)
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(0)
    kept = [(rel, info) for rel, info in entries if PurePosixPath(rel) != relative]
    total = size + sum(info.size for _rel, info in kept)
    config = current_app.config
    if len(kept) + 1 > config["UPLOAD_MAX_FILES"] or total > config["UPLOAD_MAX_UNCOMPRESSED_BYTES"]:
        raise PackageError(413, "With this file the lesson would be larger than a lesson package may be.")
    admission.check_unpacked_space(total)
    number = lesson.number
    local = storage.is_local(store)

    def unpack(new: Path) -> tuple[Plan, dict[int, Path]]:
        folder = new / f"lesson_{number}"
        for rel, info in kept:
            target = folder.joinpath(*PurePosixPath(rel).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if local:
                _link_or_copy(store.local_path(info.key), target)
            else:
                store.download(info.key, target)
        target = folder.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            shutil.copyfileobj(file, out, 1024 * 1024)
        if store_lessons.lesson_entries(store, lesson.path) != entries:
            raise PackageError(409, "The lesson's files changed meanwhile; look at them again and retry.")
        return Plan(lessons={number: []}), {number: folder}

    broken = frozenset({number}) if lesson.problem else frozenset()
    installed = uploads.install(job, Path(lessons_root), unpack, may_stay_broken=broken)
    problem = installed.problems.get(number)
    return Changed(relative.as_posix(), relative not in there, problem.message if problem else None)


def _refuse_file_folder_clash(relative: PurePosixPath, there) -> None:
    folders = {parent for path in there for parent in path.parents}
    if relative in folders:
        raise PackageError(422, f"“{relative}” is a folder of the lesson; give a file's path.", field="path")
    clash = next((parent for parent in relative.parents if parent in there), None)
    if clash is not None:
        raise PackageError(422, f"“{clash}” is a file of the lesson, not a folder.", field="path")


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
