"""Paths inside a lesson as people type them (or a browser sends a file's name): cleaned,
kept inside the lesson, within what file systems take (lesson_files.py)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from .packages import PackageError

PATH_MAX = 255  # characters of a path inside the lesson
PART_MAX = 120  # characters of one name in it
NAME_BYTES_MAX = 255  # bytes of one name in UTF-8: what file systems take
DEPTH_MAX = 8
EXAMPLE = "images/2.png"
_DRIVE = re.compile(r"[A-Za-z]:")  # C:/Users/…: a path on the user's computer, not in the lesson


def hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def clean_path(text: str | None) -> PurePosixPath:
    """A path inside the lesson as typed (or a file's own name): "images/2.png". Raises PackageError."""
    text = unicodedata.normalize("NFC", (text or "").strip()).replace("\\", "/")
    if not text:
        raise PackageError(422, f"Give the file's path in the lesson, for example {EXAMPLE}.", field="path")
    if len(text) > PATH_MAX:
        raise PackageError(422, f"A path in the lesson has at most {PATH_MAX} characters.", field="path")
    parts = text.split("/")
    if text.startswith("/") or _DRIVE.match(text) or any(part in ("", ".", "..") for part in parts):
        raise PackageError(
            422, f"“{text}”: give a path inside the lesson, for example {EXAMPLE}.", field="path"
        )
    if len(parts) > DEPTH_MAX or any(len(p) > PART_MAX or len(p.encode()) > NAME_BYTES_MAX for p in parts):
        raise PackageError(422, f"“{text}”: too many folders or too long a name.", field="path")
    if any(part.startswith(".") for part in parts):
        raise PackageError(422, f"“{text}”: names that start with a dot are hidden files.", field="path")
    if any(not ch.isprintable() for ch in text):
        raise PackageError(422, "A path in the lesson cannot hold control characters.", field="path")
    return PurePosixPath(text)


def own_name(file_name: str | None) -> str:
    """A file's name as a browser sent it, without the folders (or drive) of the user's computer."""
    name = PurePosixPath((file_name or "").replace("\\", "/")).name
    return name[2:] if _DRIVE.match(name) else name


def refuse_file_folder_clash(relative: PurePosixPath, there) -> None:
    folders = {parent for path in there for parent in path.parents}
    if relative in folders:
        raise PackageError(422, f"“{relative}” is a folder of the lesson; give a file's path.", field="path")
    clash = next((parent for parent in relative.parents if parent in there), None)
    if clash is not None:
        raise PackageError(422, f"“{clash}” is a file of the lesson, not a folder.", field="path")
