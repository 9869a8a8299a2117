"""Lesson discovery: LESSONS_ROOT/<videoId>/lesson_<n>/lesson.json, in natural order, and
the course the material was prepared for (<videoId>/course.txt, written by the pipeline)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..render import DEFAULT_MAX_DURATION, ManifestError, load_manifest
from ..render.lesson_json import lesson_root, parse_json, read_manifest
from ..storage.lessons import LESSON_DIR

__all__ = ["COURSE_FILE", "LESSON_DIR", "Discovery", "FoundLesson", "discover", "marked_course"]

COURSE_FILE = "course.txt"  # its first line: the name of the course the material is for


@dataclass(frozen=True)
class FoundLesson:
    path: str  # relative to LESSONS_ROOT, e.g. "henIVlCPVIY/lesson_2"
    number: int
    title: str
    duration: float | None
    problem: str | None


@dataclass(frozen=True)
class Discovery:
    lessons: list[FoundLesson]
    # Why nothing could be found (e.g. no folder for this video), for the job page.
    message: str | None = None
    material: bool = False  # the video's folder holds anything at all
    course: str | None = None  # the course named by its COURSE_FILE


def discover(lessons_root: Path, video_id: str, *, max_duration: float = DEFAULT_MAX_DURATION) -> Discovery:
    """The lessons on disk for one video, ordered by lesson number (lesson_2 before lesson_10)."""
    root = Path(lessons_root).resolve()
    video_dir = (root / video_id).resolve()
    if not video_dir.is_relative_to(root) or video_dir == root:
        return Discovery([], f"“{video_id}” is not a valid lesson folder name.")
    if not video_dir.is_dir():
        return Discovery(
            [],
            f"No lesson folder for this video yet (expected {video_id}/lesson_<n>/ in the lessons folder).",
        )
    numbered = []
    children = list(video_dir.iterdir())
    for child in children:
        match = LESSON_DIR.match(child.name)
        if match and child.is_dir() and (child / "lesson.json").is_file():
            numbered.append((int(match.group(1)), child))
    numbered.sort(key=lambda item: (item[0], item[1].name))
    lessons = []
    for number, folder in numbered:
        rel = f"{video_id}/{folder.name}"
        if not folder.resolve().is_relative_to(video_dir):
            lessons.append(
                FoundLesson(rel, number, folder.name, None, "folder links outside the lessons root")
            )
            continue
        try:
            manifest = load_manifest(folder, max_duration=max_duration)
        except ManifestError as exc:
            lessons.append(FoundLesson(rel, number, _title_of_broken(folder), None, str(exc)))
        else:
            lessons.append(FoundLesson(rel, number, manifest.title, round(manifest.duration, 3), None))
    message = None if lessons else f"No lesson_<n>/lesson.json folders in {video_id}/ of the lessons folder."
    return Discovery(lessons, message, material=bool(children), course=marked_course(video_dir))


def _title_of_broken(folder: Path) -> str:
    """A broken lesson's own title when its lesson.json parses and gives one (the list keeps
    saying which lesson it is), else its folder's name; printable characters only."""
    try:
        raw = parse_json(read_manifest(lesson_root(folder)))
    except ManifestError:
        return folder.name
    title = raw.get("title")
    if not isinstance(title, str):
        return folder.name
    return " ".join("".join(c for c in title if c.isprintable() or c.isspace()).split()) or folder.name


def marked_course(video_dir: Path) -> str | None:
    """The first line of the folder's own COURSE_FILE (a regular file, not a link), if any."""
    try:
        fd = os.open(video_dir / COURSE_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        first = file.read(512).decode("utf-8", "replace").lstrip("\ufeff").splitlines()
    return first[0].strip() or None if first else None
