"""Files written beside the output NAME.mp4: poster NAME.jpg, chapters NAME.chapters.vtt, captions NAME.vtt.

Each is written to `.FILE.RANDOM.part` beside its target while the video is made, and renamed
into place only once the MP4 has been verified (pipeline.py); a failed or cancelled render
removes the .part files and leaves nothing. Times come from the frame plan
(`Manifest.segment_times`), so cues agree with the picture within a frame.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .captions import Cue
from .compose import compose
from .manifest import Manifest

POSTER_WIDTH = 1280
POSTER_QUALITY = 85
KINDS = ("poster", "chapters", "captions")
SUFFIXES = {"poster": ".jpg", "chapters": ".chapters.vtt", "captions": ".vtt"}


def sidecar_paths(output: Path) -> dict[str, Path]:
    """Where each sidecar of OUTPUT goes: NAME.jpg, NAME.chapters.vtt, NAME.vtt."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return {kind: output.with_name(stem + SUFFIXES[kind]) for kind in KINDS}


def timestamp(seconds: float) -> str:
    """WebVTT time: HH:MM:SS.mmm."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: list[Cue], language: str | None = None) -> str:
    """A WebVTT document: header, then one block per cue (no blank line inside a cue's text)."""
    out = ["WEBVTT"]
    if language:
        out[0] += f"\nLanguage: {language}"
    for c in cues:
        lines = [escape(line.strip()) for line in c.text.split("\n") if line.strip()]
        if not lines or round(c.end * 1000) <= round(c.start * 1000):
            continue
        out.append(f"{timestamp(c.start)} --> {timestamp(c.end)}\n" + "\n".join(lines))
    return "\n\n".join(out) + "\n"


def chapter_cues(manifest: Manifest) -> list[Cue]:
    """One cue per segment that has a title, from its first frame to its last."""
    return [
        Cue(start, end, " ".join(seg.title.split()))
        for seg, (start, end) in zip(manifest.segments, manifest.segment_times(), strict=True)
        if seg.title
    ]


def poster(manifest: Manifest, picture: bytes | None) -> Image.Image:
    """The first segment's picture (composed unless given as raw RGB), at most POSTER_WIDTH wide."""
    size = (manifest.width, manifest.height)
    img = Image.frombytes("RGB", size, picture) if picture else compose(manifest, manifest.segments[0])
    if img.width > POSTER_WIDTH:
        height = max(1, round(img.height * POSTER_WIDTH / img.width))
        img = img.resize((POSTER_WIDTH, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


class Sidecars:
    """The sidecar .part files of one render; publish() renames them, remove() deletes them."""

    def __init__(self, output: Path, token: str):
        # An output named like a sidecar (e.g. "x.vtt") gets no sidecar of that name.
        self.targets = {k: p for k, p in sidecar_paths(output).items() if p != output}
        self.parts = {k: p.with_name(f".{p.name}.{token}.part") for k, p in self.targets.items()}
        self.written: dict[str, Path] = {}  # kind -> .part file written
        self.published: dict[str, Path] = {}  # kind -> final path

    def write(self, manifest: Manifest, picture: bytes | None, poll: Callable[[], None]) -> None:
        """Write every sidecar this lesson has to its .part file."""
        image = poster(manifest, picture)
        self._write_bytes("poster", None, lambda f: image.save(f, "JPEG", quality=POSTER_QUALITY))
        poll()
        chapters = chapter_cues(manifest)
        if chapters:
            self._write_bytes("chapters", webvtt(chapters).encode())
        cues = manifest.caption_cues()
        if cues:
            self._write_bytes("captions", webvtt(cues, manifest.caption_settings.language).encode())
        poll()

    def _write_bytes(self, kind: str, data: bytes | None, save=None) -> None:
        if kind not in self.parts:
            return
        part = self.parts[kind]
        self.written[kind] = part
        with open(part, "wb") as f:
            if save is not None:
                save(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def publish(self) -> None:
        """Rename each .part into place."""
        for kind, part in self.written.items():
            os.replace(part, self.targets[kind])
            self.published[kind] = self.targets[kind]

    def drop_stale(self) -> None:
        """Remove sidecars an earlier render left that this one has not written."""
        for kind, target in self.targets.items():
            if kind not in self.written:
                with contextlib.suppress(OSError):
                    target.unlink()

    def unpublish(self) -> None:
        """Remove sidecars published by this render (the video could not be put in place)."""
        for target in self.published.values():
            with contextlib.suppress(OSError):
                target.unlink()
        self.published = {}

    def remove_parts(self) -> None:
        for part in self.parts.values():
            with contextlib.suppress(OSError):
                part.unlink()
