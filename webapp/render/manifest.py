"""Read and fully validate a lesson folder's lesson.json into typed objects.

Every problem raises ManifestError with the field at fault, e.g.
`segments[3].audio: file not found`; nothing here lets a stack trace reach a user.

Rules (the lesson.json format; also in webapp/render/README.md):
- `title` (non-empty string) and `segments` (non-empty list) are required.
- `width`/`height`: even integers 16..3840 (default 1920x1080); `fps`: integer 1..60 (30).
- Each segment has `audio` or a positive `duration` (or both: then `duration` wins and the
  audio is cut or padded with silence). Without `duration` a segment lasts its audio.
- Asset paths (`image`, `audio`, top-level `font`) are relative and must resolve inside the
  lesson folder: absolute paths, `..` and symlinks leading out are refused.
- `background` is a colour ("#1a1a2e", "#fff", "rgb(10,20,30)", "navy").
- Unknown keys are ignored (earlier pipeline steps may add their own) and listed in
  `Manifest.warnings`, so a typo such as "imgae" is visible in the CLI and logs.
- Limits, so a hostile lesson cannot tie up a worker or a web request: lesson.json at most
  1 MB (and itself inside the lesson folder), at most 2,000 segments, 200,000 characters of
  titles and texts, `max_duration` seconds in all (default 4 h) and fewer than 2**31 frames.
  Validating a lesson at these limits takes milliseconds: each file is probed once, each
  character's font coverage is looked up once.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, ImageColor, UnidentifiedImageError

from .errors import ManifestError, RenderError, redact_paths
from .fonts import FontChain, FontFileError, bundled_faces, load_face

__all__ = ["DEFAULT_MAX_DURATION", "MANIFEST_NAME", "Manifest", "ManifestError", "Segment", "load_manifest"]

MANIFEST_NAME = "lesson.json"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_SEGMENTS = 2000
MAX_TEXT_CHARS = 5000  # one title or text
MAX_TOTAL_TEXT_CHARS = 200_000  # all segment titles and texts together
DEFAULT_MAX_DURATION = 4 * 3600  # seconds, the whole lesson (load_manifest's max_duration)
MAX_SEGMENT_SECONDS = 24 * 3600  # a segment's `duration`
FRAME_LIMIT = 2**31  # frame numbers must fit a signed 32-bit integer (x264, MP4 sample tables)
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
        raise _fail(key, f"must be between {lo} and {hi}, got {_shown(value)}")
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
    return _CONTROL.sub("", value).replace("\t", " ")


# Unicode's control characters (category Cc) except tab and newline; a regex runs in C.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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
    # os.path rather than pathlib, and one stat: this runs for every asset of 2,000 segments.
    candidate = os.path.join(lesson_dir, *[p for p in parts if p not in ("", ".")])
    try:
        resolved = os.path.realpath(candidate)
    except (OSError, ValueError) as exc:
        raise _fail(where, f"cannot resolve path ({exc.__class__.__name__})") from exc
    root = str(lesson_dir)
    if resolved != root and not resolved.startswith(root.rstrip(os.sep) + os.sep):
        raise _fail(where, "resolves outside the lesson folder (symlink leading out)")
    try:
        info = os.stat(resolved)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _fail(where, "cannot resolve path (symlink loop)") from exc
        raise _fail(where, "file not found") from exc
    if not stat.S_ISREG(info.st_mode):
        raise _fail(where, "not a regular file")
    return Path(resolved)


def probe_audio(path: Path, where: str) -> tuple[float, int]:
    """(duration in seconds, channel count) of an audio file, or ManifestError."""
    found = wav_header(path)
    if found is not None:
        return found
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
        raise _fail(where, f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise _fail(where, 'length unknown or zero; give the segment a "duration"')
    return duration, channels


# WAVE_FORMAT_EXTENSIBLE sub-format GUIDs: the format tag (2 bytes), then these 14 bytes.
_WAV_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_WAV_PCM, _WAV_FLOAT, _WAV_EXTENSIBLE = 1, 3, 0xFFFE


def wav_header(path: Path) -> tuple[float, int] | None:
    """(duration, channels) of a plain PCM or float WAV read from its header, or None.

    Opening a file with FFmpeg costs about a millisecond (5 ms for WAV); this reads the same
    numbers FFmpeg's WAV demuxer takes from the header (samples = data size / block size).
    Anything unusual (RF64, compressed, odd chunk layout, 0 or unknown data size, data
    running past the end of the file) gets None, so FFmpeg probes it as before.
    """
    try:
        with open(path, "rb") as f:
            found = _wav_fmt_and_data_size(f)
    except OSError:
        return None
    if found is None:
        return None
    fmt, size = found
    layout = _wav_layout(fmt)
    if layout is None:
        return None
    channels, rate, block_align = layout
    samples = size // block_align
    return (samples / rate, channels) if samples else None


def _wav_fmt_and_data_size(f: BinaryIO) -> tuple[bytes, int] | None:
    """The fmt chunk and the data size of a WAV file, or None if its layout is unusual."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return None
    fmt = None
    for _ in range(16):  # chunks before "data"; more is unusual enough for FFmpeg
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        tag, size = chunk[:4], int.from_bytes(chunk[4:], "little")
        if tag == b"data":
            # FFmpeg trusts the size only if the data fits the file, else it estimates.
            if f.tell() + size > os.fstat(f.fileno()).st_size:
                return None
            if fmt is None or size in (0, 0xFFFFFFFF):
                return None
            return fmt, size
        if tag == b"fmt " and fmt is None and 16 <= size <= 64 and size % 2 == 0:
            fmt = f.read(size)
            if len(fmt) < size:
                return None
        elif tag == b"fmt " or size % 2:  # a second fmt, or a pad byte: leave it to FFmpeg
            return None
        else:
            f.seek(size, os.SEEK_CUR)
    return None


