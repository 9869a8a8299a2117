"""Progress reports, cancellation, kills and typed errors: never a file at the output path."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

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

from .conftest import requires_proc, worker_pids

ROOT = Path(__file__).resolve().parents[2]


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
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert max(gaps) <= 1.0, gaps


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


def test_cancel_is_honoured_within_a_second(longer_lesson, tmp_path, cache_dir, parallel):
    flipped = []

    def should_cancel():
        if not flipped and time.monotonic() - started > 0.4:
            flipped.append(time.monotonic())
        return bool(flipped)

    started = time.monotonic()
    with pytest.raises(Cancelled):
        render_lesson(
            longer_lesson,
            tmp_path / "out.mp4",
            cache_dir=cache_dir,
            settings=parallel,
            should_cancel=should_cancel,
        )
    assert time.monotonic() - flipped[0] < 1.0
    _no_leftovers(tmp_path / "out.mp4", cache_dir)


@requires_proc
def test_killed_render_leaves_no_output_and_no_encoders(longer_lesson, tmp_path, cache_dir):
    out = tmp_path / "out.mp4"
    marker = tmp_path / "progress"
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from webapp.render import RenderSettings, render_lesson
        marker = Path({str(marker)!r})
        def progress(done, total):
            marker.write_text(f"{{done}} {{total}}")
        render_lesson({str(longer_lesson)!r}, {str(out)!r}, cache_dir={str(cache_dir)!r},
                      settings=RenderSettings(processes=2, parallel_min_work=0), on_progress=progress)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = marker.read_text() if marker.exists() else ""
            if text and int(text.split()[0]) > 0 and worker_pids(proc.pid):
                break
            assert proc.poll() is None, "the render ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the render never reported progress")
        workers = worker_pids(proc.pid)
        assert workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 3
        while worker_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker_pids(proc.pid) == []  # the encoders died with their parent
    finally:
        if proc.poll() is None:
            proc.kill()
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
