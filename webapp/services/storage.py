"""Where lessons and videos live on disk: every path confined to its root."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import current_app

from ..models import SIDECAR_KINDS, Render
from ..render import partial_outputs

log = logging.getLogger(__name__)


def _inside(root: Path, relative: str, what: str) -> Path:
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise ValueError(f"{what} {relative!r} leaves its folder")
    return target


def lesson_dir(lessons_root: Path, lesson_path: str) -> Path:
    """The folder of a lesson path ("<videoId>/lesson_<n>"), refusing anything outside LESSONS_ROOT."""
    return _inside(lessons_root, lesson_path, "lesson path")


def video_file(videos_root: Path, output_path: str) -> Path:
    """Where a render's output lives: VIDEOS_ROOT/<lessonPath>/<file> for "videos/<lessonPath>/<file>"."""
    return _inside(videos_root, output_path.removeprefix("videos/"), "output path")


def render_output(render: Render) -> Path:
    return video_file(Path(current_app.config["VIDEOS_ROOT"]), render.output_path)


def render_files(render: Render) -> list[Path]:
    """The video and the files written beside it (poster, chapters, captions)."""
    root = Path(current_app.config["VIDEOS_ROOT"])
    sidecars = [render.sidecar_path(kind) for kind in SIDECAR_KINDS]
    return [render_output(render)] + [video_file(root, path) for path in sidecars if path]


def render_lesson_dir(render: Render) -> Path:
    return lesson_dir(Path(current_app.config["LESSONS_ROOT"]), render.lesson.path)


def remove_partial_outputs(render: Render) -> None:
    """Delete what a stopped render left beside its target; best effort."""
    try:
        for leftover in partial_outputs(render_output(render)):
            leftover.unlink(missing_ok=True)
    except (OSError, ValueError) as exc:
        log.warning("could not remove partial output render_id=%s error=%s", render.id, exc)
