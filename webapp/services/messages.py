"""Messages shown to users never carry the server's own paths."""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from ..render.errors import redact_paths


def _roots() -> list[tuple[str, str]]:
    config = current_app.config
    named = [
        (config.get("LESSONS_ROOT"), ""),
        (config.get("VIDEOS_ROOT"), "videos/"),
        (config.get("RENDER_CACHE_DIR"), "render cache/"),
        (current_app.instance_path, ""),
    ]
    found = []
    for root, label in named:
        if root:
            for form in {str(Path(root)), str(Path(root).resolve())}:
                found.append((form.rstrip("/") + "/", label))
    # Longest first, so a root inside another is replaced by its own label.
    return sorted(found, key=lambda item: -len(item[0]))


def without_server_paths(text: str | None) -> str | None:
    """The message with paths made relative to their root (lessons, videos, cache), and any
    other absolute path cut to its file name."""
    if not text:
        return text
    for root, label in _roots():
        text = text.replace(root, label)
    return redact_paths(text)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 lesson", "2 lessons": the count with its noun in the right number."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
