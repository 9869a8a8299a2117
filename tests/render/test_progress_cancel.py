"""Progress reports, cancellation, kills and typed errors: never a file at the output path."""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from webapp.render import (
    Cancelled,
    ManifestError,
    RenderError,
    RenderSettings,
    TransientRenderError,
    partial_outputs,
    render_lesson,
)
from webapp.render import progress as progress_module
from webapp.render.pipeline import PROGRESS_INTERVAL, Monitor

from .processes import requires_proc, worker_pids

ROOT = Path(__file__).resolve().parents[2]
# Only a guard against a hung test: each wait it bounds ends on an event long before.
HANG_GUARD = 60.0


@pytest.fixture
def longer_lesson(make_lesson):
    """Enough work (about a second or two on two cores) to watch progress and cancel it."""
    return make_lesson("longer", segments=3, seconds=[4.0, 3.0, 4.0], width=1280, height=720)


def _no_leftovers(out: Path, cache_dir: Path) -> None:
    assert not out.exists()
    assert partial_outputs(out) == []
    assert list((cache_dir / "tmp").iterdir()) == []  # the render's private folder is gone


def test_progress_is_reported_often_and_ends_at_total(longer_lesson, tmp_path, cache_dir, parallel):
    calls = []
    result = render_lesson(
        longer_lesson,
        tmp_path / "out.mp4",
        cache_dir=cache_dir,
        settings=parallel,
        on_progress=lambda done, total: calls.append((time.monotonic(), done, total)),
    )
    total = result.frames
    assert calls[0][1:] == (0, total)
    assert calls[-1][1:] == (total, total)
    assert all(t == total for _, _, t in calls)
    dones = [d for _, d, _ in calls]
    assert dones == sorted(dones)
    assert len({d for d in dones if 0 < d < total}) >= 1  # real progress in between
    # The promise is a report at least once a second; the reporting interval itself is checked
    # without a clock below. Here the point is that no step of a real render stops reporting, but
    # a loaded machine can stall this process, so the bound is 5x the interval rather than 1 s.
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert max(gaps) <= 5 * PROGRESS_INTERVAL, gaps


def test_monitor_reports_every_interval_and_checks_cancel_in_between(monkeypatch):
    now = [1000.0]
    # Monitor (progress.py) reads this clock.
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    reports, checks = [], []
    stop = threading.Event()

    def should_cancel():
        checks.append(now[0])
        return stop.is_set()

    monitor = Monitor(lambda done, total: reports.append((now[0], done, total)), should_cancel, total=100)
    for step in range(48):  # 6 s of polls, 1/8 s apart (exact in binary), one frame more each
        now[0] = 1000.0 + step / 8
        monitor.poll(step)
    report_gaps = [b[0] - a[0] for a, b in itertools.pairwise(reports)]
    check_gaps = [b - a for a, b in itertools.pairwise(checks)]
    assert reports[0] == (1000.0, 0, 100)
    assert max(report_gaps) <= 1.0  # the documented promise: at least once a second
    assert min(report_gaps) >= PROGRESS_INTERVAL  # rate-limited, not once per poll
    assert [d for _, d, _ in reports] == sorted({d for _, d, _ in reports})  # frames keep rising
    assert max(check_gaps) <= 0.25  # the documented cancel check interval

    stop.set()
    asked = len(checks)
    with pytest.raises(Cancelled):
        for step in range(48, 60):
            now[0] = 1000.0 + step / 8
            monitor.poll(step)
    # The first check that sees the cancel stops the work, in the same poll.
    assert len(checks) == asked + 1 and checks[-1] == now[0]


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_cancel_midway_leaves_nothing(longer_lesson, tmp_path, cache_dir, request, mode):
    settings = request.getfixturevalue(mode)
    stop = threading.Event()
    out = tmp_path / "out.mp4"

    def progress(done, total):
        if 0 < done < total:
            stop.set()

    with pytest.raises(Cancelled) as info:
        render_lesson(
            longer_lesson,
            out,
            cache_dir=cache_dir,
            settings=settings,
            on_progress=progress,
            should_cancel=stop,
        )
    assert str(info.value) == "render cancelled" and isinstance(info.value, RenderError)
    _no_leftovers(out, cache_dir)
    assert worker_pids(os.getpid()) == []


