"""The lesson's audio track: what it is made of, its cache key, and its encoding.

- `lesson_track` reads the manifest: each segment's narration and its clip's own sound
  (`videoVolume` above 0) start at the sample where the segment's first frame is shown
  (round(first frame x rate / fps), so sound never drifts from picture) and are cut to the
  segment; the music bed runs under the whole lesson (mix.py says how).
- `track_key` is everything that shapes the encoded track (file hashes, placement, volumes,
  the music's settings, the loudness target, layout and rate), and nothing else: captions and
  pictures are not in it.
- `encode_audio_track` mixes the track (mix.py), normalises it (loudness.py) and encodes it
  as one AAC stream in an .m4a: one track, not pieces, because AAC frames and encoder priming
  do not split cleanly. With a loudness target the mix is made once and kept in memory for
  the later passes when it fits MIX_MEMORY (5 min of mono is 58 MB); a longer track is mixed
  (decoded) again for each pass instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from . import loudness
from .manifest import Manifest, Segment
from .mix import BLOCK, DUCK_RAMP, AudioPart, Track, mix
from .progress import Tick, no_tick
from .settings import RenderSettings

MIX_VERSION = 3  # in the key: changing how the track is mixed or normalised re-encodes it
MIX_MEMORY = 192 * 1024 * 1024  # bytes of float32 samples kept between the two loudness passes


def track_layout(m: Manifest, settings: RenderSettings) -> str:
    """Stereo if any sound that is heard (narration, a clip's sound, music) is stereo, else mono."""
    if settings.audio_channels:
        return "stereo" if settings.audio_channels >= 2 else "mono"
    channels = [seg.audio_channels for seg in m.segments]
    channels += [seg.video.info.audio_channels for seg in m.segments if _clip_heard(seg)]
    if m.music is not None and m.music.volume > 0:
        channels.append(m.music.channels)
    return "stereo" if max(channels, default=1) >= 2 else "mono"


def _clip_heard(seg: Segment) -> bool:
    return seg.video is not None and seg.video.volume > 0 and seg.video.info.audio_channels > 0


def lesson_track(m: Manifest, settings: RenderSettings) -> Track:
    """The lesson's sounds, placed by the frame plan."""
    rate, fps, starts = settings.sample_rate, m.fps, m.frame_starts
    parts = []
    for seg in m.segments:
        a = round(starts[seg.index] * rate / fps)
        length = round(starts[seg.index + 1] * rate / fps) - a
        if seg.audio is not None:
            file_length = round(seg.audio_duration * rate) if seg.audio_duration else length
            voiced = max(1, min(length, file_length))
            parts.append(AudioPart(str(seg.audio), a, length, f"{seg.field}.audio", voiced=voiced))
        if _clip_heard(seg):
            clip = seg.video
            heard = min(length, round((clip.end - clip.start) * rate))
            parts.append(
                AudioPart(
                    str(clip.path),
                    a,
                    heard,
                    f"{seg.field}.video",
                    offset=clip.start,
                    gain=clip.volume,
                    from_picture=True,
                )
            )
    music = m.music if m.music is not None and m.music.volume > 0 else None
    total = round(m.total_frames * rate / fps)
    return Track(tuple(parts), total, rate, track_layout(m, settings), music, m.loudness)


def track_key(track: Track, file_hash: Callable[[Path], str]) -> dict:
    """Everything that shapes the mixed track (for its cache key): no paths, only contents."""
    music = track.music
    return {
        "mix": MIX_VERSION,
        "parts": [
            (file_hash(Path(p.path)), p.start, p.samples, p.offset, p.from_picture, p.gain, p.voiced)
            for p in track.parts
        ],
        "samples": track.samples,
        "rate": track.rate,
        "layout": track.layout,
        "music": None
        if music is None
        else (file_hash(music.path), music.volume, music.duck, music.fade, DUCK_RAMP),
        "loudness": track.loudness,
    }


def _exactly(blocks: Iterable[np.ndarray], total: int, channels: int) -> Iterator[np.ndarray]:
    """Exactly `total` samples of the blocks: cut after, padded with silence at the end."""
    left = total
    for block in blocks:
        if left <= 0:
            continue  # drain the source (a filter graph flushes at its end)
        block = block[:, :left]
        left -= block.shape[1]
        yield block
    if left > 0:
        yield np.zeros((channels, left), np.float32)


class _Kept:
    """The mix as it passes through pass 1, kept for pass 2."""

    def __init__(self, track: Track):
        self.samples = np.empty((track.channels, track.samples), np.float32)
        self.filled = 0

    def keep(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            self.samples[:, self.filled : self.filled + block.shape[1]] = block
            self.filled += block.shape[1]
            yield block

    def blocks(self) -> Iterator[np.ndarray]:
        for pos in range(0, self.filled, BLOCK):
            yield self.samples[:, pos : pos + BLOCK]


def _normalised(track: Track, tick: Tick) -> Iterator[np.ndarray]:
    """The mix brought to the track's loudness target (two passes, see loudness.py)."""
    fits = track.channels * track.samples * 4 <= MIX_MEMORY
    kept = _Kept(track) if fits else None
    first = mix(track, tick)
    measured = loudness.measure(kept.keep(first) if kept else first, track.layout, track.rate)
    again = kept.blocks if kept else (lambda: mix(track, tick))
    blocks = loudness.normalised(again, measured, track.loudness, track.layout, track.rate)
    return _exactly(blocks, track.samples, track.channels)


def encode_audio_track(track: Track, settings: RenderSettings, dest: Path, tick: Tick = no_tick) -> None:
    """Mix, normalise (when the track has a loudness target) and encode the track (AAC, .m4a) to `dest`."""
    blocks = mix(track, tick) if track.loudness is None else _normalised(track, tick)
    rate, time_base, layout = track.rate, Fraction(1, track.rate), track.layout
    with av.open(str(dest), "w", format="ipod") as out:
        stream = out.add_stream(settings.audio_codec, rate=rate, layout=track.layout)
        stream.bit_rate = settings.audio_bitrate
        written = 0
        for block in blocks:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, written, time_base
            written += block.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
