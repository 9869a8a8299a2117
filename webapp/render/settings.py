"""Encoder and pipeline settings (all have careful defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .limits import DEFAULT_MAX_DURATION

CACHE_ENV = "RENDER_CACHE_DIR"
CACHE_MAX_ENV = "RENDER_CACHE_MAX_BYTES"
PROCESSES_ENV = "RENDER_PROCESSES"


def _default_processes() -> int:
    env = os.environ.get(PROCESSES_ENV)
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _default_cache_max() -> int:
    env = os.environ.get(CACHE_MAX_ENV, "")
    return int(env) if env.isdigit() else 2 * 1024**3


@dataclass(frozen=True)
class RenderSettings:
    """How to encode. The defaults equal `-preset veryfast -crf 23 -tune stillimage`.

    Everything that changes the encoded bytes is part of the segment cache key.
    """

    preset: str = "veryfast"
    crf: int = 23
    tune: str | None = "stillimage"
    # Longest GOP in frames (x264's default keyint). Every segment starts a closed GOP;
    # segments longer than this are cut into equal closed GOPs, which the cache can share.
    keyint: int = 250
    x264_params: dict[str, str] = field(default_factory=dict)
    audio_codec: str = "aac"
    audio_bitrate: int = 128_000
    sample_rate: int = 48_000
    audio_channels: int | None = None  # None: stereo if any input is stereo, else mono
    # Parallel encoder processes; 1 encodes in the calling process.
    processes: int = field(default_factory=_default_processes)
    # x264 threads per encoder process; 0 = 1 when several processes run, else auto.
    threads: int = 0
    # Below this much work (1080p-frame equivalents) everything runs in the calling process,
    # because starting encoder processes costs more than it saves.
    parallel_min_work: float = 240.0
    cache_max_bytes: int = field(default_factory=_default_cache_max)
    # Decode-check the finished file (keyframes + audio) before moving it into place.
    verify: bool = True
    # The longest lesson render_lesson accepts, in seconds (load_manifest's max_duration).
    max_duration: float = DEFAULT_MAX_DURATION

    def video_key(self) -> dict:
        """The settings that shape encoded video (part of every video piece's cache key)."""
        return {
            "preset": self.preset,
            "crf": self.crf,
            "tune": self.tune,
            "keyint": self.keyint,
            "x264_params": sorted(self.x264_params.items()),
        }

    def audio_key(self) -> dict:
        """The settings that shape the encoded audio track (part of its cache key)."""
        return {
            "codec": self.audio_codec,
            "bitrate": self.audio_bitrate,
            "rate": self.sample_rate,
            "channels": self.audio_channels,
        }


def default_cache_dir() -> Path:
    """RENDER_CACHE_DIR, else $XDG_CACHE_HOME/lesson-render, else ~/.cache/lesson-render."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lesson-render"
