"""Read a lesson folder's lesson.json into typed objects.

Minimal first version: title, size, fps and segment durations. The renderer
issue extends this module (full validation, path confinement) behind the same
`load_manifest` signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av

MANIFEST_NAME = "lesson.json"


class ManifestError(ValueError):
    """lesson.json is missing or invalid; never worth retrying."""


@dataclass(frozen=True)
class Segment:
    duration: float
    image: Path | None = None
    background: str | None = None
    audio: Path | None = None
    title: str = ""
    text: str = ""


@dataclass(frozen=True)
class Manifest:
    lesson_dir: Path
    title: str
    width: int
    height: int
    fps: int
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


def _audio_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration) / av.time_base


def load_manifest(lesson_dir: Path) -> Manifest:
    """Parse LESSON_DIR/lesson.json; raise ManifestError naming the field at fault."""
    lesson_dir = Path(lesson_dir)
    try:
        raw = json.loads((lesson_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{MANIFEST_NAME}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_NAME}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("title"), str):
        raise ManifestError("title: required string")
    segments = []
    for i, seg in enumerate(raw.get("segments") or []):
        audio = lesson_dir / seg["audio"] if seg.get("audio") else None
        duration = seg.get("duration") or (_audio_duration(audio) if audio else None)
        if not duration:
            raise ManifestError(f"segments[{i}].duration: required when there is no audio")
        segments.append(Segment(duration=float(duration), audio=audio, title=seg.get("title", ""),
                                text=seg.get("text", ""), background=seg.get("background"),
                                image=lesson_dir / seg["image"] if seg.get("image") else None))
    if not segments:
        raise ManifestError("segments: at least one segment is required")
    return Manifest(lesson_dir=lesson_dir, title=raw["title"], width=int(raw.get("width", 1920)),
                    height=int(raw.get("height", 1080)), fps=int(raw.get("fps", 30)),
                    segments=tuple(segments))
