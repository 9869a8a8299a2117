"""Encoder tasks and the small process pool that runs them in parallel.

Workers are fresh interpreters (`python -m webapp.render._worker`), not forks: the renderer
runs inside RQ's forked work horse, where forking again (threads, locks) is asking for
trouble, and multiprocessing's "spawn" would re-import the caller's __main__. Each worker
talks to the parent over its own socket pair (pickled messages).

A worker never outlives its parent for long: on Linux it asks the kernel for SIGKILL when
the parent dies (PR_SET_PDEATHSIG), and everywhere it checks its parent id while encoding.
Workers only write inside the render's private cache folder, never at the output path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from PIL import Image

from .audio import encode_audio_track
from .cache import SegmentCache
from .encode import encode_frames, encode_video_piece
from .errors import (
    Cancelled,
    ManifestError,
    RenderEnvironmentError,
    RenderError,
    TransientRenderError,
    redact_paths,
    transient_from_oserror,
)
from .frames import Shown, pictures
from .mix import Track
from .settings import RenderSettings
from .yuv import to_frame

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding `webapp/`


@dataclass(frozen=True)
class VideoTask:
    seq: int
    key: str
    picture: str  # raw RGB bytes of the composed picture (width x height x 3)
    width: int
    height: int
    fps: int
    frames: int
    settings: RenderSettings
    private_dir: str
    cache_root: str
    weight: float

    suffix = ".mp4"


@dataclass(frozen=True)
class FramesTask:
    """A span of a segment that is not one still picture (frames.Shown), generated and encoded
    in the encoder process as one closed-GOP piece, with the same settings as VideoTask's."""

    seq: int
    key: str
    shown: Shown
    width: int
    height: int
    fps: int
    frames: int
    settings: RenderSettings
    private_dir: str
    cache_root: str
    weight: float

    suffix = ".mp4"


@dataclass(frozen=True)
class AudioTask:
    seq: int
    key: str
    track: Track  # the sounds, their placement, the music bed and the loudness target
    settings: RenderSettings
    private_dir: str
    cache_root: str
    weight: float

    suffix = ".m4a"


Task = VideoTask | FramesTask | AudioTask


def run_task(task: Task, threads: int, tick) -> Path:
    """Encode one task into the private folder, publish it to the cache, return its path."""
    private = Path(task.private_dir)
    final = private / f"{task.key}{task.suffix}"
    partial = private / f".{task.key}.{secrets.token_hex(4)}{task.suffix}"
    try:
        if isinstance(task, VideoTask):
            raw = Path(task.picture).read_bytes()
            picture = Image.frombytes("RGB", (task.width, task.height), raw)
            encode_video_piece(picture, task.fps, task.frames, task.settings, partial, threads, tick)
        elif isinstance(task, FramesTask):
            _encode_frames_task(task, partial, threads, tick)
        else:
            encode_audio_track(task.track, task.settings, partial, tick)
        os.replace(partial, final)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    with contextlib.suppress(OSError):  # sharing is best effort; this render has its copy
        cache = SegmentCache(Path(task.cache_root), task.settings.cache_max_bytes)
        cache.publish(final, task.key, task.suffix)
    return final


def _encode_frames_task(task: FramesTask, dest: Path, threads: int, tick) -> None:
    size = (task.width, task.height)
    made = pictures(task.shown, task.width, task.height, task.fps, tick)
    try:
        encode_frames(_as_frames(made), size, task.fps, task.frames, task.settings, dest, threads, tick)
    finally:
        made.close()


def _as_frames(made):
    """Frames for the encoder; a picture given again (a still, a held clip frame) is converted once."""
    last, frame = None, None
    for picture in made:
        if picture is not last:
            last, frame = picture, to_frame(picture)
        yield frame


def describe_error(exc: BaseException, cache_root: str | None = None) -> tuple:
    """A picklable description of an exception, rebuilt by `rebuild_error` in the parent.

    Workers only write inside the render cache, so a file an OSError names is called that.
    """
    if isinstance(exc, ManifestError):
        return (ManifestError.kind, exc.field, exc.reason)
    if isinstance(exc, RenderError):
        return (exc.kind, exc.message)
    if isinstance(exc, OSError):
        roots = [(cache_root, "render cache", False)] if cache_root else []
        return (TransientRenderError.kind, transient_from_oserror(exc, "encoder I/O error", roots).message)
    return (RenderError.kind, f"encoder failed: {exc.__class__.__name__}: {redact_paths(str(exc))}")