def _wav_layout(fmt: bytes) -> tuple[int, int, int] | None:
    """(channels, rate, block size) from a WAV fmt chunk; None unless it is plain PCM or float."""
    ftag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if ftag == _WAV_EXTENSIBLE:
        if len(fmt) < 40 or struct.unpack_from("<H", fmt, 16)[0] < 22 or fmt[26:40] != _WAV_GUID_TAIL:
            return None
        ftag = struct.unpack_from("<H", fmt, 24)[0]
        bits = struct.unpack_from("<H", fmt, 18)[0] or bits  # valid bits, as FFmpeg reads them
    if ftag == _WAV_PCM and 1 <= bits <= 32:
        sample_bytes = (bits + 7) // 8  # FFmpeg's PCM codec for these bits
    elif ftag == _WAV_FLOAT and bits in (32, 64):
        sample_bytes = bits // 8
    else:
        return None
    # Unusual channel counts and rates: FFmpeg decides whether it can read them.
    if not 1 <= channels <= 8 or not 1 <= rate <= 384_000 or block_align != channels * sample_bytes:
        return None
    return channels, rate, block_align


def _av_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return redact_paths(" ".join(str(text).split()))[:200]


def _check_image(path: Path, where: str) -> None:
    try:
        with Image.open(path) as img:
            w, h = img.size
    except UnidentifiedImageError as exc:
        raise _fail(where, "not an image format Pillow can read") from exc
    except Image.DecompressionBombError as exc:
        raise _fail(where, "image is too large") from exc
    except OSError as exc:
        raise _fail(where, f"cannot read image ({exc.strerror or redact_paths(str(exc))})") from exc
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
    # Compared before any float conversion: a 4,000-digit integer does not fit a float.
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        raise _fail(where, f"must be a positive number of seconds, got {_shown(value)}")
    if value > MAX_SEGMENT_SECONDS:
        raise _fail(where, f"too long (more than {MAX_SEGMENT_SECONDS} s, the limit for one segment)")
    return float(value)


