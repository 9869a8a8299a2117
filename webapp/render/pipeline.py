"""render_lesson: lesson folder to a verified MP4, with progress, cancel and the segment cache.

Steps:
1. Validate lesson.json (ManifestError names the field at fault; at most settings.max_duration).
2. Plan frames: segment k covers frames [round(start_k*fps), round(end_k*fps)); its audio is
   placed at exactly the sample its first frame is shown, so picture and sound never drift.
3. Compose each segment's picture once; cut the segment into closed GOPs of at most
   `keyint` frames (equal lengths, so long segments share one encoded piece); key each piece
   by a hash of the picture, frame count, fps, size, encoder settings and library versions.
   Pieces (and the whole audio track) found in the cache are reused, the rest are encoded,
   in parallel processes when there is enough work.
4. Join pieces and audio by stream copy into `.NAME.RANDOM.part` beside the output, verify it
   (streams, frame count, durations, decodes, faststart), then rename it into place.
A failure, a cancel or a kill never leaves a file at the output path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av

from .cache import SegmentCache
from .compose import compose, picture_input_key
from .encode import AudioPart, OutputFacts, PieceUse, mux, verify
from .errors import Cancelled, ManifestError, RenderError, TransientRenderError, transient_from_oserror
from .fonts import require_raqm
from .manifest import Manifest, Segment, load_manifest
from .pool import AudioTask, Pool, VideoTask, run_task
from .settings import RenderSettings, default_cache_dir

CACHE_FORMAT = 1
PROGRESS_INTERVAL = 0.5
CANCEL_INTERVAL = 0.25

ProgressFn = Callable[[int, int], None]
CancelCheck = Callable[[], bool] | threading.Event


@dataclass(frozen=True)
class RenderResult:
    output_path: Path
    duration: float  # seconds, measured from the output file
    size_bytes: int
    frames: int
    segments_encoded: int  # segments with at least one piece encoded by this render
    segments_cached: int  # segments whose pieces all came from the cache
    pieces_encoded: int
    pieces_cached: int
    audio_cached: bool
    elapsed: float
    warnings: tuple[str, ...] = ()


def partial_outputs(output_path: Path | str) -> list[Path]:
    """Temporary files a render of `output_path` may have left beside it (e.g. after SIGKILL)."""
    output_path = Path(output_path)
    try:
        return sorted(output_path.parent.glob(f".{_glob_escape(output_path.name)}.*.part"))
    except OSError:
        return []


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


class Monitor:
    """Rate-limited progress reports and cancel checks, in the calling process."""

    def __init__(self, on_progress: ProgressFn | None, should_cancel: CancelCheck | None, total: int):
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.total = total
        self.done = 0
        self.last_report = -math.inf
        self.last_check = -math.inf
        self.touch: Callable[[], None] | None = None
        self.last_touch = time.monotonic()

    def cancelled(self) -> bool:
        check = self.should_cancel
        if check is None:
            return False
        if hasattr(check, "is_set"):
            return bool(check.is_set())
        return bool(check())

    def poll(self, done: int | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if done is not None:
            self.done = max(self.done, min(done, max(self.total - 1, 0)))
        if force or now - self.last_check >= CANCEL_INTERVAL:
            self.last_check = now
            if self.cancelled():
                raise Cancelled()
        if self.on_progress and (force or now - self.last_report >= PROGRESS_INTERVAL):
            self.last_report = now
            self.on_progress(self.done, self.total)
        if self.touch and now - self.last_touch > 60:
            self.last_touch = now
            self.touch()

    def finish(self) -> None:
        self.done = self.total
        if self.on_progress:
            self.on_progress(self.total, self.total)


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


def render_lesson(
    lesson_dir: Path | str,
    output_path: Path | str,
    *,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelCheck | None = None,
    cache_dir: Path | str | None = None,
    settings: RenderSettings | None = None,
) -> RenderResult:
    """Render LESSON_DIR/lesson.json to OUTPUT_PATH (MP4). See the module docstring.

    Raises ManifestError (bad lesson: never retry), TransientRenderError (I/O: may retry),
    RenderEnvironmentError (this machine cannot render), Cancelled, or RenderError.
    """
    settings = settings or RenderSettings()
    manifest = load_manifest(lesson_dir, max_duration=settings.max_duration)
    if any(s.title or s.text for s in manifest.segments):
        require_raqm()
    output_path = Path(output_path).absolute()
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # names no folder: all of them are the server's
        raise transient_from_oserror(exc, "cannot create the output folder") from exc
    monitor = Monitor(on_progress, should_cancel, manifest.total_frames)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    throwaway = None
    try:
        cache = SegmentCache(root, settings.cache_max_bytes)
        private = cache.new_private_dir()
    except OSError:
        # An unusable shared cache must not stop renders: work in a private one instead.
        try:
            throwaway = Path(tempfile.mkdtemp(prefix="lesson-render-cache-"))
            cache = SegmentCache(throwaway, settings.cache_max_bytes)
            private = cache.new_private_dir()
        except OSError as exc:
            raise transient_from_oserror(exc, "no room for temporary files") from exc
    try:
        return _Render(manifest, output_path, settings, cache, private, monitor).run()
    except RenderError:
        raise
    except OSError as exc:
        # A file is named only as users know it: in the lesson folder, the output, or the cache.
        roots = [
            (manifest.lesson_dir, "lesson folder", True),
            (cache.root, "render cache", False),
            (output_path.parent, output_path.name, False),
        ]
        raise transient_from_oserror(exc, "render failed", roots) from exc
    # Anything else (a bug, RQ's JobTimeoutException, KeyboardInterrupt) propagates unchanged,
    # after the same clean-up: no output, no temporary file, no encoder process left.
    finally:
        if throwaway is not None:
            shutil.rmtree(throwaway, ignore_errors=True)


class _PlannedPiece(NamedTuple):
    """One use of a video piece in the output."""

    segment: int  # index of the segment it shows
    key: str  # the piece's cache key
    start: int  # first frame in the output
    frames: int


class _Render:
    """One render of a manifest to an output path; see run()."""

    def __init__(
        self,
        manifest: Manifest,
        output: Path,
        settings: RenderSettings,
        cache: SegmentCache,
        private: Path,
        monitor: Monitor,
    ):
        self.m, self.output, self.s, self.cache, self.monitor = manifest, output, settings, cache, monitor
        self.private = private  # this render's own folder inside the cache (deleted at the end)
        self.started = time.monotonic()
        self.pool: Pool | None = None
        self.pending: list[VideoTask | AudioTask] = []
        self.ready: dict[str, Path] = {}  # key -> pinned path of finished pieces/tracks
        self.frames_of_key: dict[str, int] = {}  # key -> frames it covers in this output
        self.encoded_keys: set[str] = set()
        self.seq = 0
        self.file_hashes: dict[Path, str] = {}
        self.pixels = manifest.width * manifest.height / (1920 * 1080)
        # Renamed to the output only once verified: a failed render never leaves a file there.
        self.part = output.parent / f".{output.name}.{secrets.token_hex(6)}.part"
        self.pieces: list[_PlannedPiece] = []  # every piece of the output, in order
        self.audio_key = ""  # the audio track's cache key (set when planned)
        self.audio_cached = False
        self.facts: OutputFacts | None = None  # what verify measured (None if settings.verify is off)

    # ---- progress -------------------------------------------------------------------------
    def _done_frames(self) -> int:
        done = sum(self.frames_of_key[k] for k in self.ready if k in self.frames_of_key)
        if self.pool:
            for task, frames in self.pool.in_flight():
                if isinstance(task, VideoTask) and task.frames:
                    done += self.frames_of_key.get(task.key, 0) * frames // task.frames
        return done

    def _poll(self, timeout: float = 0.0) -> None:
        if self.pool:
            for task, path in self.pool.poll(timeout):
                self.ready[task.key] = path
        self.monitor.poll(self._done_frames())

    # ---- planning -------------------------------------------------------------------------
    def _audio_layout(self) -> str:
        if self.s.audio_channels:
            return "stereo" if self.s.audio_channels >= 2 else "mono"
        return "stereo" if any(seg.audio_channels >= 2 for seg in self.m.segments) else "mono"

    def _plan_audio(self) -> tuple[str, AudioTask | None]:
        rate, fps = self.s.sample_rate, self.m.fps
        starts = self.m.frame_starts
        parts, hashes = [], []
        for seg in self.m.segments:
            a = round(starts[seg.index] * rate / fps)
            b = round(starts[seg.index + 1] * rate / fps)
            path = str(seg.audio) if seg.audio else None
            parts.append(AudioPart(path, a, b - a, f"{seg.field}.audio"))
            hashes.append(self._file_hash(seg.audio) if seg.audio else None)
        layout = self._audio_layout()
        key = _key(
            kind="audio",
            inputs=[(h, p.start, p.samples) for h, p in zip(hashes, parts, strict=True)],
            rate=rate,
            layout=layout,
            enc=self.s.audio_key(),
        )
        if self._claim(key, AudioTask.suffix):
            return key, None
        seconds = self.m.total_frames / fps
        task = AudioTask(
            seq=self._next_seq(),
            key=key,
            parts=tuple(parts),
            rate=rate,
            layout=layout,
            settings=self.s,
            private_dir=str(self.private),
            cache_root=str(self.cache.root),
            weight=seconds * (2.0 if layout == "stereo" else 1.1),
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

    def _compose(self, seg, input_key: str | None) -> tuple[bytes, str]:
        """Compose the segment's picture: (raw RGB bytes, their hash); remember the hash."""
        raw = compose(self.m, seg).tobytes()
        picture_hash = hashlib.sha256(raw).hexdigest()
        if input_key:
            with contextlib.suppress(OSError):
                self.cache.write_memo(input_key, picture_hash)
        self.monitor.poll()
        return raw, picture_hash

    def _drop_cache_entries(self, keys: list[str]) -> None:
        for key in set(keys):
            for suffix in (VideoTask.suffix, AudioTask.suffix):
                with contextlib.suppress(OSError):
                    self.cache.path_for(key, suffix).unlink()

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _work(self) -> float:
        return sum(t.weight for t in self.pending)

    def _start_pool_if_worth_it(self, final: bool) -> None:
        """Start encoder processes once the pending work is worth their start-up cost."""
        if self.pool is not None or self.s.processes <= 1 or len(self.pending) < 2:
            return
        if self._work() < self.s.parallel_min_work:
            return
        size = min(self.s.processes, len(self.pending)) if final else self.s.processes
        try:
            self.pool = Pool(size, self.s.threads or 1)
        except OSError:
            self.pool = None  # cannot start processes here: encode in this process
            return
        for task in self.pending:
            self.pool.submit(task)
        self.pending = []

    def _queue(self, task: VideoTask | AudioTask) -> None:
        if self.pool:
            self.pool.submit(task)
        else:
            self.pending.append(task)

    # ---- the render -----------------------------------------------------------------------
    def run(self) -> RenderResult:
        """Plan, encode, join, verify and publish; whatever happens, clean up (see _clean_up)."""
        self.monitor.touch = lambda: os.utime(self.private)
        ok = False
        try:
            self.monitor.poll(0, force=True)
            self._plan_audio_track()
            self._plan_segments()
            self._start_pool_if_worth_it(final=True)
            self._encode_remaining()
            self._join_and_verify()
            self._publish()
            ok = True
        except av.error.FFmpegError as exc:
            if isinstance(exc, OSError):
                raise TransientRenderError(f"render I/O error: {exc.strerror or exc}") from exc
            raise RenderError(f"render failed: {exc.strerror or exc}") from exc
        finally:
            self._clean_up(graceful=ok)
        self.monitor.finish()
        return self._result()

    def _plan_audio_track(self) -> None:
        """Claim the lesson's audio track from the cache, or queue it for encoding."""
        self.audio_key, task = self._plan_audio()
        self.audio_cached = task is None
        if task:
            self._queue(task)

    def _plan_segments(self) -> None:
        """Plan every segment's pieces; start encoder processes as soon as the work is worth it."""
        for seg, (start, frames) in zip(self.m.segments, self.m.segment_frames(), strict=True):
            self._poll()
            self._plan_segment(seg, start, frames)
            self._start_pool_if_worth_it(final=False)

    def _plan_segment(self, seg: Segment, start: int, frames: int) -> None:
        """Record the segment's pieces: claim the cached ones, queue the others for encoding."""
        lengths = chunk_lengths(frames, self.s.keyint)
        input_key = picture_input_key(self.m, seg, self._file_hash)
        raw, picture_hash = self._picture(seg, input_key, lengths)
        picture_file = None
        for n in lengths:
            key = self._video_key(picture_hash, n)
            self.pieces.append(_PlannedPiece(seg.index, key, start, n))
            start += n
            if not self._count_frames(key, n) or self._claim(key, VideoTask.suffix):
                continue  # planned already, or found in the cache
            if raw is None:  # pruned meanwhile by another worker: compose after all
                raw, picture_hash = self._compose(seg, input_key)
            if picture_file is None:
                picture_file = self.private / f"{picture_hash}.rgb"
                picture_file.write_bytes(raw)
            self.encoded_keys.add(key)
            self._queue(self._video_task(key, picture_file, n))

    def _picture(self, seg: Segment, input_key: str | None, lengths: list[int]) -> tuple[bytes | None, str]:
        """(raw RGB, hash) of the picture; raw is None when the memo names it and every piece is cached."""
        picture_hash = self.cache.read_memo(input_key) if input_key else None
        if picture_hash is not None and all(
            self.cache.claim(self._video_key(picture_hash, n), VideoTask.suffix, self.private)
            for n in set(lengths)
        ):
            return None, picture_hash
        return self._compose(seg, input_key)

    def _count_frames(self, key: str, frames: int) -> bool:
        """Add `frames` output frames to piece `key`; True on its first use in this output."""
        first_use = key not in self.frames_of_key
        self.frames_of_key[key] = self.frames_of_key.get(key, 0) + frames
        return first_use

    def _claim(self, key: str, suffix: str) -> bool:
        """Pin cache entry `key` into the private folder and mark it ready; False if not cached."""
        pinned = self.cache.claim(key, suffix, self.private)
        if pinned:
            self.ready[key] = pinned
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

    def _encode_remaining(self) -> None:
        if self.pool:
            while self.pool.busy:
                self._poll(timeout=0.1)
            return
        threads = self.s.threads or 0
        for task in sorted(self.pending, key=lambda t: -t.weight):
            base = self._done_frames()
            share = self.frames_of_key.get(task.key, 0)

            def tick(n, task=task, base=base, share=share):
                if isinstance(task, VideoTask) and task.frames:
                    self.monitor.poll(base + share * n // task.frames)
                else:
                    self.monitor.poll()

            self.ready[task.key] = run_task(task, threads, tick)
            self.monitor.poll(self._done_frames())
        self.pending = []

    def _join_and_verify(self) -> None:
        """Join pieces and audio into the .part file and check it; a bad result drops its cache entries."""
        pieces = [PieceUse(self.ready[p.key], p.start, p.frames) for p in self.pieces]
        try:
            self._join(pieces)
            if self.s.verify:
                self.facts = self._verify()
        except (RenderError, av.error.FFmpegError) as exc:
            if isinstance(exc, Cancelled | OSError):  # OSError: writing the output (I/O)
                raise
            # A damaged or incompatible cache entry must not fail every retry: drop what
            # this render used, so the next attempt encodes it afresh.
            self._drop_cache_entries([p.key for p in self.pieces] + [self.audio_key])
            reason = exc.message if isinstance(exc, RenderError) else (exc.strerror or str(exc))
            raise TransientRenderError(
                f"the joined video failed its check ({reason}); its cached pieces were dropped, "
                "a retry encodes them again"
            ) from exc

    def _join(self, pieces: list[PieceUse]) -> None:
        m = self.m
        mux(
            self.part,
            pieces,
            self.ready[self.audio_key],
            m.fps,
            title=m.title,
            tick=lambda _n: self.monitor.poll(),
        )

    def _verify(self) -> OutputFacts:
        m = self.m
        return verify(
            self.part,
            frames=m.total_frames,
            fps=m.fps,
            width=m.width,
            height=m.height,
            keyframes={p.start for p in self.pieces if p.key in self.encoded_keys},
            tick=lambda _n: self.monitor.poll(),
        )

    def _publish(self) -> None:
        """Move the verified .part file to the output path, flushed to disk."""
        self.monitor.poll(force=True)  # a cancel that came while joining still wins: nothing is there yet
        _fsync(self.part)
        os.replace(self.part, self.output)
        _fsync(self.output.parent, best_effort=True)

    def _clean_up(self, graceful: bool) -> None:
        """Stop encoder processes and remove the .part file and the private folder; prune the cache."""
        if self.pool:
            self.pool.close(graceful=graceful)
        with contextlib.suppress(OSError):
            self.part.unlink()
        shutil.rmtree(self.private, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.cache.prune()

    def _result(self) -> RenderResult:
        m = self.m
        encoded_segments = self._segments_encoded()
        video_keys = {p.key for p in self.pieces}
        return RenderResult(
            output_path=self.output,
            duration=self.facts.duration if self.facts else m.total_frames / m.fps,
            size_bytes=self.output.stat().st_size,
            frames=m.total_frames,
            segments_encoded=len(encoded_segments),
            segments_cached=len(m.segments) - len(encoded_segments),
            pieces_encoded=len(self.encoded_keys),
            pieces_cached=len(video_keys - self.encoded_keys),
            audio_cached=self.audio_cached,
            elapsed=time.monotonic() - self.started,
            warnings=m.warnings,
        )

    def _segments_encoded(self) -> set[int]:
        """Segments that first use a piece this render encoded (a shared piece counts once)."""
        segments: set[int] = set()
        claimed: set[str] = set()
        for p in self.pieces:
            if p.key in self.encoded_keys and p.key not in claimed:
                segments.add(p.segment)
                claimed.add(p.key)
        return segments


def _fsync(path: Path, *, best_effort: bool = False) -> None:
    """Flush a file or folder to disk; best_effort ignores OSError."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        # A folder's fsync is best effort: some file systems refuse it, and the rename is done.
        if not best_effort:
            raise


__all__ = ["ManifestError", "RenderResult", "partial_outputs", "render_lesson"]
