"""Lesson packages: zip archives of lesson folders, checked before anything is extracted.

A package holds `lesson_<n>/` folders at its top level (or inside one wrapping folder), with
any other files there belonging to the video folder they share (`../source.mp4` in a
lesson.json), or, for a single lesson, the inside of one lesson folder. `read_plan` decides what goes where
from the archive's directory alone, refusing hostile archives (paths that climb out, links,
devices, encrypted entries, too many entries, zip bombs); `extract` writes the plan into a
staging folder, counting every byte it writes.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .lessons import LESSON_DIR
from .zipnames import fix_names

# Files that archivers add and nobody means to upload.
_JUNK_DIRS = {"__MACOSX"}
_JUNK_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_NAME_MAX = 255  # bytes in one path component
_PATH_MAX = 1024  # bytes in a path
# Below this many uncompressed bytes the compression ratio is not checked: small archives of
# JSON compress well and cannot hurt.
_RATIO_FLOOR = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


class PackageError(Exception):
    """A package refused; `status` is the HTTP status, the message says why, for the user."""

    def __init__(self, status: int, message: str, *, lesson: str | None = None, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.lesson = lesson
        self.field = field


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_uncompressed: int
    max_ratio: int


@dataclass
class Plan:
    """lesson number -> [(archive member, path inside the lesson folder)]; shared: [(archive
    member, path inside the video folder)], the files beside the lesson folders."""

    lessons: dict[int, list[tuple[zipfile.ZipInfo, PurePosixPath]]] = field(default_factory=dict)
    shared: list[tuple[zipfile.ZipInfo, PurePosixPath]] = field(default_factory=list)


def open_archive(file) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise PackageError(400, "The package is not a zip archive (or it is damaged).") from exc


def _refuse(message: str, status: int = 422) -> PackageError:
    return PackageError(status, message)


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's path as parts we accept, None for archiver junk; refuses hostile names."""
    name = info.filename
    shown = name.encode("unicode_escape").decode("ascii")[:200]
    if "\x00" in name or "\\" in name:
        raise _refuse(f"“{shown}”: a name with a NUL or a backslash is not allowed.")
    if name.startswith("/") or _DRIVE.match(name):
        raise _refuse(f"“{shown}”: absolute paths are not allowed.")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(f"“{shown}”: paths with “..” are not allowed.")
    if len(name.encode()) > _PATH_MAX or any(len(p.encode()) > _NAME_MAX for p in parts):
        raise _refuse(f"“{shown}”: the name is too long.")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise _refuse(f"“{shown}”: symbolic links are not allowed.")
    if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _refuse(f"“{shown}”: only files and folders are allowed (this is a device, pipe or socket).")
    if info.flag_bits & 0x1:
        raise _refuse(f"“{shown}”: encrypted entries are not supported.")
    if not parts or parts[0] in _JUNK_DIRS or parts[-1] in _JUNK_FILES:
        return None
    return PurePosixPath(*parts)


def _check_sizes(members: list[zipfile.ZipInfo], archive_size: int, limits: Limits) -> None:
    if len(members) > limits.max_files:
        raise _refuse(
            f"The package has {len(members):,} entries; at most {limits.max_files:,} are allowed.", 413
        )
    declared = sum(info.file_size for info in members)
    if declared > limits.max_uncompressed:
        raise _refuse(
            f"The package unpacks to {declared:,} bytes; at most {limits.max_uncompressed:,} are allowed.",
            413,
        )
    if declared > _RATIO_FLOOR and declared > limits.max_ratio * max(archive_size, 1):
        raise _refuse(
            f"The package unpacks to more than {limits.max_ratio} times its size; it looks like a zip bomb.",
            413,
        )


def read_plan(archive: zipfile.ZipFile, archive_size: int, limits: Limits, lesson: int | None) -> Plan:
    """What goes into which lesson folder. `lesson`: the archive is the inside of that lesson's
    folder; None: it holds lesson_<n>/ folders."""
    members = archive.infolist()
    _check_sizes(members, archive_size, limits)
    fix_names(archive)
    files: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    seen: set[PurePosixPath] = set()
    for info in members:
        path = _member_path(info)
        if path is None or info.is_dir():
            continue
        if path in seen:
            raise _refuse(f"“{path}” is in the package twice.")
        seen.add(path)
        files.append((info, path))
    if not files:
        raise _refuse("The package is empty.")
    for path in seen:
        folder = next((parent for parent in path.parents if parent in seen), None)
        if folder is not None:
            raise _refuse(f"“{folder}” is both a file and a folder in the package.")
    files = _unwrap(files, lesson)
    if lesson is not None:
        _refuse_folders_for_one_lesson(files)
        return Plan(lessons={lesson: files})
    return _lesson_folders(files)


def _refuse_folders_for_one_lesson(files) -> None:
    """One lesson's files are asked for, and the package holds lesson_<n>/ folders instead (its
    lesson.json would be "missing", though every folder has one: the number is what is wrong)."""
    if any(len(path.parts) == 1 and path.name == "lesson.json" for _, path in files):
        return
    folders = sorted(
        {path.parts[0] for _, path in files if len(path.parts) > 1 and LESSON_DIR.match(path.parts[0])}
    )
    if folders:
        named = ", ".join(f"{name}/" for name in folders[:5]) + (", …" if len(folders) > 5 else "")
        raise _refuse(
            f"This package holds lesson folders ({named}): leave the lesson number empty to upload "
            "them, or zip one lesson's own files to replace that one lesson."
        )