_BY_KIND = {cls.kind: cls for cls in (TransientRenderError, RenderEnvironmentError, Cancelled)}


def rebuild_error(desc: tuple) -> RenderError:
    """The exception `describe_error` described, of the same class."""
    kind, *args = desc
    if kind == ManifestError.kind:
        return ManifestError(*args)
    return _BY_KIND.get(kind, RenderError)(*args)


# --------------------------------------------------------------------------------------------
# Parent side


class WorkerDied(TransientRenderError):
    pass


class _Worker:
    def __init__(self, wid: int, threads: int):
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
        fd = child_sock.fileno()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "webapp.render._worker", str(fd), str(os.getpid()), str(threads)],
                pass_fds=[fd],
                stdin=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.wid = wid
        self.task: Task | None = None
        self.frames = 0
        self.released = False

    def send(self, task) -> None:
        self.task, self.frames = task, 0
        self.conn.send(task)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def release(self) -> None:
        """Tell the worker there is no more work: it exits on its own (close() then reaps it)."""
        if not self.released:
            self.released = True
            with contextlib.suppress(OSError):
                self.conn.send(None)

    def close(self, graceful: bool) -> None:
        if graceful:
            self.release()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.conn.close()


class Pool:
    """Up to `size` worker processes; the parent hands the heaviest pending task to an idle one."""

    def __init__(self, size: int, threads: int):
        self.workers: list[_Worker] = []
        self.pending: list[Task] = []
        try:
            for i in range(size):
                self.workers.append(_Worker(i, threads))
        except BaseException:
            self.close(graceful=False)
            raise

    def submit(self, task) -> None:
        self.pending.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        for w in self.workers:
            if w.task is None and self.pending:
                best = max(range(len(self.pending)), key=lambda i: self.pending[i].weight)
                w.send(self.pending.pop(best))

    @property
    def busy(self) -> bool:
        return bool(self.pending) or any(w.task is not None for w in self.workers)

    def in_flight(self) -> list[tuple[Task, int]]:
        return [(w.task, w.frames) for w in self.workers if w.task is not None]

    def poll(self, timeout: float) -> list[tuple[Task, Path]]:
        """Wait up to `timeout` for messages; return finished (task, path); raise on failure."""
        done = []
        working = [w for w in self.workers if not w.released]
        ready = wait([w.conn for w in working], timeout=timeout) if working else []
        for w in working:
            if w.conn not in ready:
                continue
            while True:
                try:
                    if not w.conn.poll():
                        break
                    msg = w.conn.recv()
                except (EOFError, OSError) as exc:
                    code = w.proc.poll()
                    raise WorkerDied(f"an encoder process died (exit code {code})") from exc
                kind, seq, payload = msg
                if w.task is None or seq != w.task.seq:
                    continue
                if kind == "progress":
                    w.frames = payload
                elif kind == "done":
                    done.append((w.task, Path(payload)))
                    w.task = None
                elif kind == "error":
                    raise rebuild_error(payload)
        self._dispatch()
        return done

    def release(self) -> None:
        """No more tasks will come: let every worker exit now, while the parent joins and
        verifies the output (close() reaps them; they would otherwise take their time then)."""
        assert not self.busy
        for w in self.workers:
            w.release()

    def close(self, graceful: bool) -> None:
        for w in self.workers:
            if not graceful:
                w.kill()
        for w in self.workers:
            w.close(graceful)


# --------------------------------------------------------------------------------------------
# Worker side


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(3)


def worker_main(fd: int, parent_pid: int, threads: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us if needed
    conn = Connection(fd)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        last = 0.0

        def tick(n: int, task=task) -> None:
            nonlocal last
            if os.getppid() != parent_pid:
                os._exit(3)
            now = time.monotonic()
            if now - last >= 0.2 and not isinstance(task, AudioTask):
                last = now
                conn.send(("progress", task.seq, n))

        try:
            path = run_task(task, threads, tick)
        except BaseException as exc:
            conn.send(("error", task.seq, describe_error(exc, task.cache_root)))
            continue
        conn.send(("done", task.seq, str(path)))
