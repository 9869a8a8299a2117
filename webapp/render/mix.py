"""Mixing the lesson's sounds into one track, block by block, as float32 numpy arrays.

- An `AudioPart` is one sound placed in the track: a segment's narration, or a clip's own sound
  (from `videoStart`, scaled by `videoVolume`). It is decoded, resampled to the track's rate and
  layout, and starts at exactly the sample where its segment's picture starts; it is cut after
  `samples` samples, and silent after its file ends.
- The music bed (`effects.Music`) is looped or cut to the track, faded in and out over `fade`
  seconds, and lowered to `duck` x `volume` while narration plays: from each narration part's
  start to the end of its file's sound (`voiced`), with raised-cosine ramps of DUCK_RAMP seconds
  that end where the narration starts and begin where it ends, so the gain never jumps (no
  clicks) and the first word is not masked. Ramps of narrations closer than two ramps merge.
- `mix(track)` yields the track in blocks of BLOCK samples, each (channels, n) float32; the
  blocks add up to exactly `track.samples` samples.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from .assets import PROBE_OPTIONS, main_audio, open_input
from .effects import Music
from .errors import ManifestError, TransientRenderError
from .progress import Tick, no_tick

BLOCK = 1024 * 16  # samples per block of the mix
DUCK_RAMP = 0.25  # seconds the music takes to go down before narration and up after it
SEEK_BEFORE = 1.0  # seconds: a clip's sound past this point is reached by seeking


@dataclass(frozen=True)
class AudioPart:
    """One sound in the track (sample offsets at the track's rate)."""

    path: str
    start: int  # first sample in the track
    samples: int  # how long it may last: cut after this, silent once the file ends
    field: str  # e.g. "segments[2].audio", for errors
    offset: float = 0.0  # seconds into the file where the sound starts (a clip's videoStart)
    from_picture: bool = False  # offset counts from the file's first picture (a clip), not its first sample
    gain: float = 1.0  # a clip's videoVolume
    voiced: int = 0  # narration: samples that carry the file's sound (ducks the music); 0: not narration


@dataclass(frozen=True)
class Track:
    """Everything the lesson's audio track is made of."""

    parts: tuple[AudioPart, ...]
    samples: int  # the track's length: exactly the video's
    rate: int
    layout: str  # "mono" or "stereo"
    music: Music | None = None
    loudness: float | None = None  # LUFS target; None: left as mixed

    @property
    def channels(self) -> int:
        return 2 if self.layout == "stereo" else 1


def _decode_error(exc: av.error.FFmpegError, field: str) -> Exception:
    reason = exc.strerror or str(exc)
    if isinstance(exc, OSError):  # the file could not be read: storage, not content
        return TransientRenderError(f"{field}: cannot read audio ({reason})")
    return ManifestError(field, f"cannot decode audio ({reason})")


def _decoded(
    path: str, field: str, layout: str, rate: int, offset: float = 0.0, from_picture: bool = False
) -> Iterator[np.ndarray]:
    """The file's sound from `offset` seconds as (channels, n) float32 arrays at `rate` and `layout`.
    Seconds count from the sound's first sample; with `from_picture` (a clip's own sound) from the
    file's first picture, as the clip's frames count them (clips.py): a sound that starts before
    or after the picture (a camera's file, a stream that starts late) stays in step with it,
    silent where it has no sound yet. It ends where the file says its sound ends, when the file
    says so exactly (MP4/M4A/MOV: an AAC encoder's padding after the end is not sound)."""
    try:
        with open_input(path, field, "audio", PROBE_OPTIONS) as src:
            stream = main_audio(src)
            origin = _first_picture(src) if from_picture else None  # seconds in the file's timeline
            if offset > SEEK_BEFORE:
                origin = _start(stream) if origin is None else origin
                src.seek(
                    round((origin + offset - SEEK_BEFORE) / stream.time_base), stream=stream, backward=True
                )
            chunks = _placed(src, stream, layout, rate, offset, origin)
            end = _exact_end(src, stream)
            if end is None:
                yield from chunks
            else:
                base = _start(stream) if origin is None else origin
                yield from _cut(chunks, round((end - base - offset) * rate))
    except av.error.FFmpegError as exc:
        raise _decode_error(exc, field) from exc


def _placed(src, stream, layout: str, rate: int, offset: float, origin: float | None) -> Iterator[np.ndarray]:
    """The stream's sound from `origin + offset` (origin None: its first sample), resampled."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    frames = src.decode(stream)
    skip = None  # samples still to drop before the sound starts (< 0: silence to add)
    while True:
        frame = next(frames, None)
        if skip is None and frame is not None:
            at = frame.pts * frame.time_base if frame.pts is not None else _start(stream)
            origin = at if origin is None else origin  # the first sample
            skip = round((origin + offset - at) * rate)
            if skip < 0:  # the sound starts later than asked: keep it in place
                yield np.zeros((len(av.AudioLayout(layout).channels), -skip), np.float32)
                skip = 0
        for out in resampler.resample(frame):
            data = out.to_ndarray()
            if skip:
                data, skip = data[:, skip:], skip - min(skip, data.shape[1])
            if data.shape[1]:
                yield data
        if frame is None:
            return


def _cut(chunks: Iterator[np.ndarray], samples: int) -> Iterator[np.ndarray]:
    for chunk in chunks:
        if samples <= 0:
            return
        yield chunk[:, :samples]
        samples -= chunk.shape[1]


def _exact_end(src, stream) -> float | None:
    """Where the sound ends in the file's timeline, in seconds, for files that say it exactly
    (the MP4 family's sample tables and edit lists); None for others (an MP3's length may be an
    estimate)."""
    if "mov" not in src.format.name.split(",") or stream.duration is None:
        return None
    return _start(stream) + float(stream.duration * stream.time_base)


def _start(stream) -> float:
    """Where a stream starts in its file's timeline, in seconds (0 when the file does not say)."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _first_picture(src) -> float | None:
    """When a file's first picture is shown, in seconds in its timeline; None without a picture."""
    if not src.streams.video:
        return None
    video = src.streams.video[0]
    if video.start_time is not None:
        return _start(video)
    return src.start_time / av.time_base if src.start_time is not None else None


class _Reader:
    """Reads exactly n samples at a time from a sound; silence after its end, or from its start
    again when `loop`."""

    def __init__(self, part: AudioPart, layout: str, rate: int, loop: bool = False):
        self.part, self.layout, self.rate, self.loop = part, layout, rate, loop
        self.channels = 2 if layout == "stereo" else 1
        self.chunks = self._open()
        self.buffer = np.zeros((self.channels, 0), np.float32)
        self.decoded_this_pass = 0

    def _open(self) -> Iterator[np.ndarray]:
        p = self.part
        return _decoded(p.path, p.field, self.layout, self.rate, p.offset, p.from_picture)

    def read(self, n: int) -> np.ndarray:
        pieces, have = [self.buffer], self.buffer.shape[1]
        while have < n and self.chunks is not None:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.chunks = self._again()
                continue
            self.decoded_this_pass += chunk.shape[1]
            pieces.append(chunk)
            have += chunk.shape[1]
        data = np.concatenate(pieces, axis=1) if len(pieces) > 1 else self.buffer
        if have < n:
            data = np.concatenate([data, np.zeros((self.channels, n - have), np.float32)], axis=1)
        self.buffer = data[:, n:]
        return data[:, :n]

    def _again(self) -> Iterator[np.ndarray] | None:
        """The file from its start again (looping), or None: silence from now on."""
        if not self.loop:
            return None
        if self.decoded_this_pass == 0:
            raise ManifestError(self.part.field, "no sound could be decoded to loop")
        self.decoded_this_pass = 0
        return self._open()

    def close(self) -> None:
        if self.chunks is not None:
            self.chunks.close()


def ease(x: np.ndarray) -> np.ndarray:
    """A half cosine from 0 to 1 over x in [0, 1] (clipped outside): no corner at either end."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


class MusicBed:
    """The music bed's samples times its gain: volume, fades at both ends, ducked under narration."""

    def __init__(self, music: Music, track: Track):
        self.music, self.total = music, track.samples
        part = AudioPart(str(music.path), 0, track.samples, "music.src")
        self.reader = _Reader(part, track.layout, track.rate, loop=True)
        self.fade = music.fade * track.rate
        self.ramp = DUCK_RAMP * track.rate
        spans = sorted((p.start, p.start + min(p.voiced, p.samples)) for p in track.parts if p.voiced > 0)
        self.starts = [a for a, _ in spans]
        self.ends = np.array([b for _, b in spans], np.int64)
        self.running_end = np.maximum.accumulate(self.ends) if spans else self.ends

    def gain(self, pos: int, n: int) -> np.ndarray:
        """The bed's gain for samples pos .. pos + n - 1."""
        t = np.arange(pos, pos + n, dtype=np.float64)
        g = np.ones(n)
        if self.fade > 0:
            g = np.minimum(ease(t / self.fade), ease((self.total - t) / self.fade))
        ducked = self.ducked(t, pos, n)
        return (self.music.volume * g * (1.0 - (1.0 - self.music.duck) * ducked)).astype(np.float32)

    def ducked(self, t: np.ndarray, pos: int, n: int) -> np.ndarray:
        """How far the bed is ducked (0: not at all, 1: fully), for the times t."""
        d = np.zeros(n)
        first = int(np.searchsorted(self.running_end, pos - self.ramp, side="right"))
        last = bisect.bisect_left(self.starts, pos + n + self.ramp)
        for a, b in zip(self.starts[first:last], self.ends[first:last], strict=True):
            if b + self.ramp <= pos:
                continue
            shape = np.minimum((t - (a - self.ramp)) / self.ramp, (b + self.ramp - t) / self.ramp)
            d = np.maximum(d, ease(shape))
        return d

    def read(self, pos: int, n: int) -> np.ndarray:
        return self.reader.read(n) * self.gain(pos, n)

    def close(self) -> None:
        self.reader.close()


def mix(track: Track, tick: Tick = no_tick) -> Iterator[np.ndarray]:
    """The whole track in blocks of BLOCK samples ((channels, n) float32, exactly track.samples)."""
    parts = sorted(track.parts, key=lambda p: p.start)
    following = 0  # parts[following:] have not started yet
    playing: list[tuple[AudioPart, _Reader]] = []
    bed = MusicBed(track.music, track) if track.music is not None else None
    try:
        for pos in range(0, track.samples, BLOCK):
            n = min(BLOCK, track.samples - pos)
            while following < len(parts) and parts[following].start < pos + n:
                part = parts[following]
                playing.append((part, _Reader(part, track.layout, track.rate)))
                following += 1
            block = np.zeros((track.channels, n), np.float32)
            for part, reader in playing:
                lo, hi = max(pos, part.start), min(pos + n, part.start + part.samples)
                if hi > lo:
                    sound = reader.read(hi - lo)
                    block[:, lo - pos : hi - pos] += sound if part.gain == 1.0 else sound * part.gain
            for _part, reader in [p for p in playing if p[0].start + p[0].samples <= pos + n]:
                reader.close()
            playing = [p for p in playing if p[0].start + p[0].samples > pos + n]
            if bed is not None:
                block += bed.read(pos, n)
            tick(pos + n)
            yield block
    finally:
        for _part, reader in playing:
            reader.close()
        if bed is not None:
            bed.close()
