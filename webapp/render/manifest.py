"""Read and fully validate a lesson folder's lesson.json into typed objects.

Every problem raises ManifestError with the field at fault, e.g.
`segments[3].audio: file not found`; nothing here lets a stack trace reach a user.

Rules (see DESIGN.md, "Rendering"):
- `title` (non-empty string) and `segments` (non-empty list) are required.
- `width`/`height`: even integers 16..3840 (default 1920x1080); `fps`: integer 1..60 (30).
- Each segment has `audio` or a positive `duration` (or both: then `duration` wins and the
  audio is cut or padded with silence). Without `duration` a segment lasts its audio.
- Asset paths (`image`, `audio`, top-level `font`) are relative and must resolve inside the
  lesson folder: absolute paths, `..` and symlinks leading out are refused.
- `background` is a colour ("#1a1a2e", "#fff", "rgb(10,20,30)", "navy").
- Unknown keys are ignored (earlier pipeline steps may add their own) and listed in
  `Manifest.warnings`, so a typo such as "imgae" is visible in the CLI and logs.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image, ImageColor, UnidentifiedImageError

from .errors import ManifestError, RenderError
from .fonts import FontChain, FontFileError, bundled_faces, load_face

__all__ = ["MANIFEST_NAME", "Manifest", "ManifestError", "Segment", "load_manifest"]

MANIFEST_NAME = "lesson.json"
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
MAX_TEXT_CHARS = 5000
# Enough to identify any audio format; the default (5 MB / 5 s) makes opening WAV slow.
PROBE_OPTIONS = {"probesize": "65536"}
DEFAULT_BACKGROUND = "#000000"
TOP_KEYS = {"title", "width", "height", "fps", "font", "segments"}
SEGMENT_KEYS = {"image", "background", "audio", "duration", "title", "text"}


@dataclass(frozen=True)
class Segment:
    """One picture shown while its narration plays."""

    duration: float  # seconds this segment lasts (its `duration`, else its audio's length)
    image: Path | None = None  # resolved path inside the lesson folder
    background: str | None = None  # as written in lesson.json
    audio: Path | None = None  # resolved path inside the lesson folder
    title: str = ""
    text: str = ""
    index: int = 0
    color: tuple[int, int, int] = (0, 0, 0)  # parsed `background` (default black)
    audio_duration: float | None = None  # the audio file's own length, if any
    audio_channels: int = 0

    @property
    def field(self) -> str:
        return f"segments[{self.index}]"


@dataclass(frozen=True)
class Manifest:
    lesson_dir: Path
    title: str
    width: int
    height: int
    fps: int
    segments: tuple[Segment, ...]
    font: Path | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def duration(self) -> float:
        """Sum of the segment durations, in seconds."""
        return math.fsum(s.duration for s in self.segments)

    @property
    def frame_starts(self) -> tuple[int, ...]:
        """First frame of each segment, then the total: segment k is [starts[k], starts[k+1])."""
        starts, t = [0], 0.0
        for s in self.segments:
            t = math.fsum((t, s.duration))
            starts.append(round(t * self.fps))
        return tuple(starts)

    @property
    def total_frames(self) -> int:
        """The exact number of frames the output video has."""
        return self.frame_starts[-1]

    def segment_frames(self) -> list[tuple[int, int]]:
        """(first frame, frame count) of each segment."""
        st = self.frame_starts
        return [(st[i], st[i + 1] - st[i]) for i in range(len(self.segments))]


def _fail(field_name: str, reason: str) -> ManifestError:
    return ManifestError(field_name, reason)


def _int_field(raw: dict, key: str, default: int, lo: int, hi: int, even: bool = False) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, f"must be an integer, got {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _fail(key, f"must be an integer, got {value}")
        value = int(value)
    if not lo <= value <= hi:
        raise _fail(key, f"must be between {lo} and {hi}, got {value}")
    if even and value % 2:
        raise _fail(key, f"must be even (H.264 4:2:0 needs even sizes), got {value}")
    return value


def _text_field(raw: dict, key: str, where: str, required: bool = False) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise _fail(where, "required")
        return ""
    if not isinstance(value, str):
        raise _fail(where, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _fail(where, "must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise _fail(where, f"too long ({len(value)} characters, at most {MAX_TEXT_CHARS})")
    # Drop control characters other than newline/tab; they have no glyphs.
    return "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) != "Cc").replace("\t", " ")


_DRIVE = re.compile(r"^[A-Za-z]:")


def resolve_asset(lesson_dir: Path, value, where: str) -> Path:
    """Resolve an asset path, refusing anything that leads outside `lesson_dir` (resolved)."""
    if not isinstance(value, str):
        raise _fail(where, f"must be a relative path string, got {type(value).__name__}")
    if not value.strip():
        raise _fail(where, "must not be empty")
    if "\x00" in value:
        raise _fail(where, "contains a NUL character")
    if value.startswith(("/", "\\")) or _DRIVE.match(value) or PurePosixPath(value).is_absolute():
        raise _fail(where, "absolute paths are not allowed; give a path inside the lesson folder")
    parts = re.split(r"[\\/]+", value)
    if ".." in parts:
        raise _fail(where, "'..' is not allowed; give a path inside the lesson folder")
    candidate = lesson_dir.joinpath(*[p for p in parts if p not in ("", ".")])
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        raise _fail(where, f"cannot resolve path ({exc.__class__.__name__})") from exc
    if not resolved.is_relative_to(lesson_dir):
        raise _fail(where, "resolves outside the lesson folder (symlink leading out)")
    if not resolved.exists():
        raise _fail(where, "file not found")
    if not resolved.is_file():
        raise _fail(where, "not a regular file")
    return resolved


def probe_audio(path: Path, where: str) -> tuple[float, int]:
    """(duration in seconds, channel count) of an audio file, or ManifestError."""
    import av  # imported lazily: scanning lessons without audio stays light

    try:
        with av.open(str(path), metadata_errors="ignore", options=PROBE_OPTIONS) as container:
            if not container.streams.audio:
                raise _fail(where, "has no audio stream")
            stream = container.streams.audio[0]
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            cc = stream.codec_context
            if duration is not None and cc.name == "opus" and cc.delay and stream.rate:
                duration -= cc.delay / stream.rate  # Opus pre-skip is not audio
            channels = cc.channels or 1
    except ManifestError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(where, f"not a readable audio file ({_av_reason(exc)})") from exc
    except OSError as exc:
        raise _fail(where, f"cannot read ({exc.strerror or exc})") from exc
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise _fail(where, 'length unknown or zero; give the segment a "duration"')
    return duration, channels


def _av_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:200]


def _check_image(path: Path, where: str) -> None:
    try:
        with Image.open(path) as img:
            w, h = img.size
    except UnidentifiedImageError as exc:
        raise _fail(where, "not an image format Pillow can read") from exc
    except Image.DecompressionBombError as exc:
        raise _fail(where, "image is too large") from exc
    except OSError as exc:
        raise _fail(where, f"cannot read image ({exc})") from exc
    if w < 1 or h < 1:
        raise _fail(where, "image has no pixels")


def _parse_color(value, where: str) -> tuple[int, int, int]:
    if not isinstance(value, str):
        raise _fail(where, f'must be a colour string like "#1a1a2e", got {type(value).__name__}')
    try:
        rgb = ImageColor.getrgb(value.strip())
    except ValueError as exc:
        raise _fail(where, f'not a colour: {value!r} (use e.g. "#1a1a2e")') from exc
    return tuple(rgb[:3])


def _duration_field(seg: dict, where: str) -> float | None:
    value = seg.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise _fail(where, f"must be a positive number of seconds, got {value}")
    if value > 24 * 3600:
        raise _fail(where, f"too long ({value} s)")
    return float(value)


def font_chain(manifest: Manifest | None, bold: bool = False, system_fallback: bool = True) -> FontChain:
    """The lesson's font (if any) followed by the bundled Noto faces."""
    faces = []
    if manifest is not None and manifest.font is not None:
        faces.append(load_face(str(manifest.font)))
    faces.extend(bundled_faces(bold))
    return FontChain(faces, system_fallback=system_fallback)


