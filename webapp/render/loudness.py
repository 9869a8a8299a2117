"""Loudness normalisation with FFmpeg's `loudnorm` filter (EBU R128), through PyAV's filter graph.

Two passes over the lesson's audio track, as FFmpeg documents for exact results: the first
measures (integrated loudness, true peak, loudness range, threshold; loudnorm prints them as
JSON when the filter is freed, read here from FFmpeg's log), the second normalises with those
measurements in linear mode (one gain for the whole track) — loudnorm itself falls back to its
dynamic mode when one gain would push the true peak past the ceiling.
"""

from __future__ import annotations

import gc
import itertools
import json
from collections.abc import Callable
from fractions import Fraction

import av
import av.logging

DEFAULT_TARGET = -16.0  # LUFS, integrated
TRUE_PEAK = -2.0  # dBTP asked of loudnorm: half a dB below the -1.5 promised, for the AAC encoder
LOUDNESS_RANGE = 11.0
SILENCE = -70.0  # LUFS: below this there is nothing to normalise

Sink = Callable[[av.AudioFrame | None], None]


class _Graph:
    """abuffer -> loudnorm -> aresample -> aformat -> abuffersink; frames in, frames out."""

    def __init__(self, args: str, layout: str, rate: int, out: Sink | None):
        self.out = out
        self.graph = av.filter.Graph()
        source = self.graph.add_abuffer(
            format="fltp", sample_rate=rate, layout=layout, time_base=Fraction(1, rate)
        )
        chain = [
            source,
            self.graph.add("loudnorm", args),
            self.graph.add("aresample", str(rate)),
            self.graph.add("aformat", f"sample_fmts=fltp:sample_rates={rate}:channel_layouts={layout}"),
            self.graph.add("abuffersink"),
        ]
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        self.graph.configure()

    def __call__(self, frame: av.AudioFrame | None) -> None:
        self.graph.push(frame)
        while True:
            try:
                pulled = self.graph.pull()
            except (BlockingIOError, EOFError, av.error.BlockingIOError, av.error.EOFError):
                break
            if self.out is not None:
                self.out(pulled)
        if frame is None and self.out is not None:
            self.out(None)

    def close(self) -> None:
        self.graph = None
        gc.collect()  # frees the filters now: loudnorm prints its measurements as it is freed


def _args(target: float, measured: dict | None = None) -> str:
    args = f"I={target}:TP={TRUE_PEAK}:LRA={LOUDNESS_RANGE}"
    if measured is None:
        return args + ":print_format=json"
    return args + (
        f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
        f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
        f":offset={measured['target_offset']}:linear=true:print_format=none"
    )


def measure(feed: Callable[[Sink], None], layout: str, rate: int, target: float) -> dict | None:
    """loudnorm's measurements of the audio `feed(sink)` pushes into sink (then None); None when
    FFmpeg reported nothing readable."""
    level = av.logging.get_level()
    with av.logging.Capture(local=False) as logs:
        av.logging.set_level(av.logging.INFO)
        try:
            graph = _Graph(_args(target), layout, rate, None)
            try:
                feed(graph)
            finally:
                graph.close()
        finally:
            av.logging.set_level(level)
    text = "".join(str(message) for _level, _name, message in logs if message)
    start, end = text.rfind("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        found = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return found if "input_i" in found else None


def is_silent(measured: dict) -> bool:
    try:
        return float(measured["input_i"]) < SILENCE
    except (KeyError, ValueError):
        return True


def normaliser(measured: dict, layout: str, rate: int, target: float, out: Sink) -> _Graph:
    """A sink that normalises the frames pushed into it (then None) and hands them to `out`."""
    return _Graph(_args(target, measured), layout, rate, out)
