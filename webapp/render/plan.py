"""Plan a render's output: its pieces and audio track, keyed for the cache, each claimed or queued.

A still segment is one still picture (video pieces of one composed picture).

Any other segment is cut into frames pieces (pool.FramesTask), each keyed by its frame source
(frames.Shown, built by moving.Looks): a transition's frames [0, T) first (its key depends on
this segment's and the previous one's frames there, nothing else), then a clip's or moving
image's other frames in equal chunks of at most `keyint` frames. A segment that only has a
transition shows its composed picture after it, planned like any still segment. A still
segment with burned-in captions is frames pieces too: its composed picture with each cue laid
over the frames it lasts (burn.py), so a cue that comes or goes costs x264 a few changed
blocks, not a new keyframe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from pathlib import Path
from typing import NamedTuple

import av

from .audio import lesson_track, track_key
from .burn import CaptionPainter, caption_box, still_spans
from .cache import SegmentCache
from .compose import compose, picture_input_key, title_panel_box
from .frames import LayerFile, pictures
from .manifest import Manifest, Segment
from .moving import Looks
from .pool import AudioTask, FramesTask, VideoTask
from .progress import Monitor
from .schedule import Scheduler
from .settings import RenderSettings
from .yuv import to_picture

CACHE_FORMAT = 1


def _sha256_file(path: Path, monitor: Monitor) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            monitor.poll()
    return h.hexdigest()


def _key(**parts) -> str:
    parts["format"] = CACHE_FORMAT
    parts["libs"] = [av.__version__, sorted(av.library_versions.items())]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def chunk_lengths(frames: int, keyint: int) -> list[int]:
    """Split a segment into the fewest closed GOPs of at most `keyint` frames, equal in length."""
    count = max(1, math.ceil(frames / max(1, keyint)))
    base, extra = divmod(frames, count)
    return [base + 1] * extra + [base] * (count - extra)


def _chunks(first: int, end: int, keyint: int) -> list[tuple[int, int]]:
    """Frames [first, end) as (first frame, count) chunks of `chunk_lengths`; none if empty."""
    if end <= first:
        return []
    out = []
    for n in chunk_lengths(end - first, keyint):
        out.append((first, n))
        first += n
    return out


class PlannedPiece(NamedTuple):
    """One use of a video piece in the output."""

    segment: int  # index of the segment it shows
    key: str  # the piece's cache key
    start: int  # first frame in the output
    frames: int


class Plan:
    """What one output is made of: its video pieces in order and its audio track.

    Each is keyed by everything that shapes it, then claimed from the cache (pinned into the
    render's private folder and marked ready) or queued for encoding.
    """

    def __init__(
        self,
        manifest: Manifest,
        settings: RenderSettings,
        cache: SegmentCache,
        private: Path,
        monitor: Monitor,
        work: Scheduler,
    ):
        self.m, self.s, self.cache, self.monitor, self.work = manifest, settings, cache, monitor, work
        self.private = private  # this render's own folder inside the cache
        self.seq = 0
        self.file_hashes: dict[Path, str] = {}
        self.pixels = manifest.width * manifest.height / (1920 * 1080)
        self.pieces: list[PlannedPiece] = []  # every piece of the output, in order
        self.encoded_keys: set[str] = set()
        self.audio_key = ""  # the audio track's cache key (set when planned)
        self.audio_cached = False
        self._first_picture: bytes | None = None  # the first segment's raw RGB, if it was composed
        self.captions = CaptionPainter(manifest)  # burned-in captions, each text drawn once
        self.looks = Looks(manifest, cache, private, self._file_hash, monitor.poll)
        self._layers: dict[int, list[LayerFile]] = {}  # burned-in cues of moving segments

    def audio_track(self) -> None:
        """Claim the lesson's audio track from the cache, or queue it for encoding."""
        self.audio_key, task = self._plan_audio()
        self.audio_cached = task is None
        if task:
            self.work.queue(task)

    def segment(self, seg: Segment, start: int, frames: int) -> None:
        """Record the segment's pieces: claim the cached ones, queue the others for encoding."""
        t = self.looks.transition_frames(seg.index)
        for first, n in _chunks(0, t, self.s.keyint):
            self._frames_piece(seg, start, first, n)
        if seg.video is not None or seg.motion is not None or self._caption_layers(seg, start):
            for first, n in _chunks(t, frames, self.s.keyint):
                self._frames_piece(seg, start, first, n)
            return
        if frames == t:
            return  # the transition is the whole segment
        # A still picture (after its transition, if it has one).
        picture = _Composed(self.m, seg)
        self._still(seg, start + t, frames - t, picture, picture_input_key(self.m, seg, self._file_hash))
        if seg.index == 0:
            self._first_picture = picture.raw_if_composed()

    @property
    def first_picture(self) -> bytes | None:
        """The first segment's first frame as raw RGB, or None if a still picture was not composed."""
        if self._first_picture is None and not self.m.segments[0].still:
            shown = self.looks.shown(0, 0, 1)
            self.looks.ensure_files(shown)
            frames = pictures(shown, self.m.width, self.m.height, self.m.fps)
            with contextlib.closing(frames):
                self._first_picture = to_picture(next(frames)).tobytes()
        return self._first_picture

    def _frames_piece(self, seg: Segment, start: int, first: int, frames: int) -> None:
        """Record the piece showing frames [first, first + frames) of the segment shown from `start`."""
        overlays = tuple(
            o for o in self._caption_layers(seg, start) if o.first < first + frames and o.end > first
        )
        shown = self.looks.shown(seg.index, first, frames, overlays)
        m = self.m
        key = _key(
            kind="frames", shown=shown.key(), fps=m.fps, size=[m.width, m.height], enc=self.s.video_key()
        )
        self.pieces.append(PlannedPiece(seg.index, key, start + first, frames))
        if not self.work.count_frames(key, frames) or self._claim(key, FramesTask.suffix):
            return  # planned already, or found in the cache
        self.looks.ensure_files(shown)
        self.encoded_keys.add(key)
        task = FramesTask(
            seq=self._next_seq(),
            key=key,
            shown=shown,
            width=m.width,
            height=m.height,
            fps=m.fps,
            frames=frames,
            settings=self.s,
            private_dir=str(self.private),
            cache_root=str(self.cache.root),
            weight=shown.cost * self.pixels,
        )
        self.work.queue(task)

    def _caption_layers(self, seg: Segment, start: int) -> list[LayerFile]:
        """The segment's burned-in cues as layers over the frames each lasts (segment frame
        numbers, burn.still_spans); none without burnIn (or when no cue lasts half a frame)."""
        if not (self.m.caption_settings.burn_in and seg.captions):
            return []
        found = self._layers.get(seg.index)
        if found is None:
            panel = title_panel_box(self.m, seg)
            found = self._layers[seg.index] = []
            n = self.looks.frames[seg.index]
            for span in still_spans(self.m, seg, start, n):
                if span.caption is not None:
                    drawn = self.captions.draw(span.caption)
                    x0, y0, _, _ = caption_box(self.m, drawn.size, panel)
                    first = span.start - start
                    found.append(LayerFile.write(self.private, drawn, (x0, y0), first, first + span.frames))
        return found

    def _still(
        self, seg: Segment, start: int, frames: int, picture: _Composed, input_key: str | None
    ) -> None:
        """Record the pieces of the still picture shown at frames [start, start + frames): claim
        the cached ones, queue the others for encoding."""
        lengths = chunk_lengths(frames, self.s.keyint)
        raw, picture_hash = self._picture(picture, input_key, lengths)
        picture_file = None
        for n in lengths:
            key = self._video_key(picture_hash, n)
            self.pieces.append(PlannedPiece(seg.index, key, start, n))
            start += n
            if not self.work.count_frames(key, n) or self._claim(key, VideoTask.suffix):
                continue  # planned already, or found in the cache
            if raw is None:  # pruned meanwhile by another worker: compose after all
                raw, picture_hash = self._compose(picture, input_key)
            if picture_file is None:
                picture_file = self.private / f"{picture_hash}.rgb"
                if not picture_file.exists():  # an encoder may be reading it for another segment
                    picture_file.write_bytes(raw)
            self.encoded_keys.add(key)
            self.work.queue(self._video_task(key, picture_file, n))

    def segments_encoded(self) -> set[int]:
        """Segments that first use a piece this render encoded (a shared piece counts once)."""
        segments: set[int] = set()
        claimed: set[str] = set()
        for p in self.pieces:
            if p.key in self.encoded_keys and p.key not in claimed:
                segments.add(p.segment)
                claimed.add(p.key)
        return segments

    def _plan_audio(self) -> tuple[str, AudioTask | None]:
        track = lesson_track(self.m, self.s)
        key = _key(kind="audio", track=track_key(track, self._file_hash), enc=self.s.audio_key())
        if self._claim(key, AudioTask.suffix):
            return key, None
        seconds = self.m.total_frames / self.m.fps
        # Decoding and encoding cost more in stereo; measuring the loudness adds a pass, music a decoder.
        weight = seconds * (2.0 if track.layout == "stereo" else 1.1)
        weight *= (1.0 if track.loudness is None else 1.3) + (0.3 if track.music else 0.0)
        task = AudioTask(
            seq=self._next_seq(),
            key=key,
            track=track,
            settings=self.s,
            private_dir=str(self.private),
            cache_root=str(self.cache.root),
            weight=weight,
        )
        return key, task

    def _file_hash(self, path: Path) -> str:
        digest = self.file_hashes.get(path)
        if digest is None:
            digest = self.file_hashes[path] = _sha256_file(path, self.monitor)
        return digest

    def _video_key(self, picture_hash: str, frames: int) -> str:
        m = self.m
        return _key(
            kind="video",
            picture=picture_hash,
            frames=frames,
            fps=m.fps,
            size=[m.width, m.height],
            enc=self.s.video_key(),
        )

    def _compose(self, picture: _Composed, input_key: str | None) -> tuple[bytes, str]:
        """Compose the picture: (raw RGB bytes, their hash); remember the hash."""
        raw = picture.raw()
        picture_hash = hashlib.sha256(raw).hexdigest()
        if input_key:
            with contextlib.suppress(OSError):
                self.cache.write_memo(input_key, picture_hash)
        self.monitor.poll()
        return raw, picture_hash

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _picture(
        self, picture: _Composed, input_key: str | None, lengths: list[int]
    ) -> tuple[bytes | None, str]:
        """(raw RGB, hash) of the picture; raw is None when the memo names it and every piece is cached."""
        picture_hash = self.cache.read_memo(input_key) if input_key else None
        if picture_hash is not None and all(
            self.cache.claim(self._video_key(picture_hash, n), VideoTask.suffix, self.private)
            for n in set(lengths)
        ):
            return None, picture_hash
        return self._compose(picture, input_key)

    def _claim(self, key: str, suffix: str) -> bool:
        """Pin cache entry `key` into the private folder and mark it ready; False if not cached."""
        pinned = self.cache.claim(key, suffix, self.private)
        if pinned:
            self.work.ready[key] = pinned
        return bool(pinned)

    def _video_task(self, key: str, picture_file: Path, frames: int) -> VideoTask:
        m = self.m
        return VideoTask(
            seq=self._next_seq(),
            key=key,
            picture=str(picture_file),
            width=m.width,
            height=m.height,
            fps=m.fps,
            frames=frames,
            settings=self.s,
            private_dir=str(self.private),
            cache_root=str(self.cache.root),
            weight=frames * self.pixels,
        )


class _Composed:
    """A still segment's picture, composed at most once."""

    def __init__(self, manifest: Manifest, seg: Segment):
        self.m, self.seg = manifest, seg
        self._raw: bytes | None = None

    def raw(self) -> bytes:
        """The composed picture as raw RGB bytes."""
        if self._raw is None:
            self._raw = compose(self.m, self.seg).tobytes()
        return self._raw

    def raw_if_composed(self) -> bytes | None:
        return self._raw
