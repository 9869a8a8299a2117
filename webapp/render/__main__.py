"""Command line: python -m webapp.render LESSON_DIR OUTPUT.mp4 [--cache-dir DIR] [options]

`--max-duration SECONDS` raises or lowers the longest lesson accepted (default 4 h).

Renders with a terminal progress bar (frames, %, ETA). On a bad lesson it prints the
one-line error and exits non-zero, leaving no output file. Exit codes: 0 done,
2 bad lesson (manifest), 3 transient fault (may retry), 4 environment, 1 other, 130 cancelled.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from pathlib import Path

from . import (
    DEFAULT_MAX_DURATION,
    Cancelled,
    ManifestError,
    RenderEnvironmentError,
    RenderError,
    RenderResult,
    RenderSettings,
    TransientRenderError,
    default_cache_dir,
    load_manifest,
    render_lesson,
)
from .settings import CACHE_ENV


class ProgressBar:
    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self.start = time.monotonic()
        self.tty = stream.isatty()
        self.last_line = ""
        self.last_print = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        frac = done / total if total else 1.0
        elapsed = now - self.start
        eta = "--:--"
        if 0 < frac < 1 and elapsed > 0.5:
            eta = _mmss(elapsed * (1 - frac) / frac)
        elif frac >= 1:
            eta = "00:00"
        filled = int(self.width * frac)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {done}/{total} frames {frac * 100:5.1f}% ETA {eta} elapsed {_mmss(elapsed)}"
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif now - self.last_print >= 5 or frac >= 1:  # logs: a line every few seconds
            self.stream.write(line + "\n")
            self.last_print = now
        self.last_line = line

    def close(self) -> None:
        if self.tty and self.last_line:
            self.stream.write("\n")
            self.stream.flush()


def _mmss(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m webapp.render", description="Render a lesson folder to MP4.")
    p.add_argument("lesson_dir", type=Path, help="folder holding lesson.json")
    p.add_argument("output", type=Path, help="output .mp4 path")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"segment cache folder (default: ${CACHE_ENV}, else {default_cache_dir()})",
    )
    p.add_argument("--processes", type=int, default=None, help="parallel encoder processes")
    p.add_argument("--preset", default=None, help="x264 preset (default veryfast)")
    p.add_argument("--crf", type=int, default=None, help="x264 CRF (default 23)")
    p.add_argument("--tune", default=None, help='x264 tune (default stillimage; "none" for no tune)')
    p.add_argument(
        "--max-duration",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=f"refuse lessons longer than this (default {DEFAULT_MAX_DURATION})",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--check", action="store_true", help="only validate lesson.json, do not render")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings_from(args)
    cancel = _cancel_on_signals()
    bar = None if args.quiet else ProgressBar()
    try:
        manifest = load_manifest(args.lesson_dir, max_duration=settings.max_duration)
        for warning in manifest.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if args.check:
            print(
                f"ok: {manifest.title!r}, {len(manifest.segments)} segments, "
                f"{manifest.duration:.2f} s, {manifest.total_frames} frames"
            )
            return 0
        result = render_lesson(
            args.lesson_dir,
            args.output,
            on_progress=bar,
            should_cancel=cancel,
            cache_dir=args.cache_dir,
            settings=settings,
        )
    except KeyboardInterrupt:
        _close(bar)
        print("error: interrupted", file=sys.stderr)
        return 130
    except RenderError as exc:
        _close(bar)
        print(f"error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    _close(bar)
    _print_summary(result)
    return 0


def _settings_from(args: argparse.Namespace) -> RenderSettings:
    """RenderSettings with the options given on the command line, defaults for the rest."""
    overrides = {}
    if args.processes is not None:
        overrides["processes"] = max(1, args.processes)
    if args.preset:
        overrides["preset"] = args.preset
    if args.crf is not None:
        overrides["crf"] = args.crf
    if args.tune:
        overrides["tune"] = None if args.tune == "none" else args.tune
    if args.max_duration is not None:
        overrides["max_duration"] = args.max_duration
    return RenderSettings(**overrides)


def _cancel_on_signals() -> threading.Event:
    """An event that SIGTERM (and SIGHUP) set, so the render is cancelled and cleans up."""
    cancel = threading.Event()

    def on_signal(signum, _frame):
        cancel.set()

    signal.signal(signal.SIGTERM, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_signal)
    return cancel


def _close(bar: ProgressBar | None) -> None:
    if bar:
        bar.close()


def _exit_code(exc: RenderError) -> int:
    """The exit code for a render error (see the module docstring)."""
    if isinstance(exc, Cancelled):
        return 130
    if isinstance(exc, ManifestError):
        return 2
    if isinstance(exc, TransientRenderError):
        return 3
    if isinstance(exc, RenderEnvironmentError):
        return 4
    return 1


def _print_summary(result: RenderResult) -> None:
    size_mb = result.size_bytes / 1e6
    print(
        f"wrote {result.output_path} ({result.duration:.2f} s, {result.frames} frames, {size_mb:.1f} MB) "
        f"in {result.elapsed:.1f} s; segments encoded {result.segments_encoded}, "
        f"from cache {result.segments_cached}",
        file=sys.stderr,
    )
    for kind in ("poster", "chapters", "captions"):
        path = getattr(result, kind)
        if path is not None:
            print(f"wrote {kind} {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
