"""Run one render's encode tasks: in this process, or in encoder processes once that is worth it."""

from __future__ import annotations

from pathlib import Path

from .pool import AudioTask, Pool, Task, run_task
from .progress import Monitor
from .settings import RenderSettings


class Scheduler:
    """One render's encode tasks, the entries ready for the output, and the frames done so far.

    Tasks wait in `pending` (to be encoded in this process at the end) until the pending work
    is worth starting encoder processes for; from then on each task goes to the pool at once.
    """

    def __init__(self, settings: RenderSettings, monitor: Monitor):
        self.s, self.monitor = settings, monitor
        self.pool: Pool | None = None
        self.pending: list[Task] = []
        self.ready: dict[str, Path] = {}  # key -> pinned path of finished pieces/tracks
        self.frames_of_key: dict[str, int] = {}  # key -> frames it covers in this output

    def count_frames(self, key: str, frames: int) -> bool:
        """Add `frames` output frames to piece `key`; True on its first use in this output."""
        first_use = key not in self.frames_of_key
        self.frames_of_key[key] = self.frames_of_key.get(key, 0) + frames
        return first_use

    def done_frames(self) -> int:
        done = sum(self.frames_of_key[k] for k in self.ready if k in self.frames_of_key)
        if self.pool:
            for task, frames in self.pool.in_flight():
                if not isinstance(task, AudioTask) and task.frames:
                    done += self.frames_of_key.get(task.key, 0) * frames // task.frames
        return done

    def poll(self, timeout: float = 0.0) -> None:
        if self.pool:
            for task, path in self.pool.poll(timeout):
                self.ready[task.key] = path
        self.monitor.poll(self.done_frames())

    def _work(self) -> float:
        return sum(t.weight for t in self.pending)

    def start_pool_if_worth_it(self, final: bool) -> None:
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

    def queue(self, task: Task) -> None:
        if self.pool:
            self.pool.submit(task)
        else:
            self.pending.append(task)

    def encode_remaining(self) -> None:
        if self.pool:
            while self.pool.busy:
                self.poll(timeout=0.1)
            self.pool.release()
            return
        threads = self.s.threads or 0
        for task in sorted(self.pending, key=lambda t: -t.weight):
            base = self.done_frames()
            share = self.frames_of_key.get(task.key, 0)

            def tick(n, task=task, base=base, share=share):
                if not isinstance(task, AudioTask) and task.frames:
                    self.monitor.poll(base + share * n // task.frames)
                else:
                    self.monitor.poll()

            self.ready[task.key] = run_task(task, threads, tick)
            self.monitor.poll(self.done_frames())
        self.pending = []

    def close(self, graceful: bool) -> None:
        """Stop the encoder processes, if any were started."""
        if self.pool:
            self.pool.close(graceful=graceful)