def _shown(value) -> str:
    """A number as written, cut short: JSON integers may have thousands of digits."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:20]}…"


def _hms(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def font_chain(manifest: Manifest | None, bold: bool = False, system_fallback: bool = True) -> FontChain:
    """The lesson's font (if any) followed by the bundled Noto faces."""
    faces = []
    if manifest is not None and manifest.font is not None:
        faces.append(load_face(str(manifest.font)))
    faces.extend(bundled_faces(bold))
    return FontChain(faces, system_fallback=system_fallback)


def _read_manifest(root: Path) -> str:
    """The text of ROOT/lesson.json: a regular file inside ROOT (after symlinks), within the cap."""
    fd = _open_manifest(_manifest_path(root))
    try:
        data = _read_regular_file(fd)
    finally:
        os.close(fd)
    if len(data) > MAX_MANIFEST_BYTES:
        raise _fail(MANIFEST_NAME, _too_large())
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(MANIFEST_NAME, "not UTF-8 text") from exc


def _manifest_path(root: Path) -> Path:
    """ROOT/lesson.json with symlinks resolved; ManifestError if that leads out of ROOT."""
    try:
        path = (root / MANIFEST_NAME).resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop
        raise _fail(MANIFEST_NAME, f"cannot resolve path ({exc.__class__.__name__})") from exc
    if not path.is_relative_to(root):  # checked before anything outside is opened
        raise _fail(MANIFEST_NAME, "resolves outside the lesson folder (symlink leading out)")
    return path


