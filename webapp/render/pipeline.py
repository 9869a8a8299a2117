"""render_lesson: lesson folder to a verified MP4, with progress, cancel and the segment cache.

Steps:
1. Validate lesson.json (ManifestError names the field at fault; at most settings.max_duration).
2. Plan frames: segment k covers frames [round(start_k*fps), round(end_k*fps)); its audio is
   placed at exactly the sample its first frame is shown, so picture and sound never drift.
3. Compose each segment's picture once; cut the segment into closed GOPs of at most
   `keyint` frames (equal lengths, so long segments share one encoded piece); key each piece
   by a hash of the picture, frame count, fps, size, encoder settings and library versions.
   A segment that moves (clip, motion, or a transition into it), or that has burned-in
   captions (each cue a layer over the frames it lasts: burn.py), is cut into frames pieces,
   its transition's frames first, each keyed by its frame source (frames.py: file hashes,
   views, clip times, the previous segment's frames under a transition, the frame range);
   their pictures are made in the encoder processes and encoded with the same x264
   settings, so every piece joins by stream copy.
   Pieces (and the whole audio track) found in the cache are reused, the rest are encoded,
   in parallel processes when there is enough work.
4. Join pieces and audio by stream copy into `.NAME.RANDOM.part` beside the output, verify it
   (streams, frame count, durations, decodes, faststart).
5. Write the sidecars (poster NAME.jpg, NAME.chapters.vtt, captions NAME.vtt; sidecars.py) to
   .part files beside it, then rename the sidecars and the video into place.
A failure, a cancel or a kill never leaves a file at the output path (nor a new sidecar).

Modules: plan.py (pieces, keys, the audio track), moving.py, frames.py, camera.py, clips.py
and yuv.py (segments that move), schedule.py (where encode tasks run), progress.py (reports
and cancel checks), encode.py (encoding, joining), verify.py (the check).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av

from .cache import SegmentCache
from .encode import PieceUse, mux
from .errors import Cancelled, ManifestError, RenderError, TransientRenderError, transient_from_oserror
from .fonts import require_raqm
from .manifest import Manifest, load_manifest
from .plan import Plan
from .plan import chunk_lengths as chunk_lengths  # importable from here, as before
from .pool import AudioTask, VideoTask
from .progress import PROGRESS_INTERVAL as PROGRESS_INTERVAL  # importable from here, as before
from .progress import CancelCheck, Monitor, ProgressFn
from .schedule import Scheduler
from .settings import RenderSettings, default_cache_dir
from .sidecars import Sidecars, sidecar_paths
from .verify import OutputFacts, verify


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
    poster: Path | None = None  # NAME.jpg beside the output
    chapters: Path | None = None  # NAME.chapters.vtt, when some segment has a title
    captions: Path | None = None  # NAME.vtt, when some segment has captions
    captions_language: str | None = None  # the captions' language tag, when there are captions


def partial_outputs(output_path: Path | str) -> list[Path]:
    """Temporary files a render of `output_path` may have left beside it (e.g. after SIGKILL)."""
    output_path = Path(output_path)
    found: set[Path] = set()
    for path in [output_path, *sidecar_paths(output_path).values()]:
        with contextlib.suppress(OSError):
            found.update(output_path.parent.glob(f".{_glob_escape(path.name)}.*.part"))
    return sorted(found)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


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
    burn_in = manifest.caption_settings.burn_in
    if any(s.title or s.text or (burn_in and s.captions) for s in manifest.segments):
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
        self.work = Scheduler(settings, monitor)  # encode tasks and the entries ready for the output
        self.plan = Plan(manifest, settings, cache, private, monitor, self.work)
        # Renamed to the output only once verified: a failed render never leaves a file there.
        token = secrets.token_hex(6)
        self.part = output.parent / f".{output.name}.{token}.part"
        self.sidecars = Sidecars(output, token)  # written beside it, published with it
        self.facts: OutputFacts | None = None  # what verify measured (None if settings.verify is off)

    def run(self) -> RenderResult:
        """Plan, encode, join, verify and publish; whatever happens, clean up (see _clean_up)."""
        self.monitor.touch = lambda: os.utime(self.private)
        ok = False
        try:
            self.monitor.poll(0, force=True)
            self.plan.audio_track()
            self._plan_segments()
            self.work.start_pool_if_worth_it(final=True)
            self.work.encode_remaining()
            self._join_and_verify()
            self.sidecars.write(self.m, self.plan.first_picture, self.monitor.poll)
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

    def _plan_segments(self) -> None:
        """Plan every segment's pieces; start encoder processes as soon as the work is worth it."""
        for seg, (start, frames) in zip(self.m.segments, self.m.segment_frames(), strict=True):
            self.work.poll()
            self.plan.segment(seg, start, frames)
            self.work.start_pool_if_worth_it(final=False)

    def _drop_cache_entries(self, keys: list[str]) -> None:
        for key in set(keys):
            for suffix in (VideoTask.suffix, AudioTask.suffix):
                with contextlib.suppress(OSError):
                    self.cache.path_for(key, suffix).unlink()

    def _join_and_verify(self) -> None:
        """Join pieces and audio into the .part file and check it; a bad result drops its cache entries."""
        pieces = [PieceUse(self.work.ready[p.key], p.start, p.frames) for p in self.plan.pieces]
        try:
            self._join(pieces)
            if self.s.verify:
                self.facts = self._verify()
        except (RenderError, av.error.FFmpegError) as exc:
            if isinstance(exc, Cancelled | OSError):  # OSError: writing the output (I/O)
                raise
            # A damaged or incompatible cache entry must not fail every retry: drop what
            # this render used, so the next attempt encodes it afresh.
            self._drop_cache_entries([p.key for p in self.plan.pieces] + [self.plan.audio_key])
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
            self.work.ready[self.plan.audio_key],
            m.fps,
            title=m.title,
            tick=lambda _n: self.monitor.poll(),
            captions=[(c.start, c.end, c.text) for c in m.caption_cues()],
            language=m.caption_settings.language,
        )

    def _verify(self) -> OutputFacts:
        m = self.m
        return verify(
            self.part,
            frames=m.total_frames,
            fps=m.fps,
            width=m.width,
            height=m.height,
            keyframes={p.start for p in self.plan.pieces if p.key in self.plan.encoded_keys},
            tick=lambda _n: self.monitor.poll(),
        )

    def _publish(self) -> None:
        """Move the verified .part file to the output path, flushed to disk."""
        self.monitor.poll(force=True)  # a cancel that came while joining still wins: nothing is there yet
        _fsync(self.part)
        try:
            self.sidecars.publish()
            os.replace(self.part, self.output)
        except BaseException:
            self.sidecars.unpublish()  # no new sidecar beside an old (or missing) video
            raise
        self.sidecars.drop_stale()  # e.g. NAME.vtt of an earlier render, when captions were removed
        _fsync(self.output.parent, best_effort=True)

    def _clean_up(self, graceful: bool) -> None:
        """Stop encoder processes and remove the .part file and the private folder; prune the cache."""
        self.work.close(graceful)
        with contextlib.suppress(OSError):
            self.part.unlink()
        self.sidecars.remove_parts()
        shutil.rmtree(self.private, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.cache.prune()

    def _result(self) -> RenderResult:
        m = self.m
        encoded_segments = self.plan.segments_encoded()
        video_keys = {p.key for p in self.plan.pieces}
        return RenderResult(
            output_path=self.output,
            duration=self.facts.duration if self.facts else m.total_frames / m.fps,
            size_bytes=self.output.stat().st_size,
            frames=m.total_frames,
            segments_encoded=len(encoded_segments),
            segments_cached=len(m.segments) - len(encoded_segments),
            pieces_encoded=len(self.plan.encoded_keys),
            pieces_cached=len(video_keys - self.plan.encoded_keys),
            audio_cached=self.plan.audio_cached,
            elapsed=time.monotonic() - self.started,
            warnings=m.warnings,
            poster=self.sidecars.published.get("poster"),
            chapters=self.sidecars.published.get("chapters"),
            captions=self.sidecars.published.get("captions"),
            captions_language=(
                m.caption_settings.language if self.sidecars.published.get("captions") else None
            ),
        )


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
