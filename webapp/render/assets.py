"""Lesson assets: paths resolved inside the lesson folder, images checked, audio measured.

Asset paths (`image`, `audio`, `video`, `music.src`, the top-level `font`) are relative and
must resolve inside the lesson folder or its video folder (the lesson folder's parent, where
`../source.mp4` is shared by all lessons of a video): absolute paths, and `..` or symlinks
leading further out, are refused. `Assets` resolves and checks each file once per load, however
many segments name it. Audio is measured from the header of plain PCM/float WAV files (what
FFmpeg reads there), anything else by FFmpeg; clips by FFmpeg.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import stat
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from .errors import ManifestError, redact_paths
from .images import IMAGE_FORMATS

# The demuxers (FFmpeg's names) a lesson's clips and sound are read with: formats that hold their
# own media. A playlist or manifest (hls, dash, ...) opens the files it names, wherever this
# process may read, which would take a lesson outside its folders (an attacker's HLS playlist
# naming another course's finished video rendered it into their lesson). FFmpeg refuses any
# other format once it has recognised it, before reading further, and opens only local files.
MEDIA_FORMATS = "mov,matroska,mpegts,mpeg,avi,flv,asf,wav,w64,aiff,caf,mp3,aac,ac3,eac3,ogg,flac"
INPUT_OPTIONS = {"format_whitelist": MEDIA_FORMATS, "protocol_whitelist": "file"}
# Enough to identify any audio format; the default (5 MB / 5 s) makes opening WAV slow.
PROBE_OPTIONS = {**INPUT_OPTIONS, "probesize": "65536"}
NOT_MEDIA = "a playlist or another format that is not accepted: give the media file itself"

_DRIVE = re.compile(r"^[A-Za-z]:")


def resolve_asset(lesson_dir: Path, value, where: str) -> Path:
    """Resolve an asset path, refusing anything that leads outside `lesson_dir` (resolved) or
    its video folder (`lesson_dir`'s parent)."""
    if not isinstance(value, str):
        raise ManifestError(where, f"must be a relative path string, got {type(value).__name__}")
    if not value.strip():
        raise ManifestError(where, "must not be empty")
    if "\x00" in value:
        raise ManifestError(where, "contains a NUL character")
    if value.startswith(("/", "\\")) or _DRIVE.match(value) or PurePosixPath(value).is_absolute():
        raise ManifestError(where, "absolute paths are not allowed; give a path inside the lesson folder")
    parts = [p for p in re.split(r"[\\/]+", value) if p not in ("", ".")]
    video_dir = os.path.dirname(str(lesson_dir)) or str(lesson_dir)
    # Checked on the words first: `..` may lead to the video folder, never past it.
    if not _inside(os.path.normpath(os.path.join(lesson_dir, *parts)), video_dir):
        raise ManifestError(where, _OUTSIDE)
    # os.path rather than pathlib, and one stat: this runs for every asset of 2,000 segments.
    found = _existing(os.path.join(lesson_dir, *parts), video_dir, where)
    # Names written by macOS (and zips made there) may hold an accented letter decomposed (NFD)
    # where lesson.json, typed elsewhere, holds it composed (NFC), or the other way round: they
    # look the same, so a name that is not found is looked for in the other form too.
    for form in ("NFC", "NFD"):
        if found is None and (other := [unicodedata.normalize(form, p) for p in parts]) != parts:
            found = _existing(os.path.join(lesson_dir, *other), video_dir, where)
    if found is None:  # the path as given, so a typo shows (repr: quoted, nothing unprintable)
        raise ManifestError(where, f"file not found: {value if len(value) <= 100 else value[:99] + '…'!r}")
    return found


def _existing(candidate: str, video_dir: str, where: str) -> Path | None:
    """The regular file `candidate` leads to, None if there is none; ManifestError if it leads
    outside the video folder, loops, or is not a regular file."""
    try:
        resolved = os.path.realpath(candidate)
    except (OSError, ValueError) as exc:
        raise ManifestError(where, f"cannot resolve path ({exc.__class__.__name__})") from exc
    if not _inside(resolved, video_dir):
        raise ManifestError(where, f"{_OUTSIDE} (symlink leading out)")
    try:
        info = os.stat(resolved)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ManifestError(where, "cannot resolve path (symlink loop)") from exc
        return None
    if not stat.S_ISREG(info.st_mode):
        raise ManifestError(where, "not a regular file")
    return Path(resolved)


_OUTSIDE = "resolves outside the lesson folder and its video folder"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_image(path: Path, where: str) -> None:
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as img:
            w, h = img.size
    except UnidentifiedImageError as exc:
        raise ManifestError(where, "not a PNG, JPEG, WebP, GIF, BMP, TIFF, HEIC or AVIF image") from exc
    except Image.DecompressionBombError as exc:
        raise ManifestError(where, "image is too large") from exc
    except OSError as exc:
        raise ManifestError(where, f"cannot read image ({exc.strerror or redact_paths(str(exc))})") from exc
    if w < 1 or h < 1:
        raise ManifestError(where, "image has no pixels")


class Assets:
    """Resolves and checks asset files once per load, however many segments name them."""

    def __init__(self, root: Path):
        self.root = root
        self.paths: dict[str, Path] = {}
        self.images: set[Path] = set()
        self.audio: dict[Path, tuple[float, int]] = {}
        self.clips: dict[Path, ClipInfo] = {}

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

    def clip(self, value, where: str) -> tuple[Path, ClipInfo]:
        path = self.resolve(value, where)
        found = self.clips.get(path)
        if found is None:
            found = self.clips[path] = probe_clip(path, where)
        return path, found


@dataclass(frozen=True)
class ClipInfo:
    """What a video clip holds, as FFmpeg reads it."""

    duration: float  # seconds, from its first picture
    width: int
    height: int
    audio_channels: int  # 0: no sound


def open_input(path: Path | str, where: str, kind: str, options: dict = INPUT_OPTIONS):
    """A lesson's clip or sound opened by FFmpeg as one of MEDIA_FORMATS, from a local file;
    ManifestError for any other format. Every read of a lesson's media opens it here."""
    import av

    try:
        return av.open(str(path), metadata_errors="ignore", options=options)
    except av.error.ArgumentError as exc:  # "not on the whitelist" (the options are ours)
        raise ManifestError(where, f"not a readable {kind} file ({NOT_MEDIA})") from exc


def probe_clip(path: Path, where: str) -> ClipInfo:
    """Duration, size and sound of a video clip, or ManifestError."""
    with _probe_errors(where, "video"), open_input(path, where, "video") as container:
        if not container.streams.video:
            raise ManifestError(where, "has no video stream")
        stream = container.streams.video[0]
        duration = _seconds(container, stream, from_first_picture=True)
        width, height = stream.codec_context.width, stream.codec_context.height
        channels = (main_audio(container).codec_context.channels or 1) if container.streams.audio else 0
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise ManifestError(where, "length unknown or zero")
    if not width or not height:
        raise ManifestError(where, "the video stream has no picture size")
    return ClipInfo(duration, width, height, channels)


def _seconds(container, stream, from_first_picture: bool = False) -> float | None:
    """A stream's length: its own duration, else its container's (which counts from 0; with
    `from_first_picture`, from the stream's start instead)."""
    import av

    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is None:
        return None
    start = container.start_time / av.time_base if from_first_picture and container.start_time else 0.0
    return container.duration / av.time_base - start


@contextlib.contextmanager
def _probe_errors(where: str, kind: str):
    """FFmpeg's and the file system's errors while probing, as a ManifestError naming `where`."""
    import av

    try:
        yield
    except ManifestError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(where, f"not a readable {kind} file ({av_reason(exc)})") from exc
    except OSError as exc:
        raise ManifestError(where, f"cannot read ({exc.strerror or exc.__class__.__name__})") from exc


def main_audio(container):
    """A file's sound: its audio stream flagged as the default one (a second language may come
    first), else its first; players and FFmpeg pick it the same way."""
    import av

    streams = container.streams.audio
    return next((s for s in streams if s.disposition & av.stream.Disposition.default), streams[0])


def probe_audio(path: Path, where: str) -> tuple[float, int]:
    """(duration in seconds, channel count) of an audio file, or ManifestError."""
    found = wav_header(path)
    if found is not None:
        return found
    with _probe_errors(where, "audio"), open_input(path, where, "audio", PROBE_OPTIONS) as container:
        if not container.streams.audio:
            raise ManifestError(where, "has no audio stream")
        stream = main_audio(container)
        duration = _seconds(container, stream)
        cc = stream.codec_context
        if duration is not None and cc.name == "opus" and cc.delay and stream.rate:
            duration -= cc.delay / stream.rate  # Opus pre-skip is not audio
        channels = cc.channels or 1
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise ManifestError(where, 'length unknown or zero; give the segment a "duration"')
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


def av_reason(exc: Exception) -> str:
    """A short one-line reason for a failed read of an asset, naming no server path."""
    text = getattr(exc, "strerror", None) or str(exc)
    return redact_paths(" ".join(str(text).split()))[:200]