def test_cancel_is_honoured_at_the_first_check_that_sees_it(longer_lesson, tmp_path, cache_dir, parallel):
    events = []  # ("progress", frames done) and ("check", answer), in the order they happened

    def progress(done, total):
        events.append(("progress", done))

    def should_cancel():
        answer = any(kind == "progress" and done > 0 for kind, done in events)  # midway: cancel
        events.append(("check", answer))
        return answer

    with pytest.raises(Cancelled):
        render_lesson(
            longer_lesson,
            tmp_path / "out.mp4",
            cache_dir=cache_dir,
            settings=parallel,
            on_progress=progress,
            should_cancel=should_cancel,
        )
    first_yes = events.index(("check", True))
    assert events[first_yes:] == [("check", True)]  # no progress and no other check after it
    # Cancel is checked at least as often as progress is reported: a check before every report.
    kinds = "".join("p" if kind == "progress" else "c" for kind, _ in events)
    assert "pp" not in kinds and kinds[0] == "c", kinds
    _no_leftovers(tmp_path / "out.mp4", cache_dir)
    assert worker_pids(os.getpid()) == []


def _wait_for_exit(pids: list[int], timeout: float) -> None:
    """Block until every process in `pids` has exited (its pidfd turns readable) or `timeout` passed."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue  # exited already
    try:
        deadline = time.monotonic() + timeout
        for fd in fds:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        for fd in fds:
            os.close(fd)


@requires_proc
@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux 5.3+)")
def test_killed_render_leaves_no_output_and_no_encoders(make_lesson, tmp_path, cache_dir):
    # One piece per segment (keyint above its frame count), each many seconds of encoding, so the
    # encoders are still at work when their parent is killed.
    lesson = make_lesson("long", segments=2, seconds=120.0, width=1280, height=720, audio=False)
    out = tmp_path / "out.mp4"
    # Midway, the render says so on stdout and then waits in its progress callback, so it is
    # certainly still running when the test kills it.
    code = textwrap.dedent(
        f"""
        import threading
        from webapp.render import RenderSettings, render_lesson
        def progress(done, total):
            if 0 < done < total:
                print("midway", flush=True)
                threading.Event().wait()
        settings = RenderSettings(processes=2, parallel_min_work=0, keyint=100_000)
        render_lesson({str(lesson)!r}, {str(out)!r}, cache_dir={str(cache_dir)!r},
                      settings=settings, on_progress=progress)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], HANG_GUARD)
        assert ready, "the render never reported progress"
        assert proc.stdout.readline() == "midway\n", "the render ended before it could be killed"
        workers = worker_pids(proc.pid)
        assert workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(HANG_GUARD)
        # The kernel kills them with their parent (PR_SET_PDEATHSIG), within milliseconds. The
        # bound is generous for a loaded machine yet far shorter than the piece a surviving
        # encoder would still be working on.
        _wait_for_exit(workers, timeout=3.0)
        assert worker_pids(proc.pid) == []  # the encoders died with their parent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert not out.exists()
    for part in partial_outputs(out):  # what the app cleans up after a lost worker
        assert part.name.startswith(".out.mp4.") and part.name.endswith(".part")


def test_unwritable_output_is_transient(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=1)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(TransientRenderError) as info:
        render_lesson(lesson, blocker / "out.mp4", cache_dir=cache_dir, settings=serial)
    assert info.value.retryable and "\n" not in str(info.value)


def test_error_kinds():
    assert ManifestError("segments[0].audio", "file not found").retryable is False
    assert ManifestError("segments[0].audio", "file not found").kind == "manifest"
    assert TransientRenderError("disk full").retryable is True
    assert Cancelled().kind == "cancelled"
    assert str(RenderError("two\nlines")) == "two lines"


def test_unusable_cache_dir_still_renders(make_lesson, tmp_path):
    lesson = make_lesson(segments=1)
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    result = render_lesson(
        lesson, tmp_path / "out.mp4", cache_dir=blocker, settings=RenderSettings(processes=1)
    )
    assert result.segments_encoded == 1 and (tmp_path / "out.mp4").exists()


def test_partial_outputs_pattern(tmp_path):
    out = tmp_path / "final_video.mp4"
    (tmp_path / ".final_video.mp4.abc123.part").write_text("x")
    (tmp_path / ".other.mp4.abc123.part").write_text("x")
    assert partial_outputs(out) == [tmp_path / ".final_video.mp4.abc123.part"]