def _open_manifest(path: Path) -> int:
    """A read-only file descriptor of lesson.json, or ManifestError."""
    # O_NOFOLLOW: a symlink swapped in after resolve() is refused; O_NONBLOCK: a FIFO cannot
    # hang the open (it is refused later as not a regular file).
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        return os.open(path, flags)
    except FileNotFoundError as exc:
        raise _fail(MANIFEST_NAME, "file not found") from exc
    except OSError as exc:
        raise _fail(MANIFEST_NAME, f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc


def _read_regular_file(fd: int) -> bytes:
    """At most the cap + 1 bytes of lesson.json; ManifestError unless it is a regular file within the cap."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _fail(MANIFEST_NAME, "not a regular file")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise _fail(MANIFEST_NAME, _too_large())
        chunks, size = [], 0
        while size <= MAX_MANIFEST_BYTES:  # the file may grow after fstat: read at most cap + 1
            chunk = os.read(fd, min(1 << 20, MAX_MANIFEST_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _fail(MANIFEST_NAME, f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc
    return b"".join(chunks)


def _too_large() -> str:
    """The reason given for a lesson.json over the cap, in MB when the cap is whole megabytes."""
    if MAX_MANIFEST_BYTES % (1024 * 1024) == 0:
        return f"too large (the limit is {MAX_MANIFEST_BYTES // (1024 * 1024)} MB)"
    return f"too large (the limit is {MAX_MANIFEST_BYTES // 1024} KB)"


class _Assets:
    """Resolves and checks asset files once per load, however many segments name them."""

    def __init__(self, root: Path):
        self.root = root
        self.paths: dict[str, Path] = {}
        self.images: set[Path] = set()
        self.audio: dict[Path, tuple[float, int]] = {}

    def resolve(self, value, where: str) -> Path:
        if isinstance(value, str) and value in self.paths:
            return self.paths[value]
        path = resolve_asset(self.root, value, where)
        self.paths[value] = path
        return path

    def image(self, value, where: str) -> Path:
        path = self.resolve(value, where)
        if path not in self.images:
            _check_image(path, where)
            self.images.add(path)
        return path

    def probe(self, value, where: str) -> tuple[Path, float, int]:
        path = self.resolve(value, where)
        found = self.audio.get(path)
        if found is None:
            found = self.audio[path] = probe_audio(path, where)
        return path, *found


def load_manifest(lesson_dir: Path | str, *, max_duration: float = DEFAULT_MAX_DURATION) -> Manifest:
    """Parse and validate LESSON_DIR/lesson.json; raise ManifestError naming the field at fault.

    `max_duration`: the longest lesson accepted, in seconds (default 4 h).
    """
    if not max_duration > 0:
        raise ValueError(f"max_duration must be a positive number of seconds, got {max_duration}")
    root = _lesson_root(lesson_dir)
    raw = _parse_json(_read_manifest(root))
    warnings = [f"{k}: unknown key, ignored" for k in raw if k not in TOP_KEYS]
    title = _text_field(raw, "title", "title", required=True).strip()
    width = _int_field(raw, "width", 1920, 16, 3840, even=True)
    height = _int_field(raw, "height", 1080, 16, 3840, even=True)
    fps = _int_field(raw, "fps", 30, 1, 60)
    assets = _Assets(root)
    font = _lesson_font(raw, assets)
    items = _segment_items(raw)
    totals = _Totals(fps, max_duration)
    segments = [_segment(i, seg, assets, totals, warnings) for i, seg in enumerate(items)]
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


def _lesson_root(lesson_dir: Path | str) -> Path:
    """The lesson folder, resolved; ManifestError if it is missing or not a folder."""
    try:
        root = Path(lesson_dir).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise _fail("lesson folder", "not found") from exc
    if not root.is_dir():
        raise _fail("lesson folder", "not a folder")
    return root


def _parse_json(text: str) -> dict:
    """lesson.json's text parsed to its top-level object, or ManifestError."""
    try:
        raw = json.loads(text, parse_constant=lambda c: float("nan"))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _fail(MANIFEST_NAME, f"invalid JSON at {where}: {exc.msg}") from exc
    except ValueError as exc:  # a number of more than 4300 digits (Python's int limit)
        raise _fail(MANIFEST_NAME, "invalid JSON: a number is too long") from exc
    except RecursionError as exc:  # e.g. [[[[...]]]] nested thousands deep
        raise _fail(MANIFEST_NAME, "invalid JSON: nested too deeply") from exc
    if not isinstance(raw, dict):
        raise _fail(MANIFEST_NAME, "must be a JSON object")
    return raw


def _lesson_font(raw: dict, assets: _Assets) -> Path | None:
    """The lesson's own font file, if it names one; ManifestError unless it is usable."""
    if raw.get("font") is None:
        return None
    font = assets.resolve(raw["font"], "font")
    try:
        load_face(str(font))
    except FontFileError as exc:
        raise _fail("font", f"not a usable font file: {exc}") from exc
    return font


def _segment_items(raw: dict) -> list:
    """The raw `segments` list: present, not empty, within the limit (counted before any is read)."""
    items = raw.get("segments")
    if items is None:
        raise _fail("segments", "required (a list of at least one segment)")
    if not isinstance(items, list):
        raise _fail("segments", f"must be a list, got {type(items).__name__}")
    if not items:
        raise _fail("segments", "at least one segment is required")
    if len(items) > MAX_SEGMENTS:
        raise _fail("segments", f"too many segments ({len(items)}; the limit is {MAX_SEGMENTS})")
    return items


class _Totals:
    """Running totals over the segments read so far, checked against the whole-lesson limits."""

    def __init__(self, fps: int, max_duration: float):
        self.fps = fps
        self.max_duration = max_duration
        self.seconds = 0.0
        self.text_chars = 0

    def add_seconds(self, seconds: float) -> None:
        # Stop at the segment that crosses a limit: the rest is not even looked at.
        self.seconds += seconds
        limit = self.max_duration
        if self.seconds > limit:
            raise _fail("segments", f"the lesson lasts more than {_hms(limit)} (the limit is {limit:.10g} s)")
        if round(self.seconds * self.fps) >= FRAME_LIMIT:
            raise _fail("segments", f"the lesson has too many frames (the limit is {FRAME_LIMIT - 1})")

    def add_text(self, chars: int) -> None:
        self.text_chars += chars
        if self.text_chars > MAX_TOTAL_TEXT_CHARS:
            raise _fail(
                "segments",
                f"titles and texts total more than {MAX_TOTAL_TEXT_CHARS} characters "
                f"(the limit is {MAX_TOTAL_TEXT_CHARS})",
            )


def _segment(i: int, seg, assets: _Assets, totals: _Totals, warnings: list[str]) -> Segment:
    """Validate segment `i` and add it to the totals; its unknown keys are added to `warnings`."""
    where = f"segments[{i}]"
    if not isinstance(seg, dict):
        raise _fail(where, f"must be an object, got {type(seg).__name__}")
    warnings.extend(f"{where}.{k}: unknown key, ignored" for k in seg if k not in SEGMENT_KEYS)
    image = None
    if seg.get("image") is not None:
        image = assets.image(seg["image"], f"{where}.image")
    background = seg.get("background")
    color = _parse_color(background, f"{where}.background") if background is not None else (0, 0, 0)
    duration = _duration_field(seg, f"{where}.duration")
    audio = audio_duration = None
    channels = 0
    if seg.get("audio") is not None:
        audio, audio_duration, channels = assets.probe(seg["audio"], f"{where}.audio")
    effective = _effective_duration(where, duration, audio, audio_duration, totals.fps)
    totals.add_seconds(effective)
    seg_title = _text_field(seg, "title", f"{where}.title").strip()
    seg_text = _text_field(seg, "text", f"{where}.text").strip()
    totals.add_text(len(seg_title) + len(seg_text))
    return Segment(
        duration=effective,
        image=image,
        background=background,
        audio=audio,
        title=seg_title,
        text=seg_text,
        index=i,
        color=color,
        audio_duration=audio_duration,
        audio_channels=channels,
    )


def _effective_duration(
    where: str, duration: float | None, audio: Path | None, audio_duration: float | None, fps: int
) -> float:
    """How long the segment lasts: its `duration`, else its audio's; at least one frame, within the limit."""
    if duration is None and audio is None:
        raise _fail(f"{where}.duration", 'required when the segment has no "audio"')
    effective = duration if duration is not None else audio_duration
    culprit = f"{where}.duration" if duration is not None else f"{where}.audio"
    if effective * fps < 1 - 1e-9:
        raise _fail(culprit, f"lasts {effective:.3f} s, shorter than one frame at {fps} fps")
    if effective * fps >= FRAME_LIMIT - 0.5:
        raise _fail(culprit, f"lasts {effective:.0f} s, too many frames (the limit is {FRAME_LIMIT - 1})")
    return effective


def _check_glyphs(manifest: Manifest) -> None:
    """Every character of every title/text must be covered by some font of the chain."""
    chains = {"title": font_chain(manifest, bold=True), "text": font_chain(manifest, bold=False)}
    covered: dict[str, set[str]] = {key: set() for key in chains}
    for seg in manifest.segments:
        for key, chain in chains.items():
            text = getattr(seg, key)
            # Each distinct character is looked up once per load, not once per string.
            for ch in set(text) - covered[key]:
                if not chain.covers(ch):
                    break
                covered[key].add(ch)
            else:
                continue
            missing = []
            for ch in dict.fromkeys(text):  # the first few, in reading order
                if ch not in covered[key] and not chain.covers(ch):
                    missing.append(ch)
                    if len(missing) == 3:
                        break
            chars = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing)
            raise _fail(
                f"{seg.field}.{key}",
                f"no font covers {chars}; add a font file that does to the lesson folder "
                f'and name it in "font"',
            )


def segment_error(seg: Segment, key: str, exc: Exception) -> RenderError:
    """A ManifestError for an asset that validated but failed while rendering."""
    return ManifestError(f"{seg.field}.{key}", _av_reason(exc))
