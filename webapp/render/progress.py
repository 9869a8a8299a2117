"""Progress and cancel: the `tick` callback type, and the Monitor that rate-limits both.

`tick(n)` callbacks are called often during long loops (n: work done so far); they report
progress and may raise Cancelled to stop the work. The Monitor runs in the calling process:
it reports progress at most every PROGRESS_INTERVAL and checks for a cancel at most every
CANCEL_INTERVAL seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .errors import Cancelled

PROGRESS_INTERVAL = 0.5
CANCEL_INTERVAL = 0.25

ProgressFn = Callable[[int, int], None]
CancelCheck = Callable[[], bool] | threading.Event
Tick = Callable[[int], None]


def no_tick(_n: int) -> None:
    """The default `tick`: nothing to report, nothing to check."""


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