def _lesson_folders(files: list[tuple[zipfile.ZipInfo, PurePosixPath]]) -> Plan:
    """The plan of a package of lesson_<n>/ folders and the files they share beside them."""
    plan = Plan()
    folders: dict[int, set[str]] = {}
    for info, path in files:
        match = LESSON_DIR.match(path.parts[0])
        if match and len(path.parts) >= 2:
            number = int(match.group(1))
            folders.setdefault(number, set()).add(path.parts[0])
            plan.lessons.setdefault(number, []).append((info, PurePosixPath(*path.parts[1:])))
        elif match or path.parts[0].startswith("."):
            raise _refuse(f"“{path}”: a file of this name cannot sit beside the lesson folders.")
        else:
            plan.shared.append((info, path))
    for number, names in sorted(folders.items()):
        if len(names) > 1:
            named = " and ".join(f"“{name}/”" for name in sorted(names))
            raise _refuse(f"{named} are both lesson {number}: keep one of them.")
    if not plan.lessons:
        raise _refuse(
            "The package has no lesson_<n>/ folder. A package holds lesson_<n>/ folders (and the files "
            "they share beside them); to upload one lesson's files, choose its number."
        )
    return plan


def _unwrap(files, lesson: int | None):
    """Drop one folder that wraps everything (what zipping a folder gives), when the expected
    layout is inside it."""
    tops = {path.parts[0] for _, path in files}
    if len(tops) != 1 or any(len(path.parts) < 2 for _, path in files):
        return files
    (top,) = tops
    inner = [(info, PurePosixPath(*path.parts[1:])) for info, path in files]
    if lesson is None and LESSON_DIR.match(top):
        return files  # already lesson_<n>/…
    if lesson is not None and any(path == PurePosixPath("lesson.json") for _, path in files):
        return files
    return inner


def extract(archive: zipfile.ZipFile, plan: Plan, staging: Path, limits: Limits) -> dict[int, Path]:
    """Write each lesson of the plan to staging/lesson_<n>/; returns {number: folder}. Counts
    what it writes: an entry that unpacks to more than it declared is refused."""
    folders: dict[int, Path] = {}
    written = 0
    targets = [(staging, plan.shared)]
    for number, entries in sorted(plan.lessons.items()):
        folders[number] = staging / f"lesson_{number}"
        folders[number].mkdir(parents=True)
        targets.append((folders[number], entries))
    staging.mkdir(parents=True, exist_ok=True)
    for folder, entries in targets:
        for info, relative in entries:
            target = folder.joinpath(*relative.parts)
            if not target.resolve().is_relative_to(folder.resolve()):  # belt and braces
                raise _refuse(f"“{info.filename}” would land outside its folder.")
            target.parent.mkdir(parents=True, exist_ok=True)
            written += _copy(archive, info, target, limits.max_uncompressed - written)
    return folders


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, room: int) -> int:
    count = 0
    try:
        with archive.open(info) as source, open(target, "xb") as out:
            while chunk := source.read(_CHUNK):
                count += len(chunk)
                if count > info.file_size or count > room:
                    raise _refuse(f"“{info.filename}” unpacks to more than it declares; refused.", 413)
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(f"“{info.filename}” cannot be unpacked: {exc}.", 400) from exc
    return count


def refuse_clashes(existing: list[PurePosixPath], plan: Plan) -> None:
    """A shared file of the package where the video folder has a folder, or under a name that is
    a file there: 409 before anything is installed (the package cannot say which should win)."""
    there = set(existing)
    folders_there = {parent for path in there for parent in path.parents}
    for _info, path in plan.shared:
        clash = path if path in folders_there else next((p for p in path.parents if p in there), None)
        if clash is not None:
            kind = "folder" if clash in folders_there else "file"
            raise PackageError(
                409,
                f"“{clash}”: the video folder already has a {kind} of that name, which the package "
                "would have to replace; rename or remove one of them.",
            )


def shared_files(video_dir: Path) -> list[PurePosixPath]:
    """Files of a video folder outside its lesson folders (what lessons reach as `../…`):
    regular files only, no links, nothing hidden."""
    found = []
    if not video_dir.is_dir():
        return found
    for top in sorted(video_dir.iterdir()):
        if top.name.startswith(".") or top.is_symlink() or (LESSON_DIR.match(top.name) and top.is_dir()):
            continue
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            relative = path.relative_to(video_dir)
            if (
                path.is_file()
                and not path.is_symlink()
                and not any(p.startswith(".") for p in relative.parts)
            ):
                found.append(PurePosixPath(relative.as_posix()))
    return found


def write_package(out, folders: dict[str, Path], video_dir: Path | None = None) -> None:
    """Zip folders into `out` as name/… (name e.g. "lesson_2"), files only, links skipped; with
    `video_dir`, also the files the lessons share beside them."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, folder in folders.items():
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                archive.write(path, f"{name}/{path.relative_to(folder).as_posix()}")
        for relative in shared_files(video_dir) if video_dir is not None else []:
            archive.write(video_dir.joinpath(*relative.parts), relative.as_posix())