def load_manifest(lesson_dir: Path | str) -> Manifest:
    """Parse and validate LESSON_DIR/lesson.json; raise ManifestError naming the field at fault."""
    lesson_dir = Path(lesson_dir)
    try:
        root = lesson_dir.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise _fail("lesson folder", f"not found: {lesson_dir}") from exc
    if not root.is_dir():
        raise _fail("lesson folder", f"not a folder: {lesson_dir}")
    path = root / MANIFEST_NAME
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise _fail(MANIFEST_NAME, f"too large (over {MAX_MANIFEST_BYTES // 1024 // 1024} MB)")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise _fail(MANIFEST_NAME, "file not found") from exc
    except UnicodeDecodeError as exc:
        raise _fail(MANIFEST_NAME, "not UTF-8 text") from exc
    except OSError as exc:
        raise _fail(MANIFEST_NAME, f"cannot read ({exc.strerror or exc})") from exc
    try:
        raw = json.loads(text, parse_constant=lambda c: float("nan"))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _fail(MANIFEST_NAME, f"invalid JSON at {where}: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise _fail(MANIFEST_NAME, "must be a JSON object")

    warnings = [f"{k}: unknown key, ignored" for k in raw if k not in TOP_KEYS]
    title = _text_field(raw, "title", "title", required=True).strip()
    width = _int_field(raw, "width", 1920, 16, 3840, even=True)
    height = _int_field(raw, "height", 1080, 16, 3840, even=True)
    fps = _int_field(raw, "fps", 30, 1, 60)
    font = None
    if raw.get("font") is not None:
        font = resolve_asset(root, raw["font"], "font")
        try:
            load_face(str(font))
        except FontFileError as exc:
            raise _fail("font", f"not a usable font file: {exc}") from exc

    items = raw.get("segments")
    if items is None:
        raise _fail("segments", "required (a list of at least one segment)")
    if not isinstance(items, list):
        raise _fail("segments", f"must be a list, got {type(items).__name__}")
    if not items:
        raise _fail("segments", "at least one segment is required")

    segments = []
    for i, seg in enumerate(items):
        where = f"segments[{i}]"
        if not isinstance(seg, dict):
            raise _fail(where, f"must be an object, got {type(seg).__name__}")
        warnings += [f"{where}.{k}: unknown key, ignored" for k in seg if k not in SEGMENT_KEYS]
        image = None
        if seg.get("image") is not None:
            image = resolve_asset(root, seg["image"], f"{where}.image")
            _check_image(image, f"{where}.image")
        background = seg.get("background")
        color = _parse_color(background, f"{where}.background") if background is not None else (0, 0, 0)
        duration = _duration_field(seg, f"{where}.duration")
        audio = audio_duration = None
        channels = 0
        if seg.get("audio") is not None:
            audio = resolve_asset(root, seg["audio"], f"{where}.audio")
            audio_duration, channels = probe_audio(audio, f"{where}.audio")
        if duration is None and audio is None:
            raise _fail(f"{where}.duration", 'required when the segment has no "audio"')
        effective = duration if duration is not None else audio_duration
        if effective * fps < 1 - 1e-9:
            culprit = f"{where}.duration" if duration is not None else f"{where}.audio"
            raise _fail(culprit, f"lasts {effective:.3f} s, shorter than one frame at {fps} fps")
        segments.append(
            Segment(
                duration=effective,
                image=image,
                background=background,
                audio=audio,
                title=_text_field(seg, "title", f"{where}.title").strip(),
                text=_text_field(seg, "text", f"{where}.text").strip(),
                index=i,
                color=color,
                audio_duration=audio_duration,
                audio_channels=channels,
            )
        )

    manifest = Manifest(
        lesson_dir=root,
        title=title,
        width=width,
        height=height,
        fps=fps,
        segments=tuple(segments),
        font=font,
        warnings=tuple(warnings),
    )
    _check_glyphs(manifest)
    return manifest


def _check_glyphs(manifest: Manifest) -> None:
    """Every character of every title/text must be covered by some font of the chain."""
    regular = font_chain(manifest, bold=False)
    bold = font_chain(manifest, bold=True)
    for seg in manifest.segments:
        for key, chain in (("title", bold), ("text", regular)):
            missing = chain.uncovered(getattr(seg, key))
            if missing:
                chars = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:3])
                raise _fail(
                    f"{seg.field}.{key}",
                    f"no font covers {chars}; add a font file that does to the lesson folder "
                    f'and name it in "font"',
                )


def segment_error(seg: Segment, key: str, exc: Exception) -> RenderError:
    """A ManifestError for an asset that validated but failed while rendering."""
    return ManifestError(f"{seg.field}.{key}", _av_reason(exc))
