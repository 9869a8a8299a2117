"""Loudness normalisation of the final mix (EBU R128), with FFmpeg's filters through PyAV.

Two passes over the mix (blocks of (channels, n) float32 samples, see mix.py):
1. `measure`: FFmpeg's `ebur128` meter with `peak=true` reads the integrated loudness, its gating
   threshold, the loudness range and the true peak (printed as a summary when the filter is
   freed, read here from FFmpeg's log).
2. `normalised`: one linear gain to the target, applied with numpy, when the true peak then
   stays at or below TRUE_PEAK; otherwise FFmpeg's `loudnorm` in its documented two passes
   (its own measurement, then dynamic limiting with it). loudnorm works at 192 kHz, so it is
   used only when one gain cannot do.
A mix quieter than SILENCE is left as it is.
"""

from __future__ import annotations

import gc
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.logging
import numpy as np

DEFAULT_TARGET = -16.0  # LUFS, integrated
TRUE_PEAK = -2.0  # dBTP: half a dB below the -1.5 promised, for the AAC encoder's overshoot
LOUDNESS_RANGE = 11.0
SILENCE = -70.0  # LUFS: at or below this there is nothing to normalise (ebur128's floor)


@dataclass(frozen=True)
class Measurement:
    integrated: float  # LUFS
    threshold: float  # LUFS: the relative gate of the integrated loudness
    lra: float  # LU
    true_peak: float  # dBTP

    @property
    def silent(self) -> bool:
        return not self.integrated > SILENCE


class _Graph:
    """abuffer -> filters... -> abuffersink: numpy blocks in, numpy blocks out."""

    def __init__(self, filters: list[tuple[str, str]], layout: str, rate: int):
        self.layout, self.rate, self.pts = layout, rate, 0
        self.graph = av.filter.Graph()
        source = self.graph.add_abuffer(
            format="fltp", sample_rate=rate, layout=layout, time_base=Fraction(1, rate)
        )
        chain = [source, *(self.graph.add(name, args) for name, args in filters)]
        chain.append(self.graph.add("abuffersink"))
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        self.graph.configure()

    def push(self, block: np.ndarray | None) -> list[np.ndarray]:
        """Push a block (None: the end) and return the blocks the graph has ready."""
        frame = None
        if block is not None:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=self.layout)
            frame.sample_rate, frame.pts, frame.time_base = self.rate, self.pts, Fraction(1, self.rate)
            self.pts += block.shape[1]
        self.graph.push(frame)
        ready = []
        while True:
            try:
                ready.append(self.graph.pull().to_ndarray())
            except (BlockingIOError, EOFError, av.error.BlockingIOError, av.error.EOFError):
                return ready

    def close(self) -> None:
        self.graph = None
        gc.collect()  # frees the filters now: ebur128 prints its summary as it is freed


def _number(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text, re.DOTALL)
    try:
        return float(found.group(1)) if found else None
    except ValueError:
        return None


def _parse_summary(text: str) -> Measurement | None:
    summary = text[text.rfind("Summary:") :] if "Summary:" in text else ""
    values = (
        _number(r"I:\s+(\S+) LUFS", summary),
        _number(r"I:\s+\S+ LUFS\s+Threshold:\s+(\S+) LUFS", summary),
        _number(r"LRA:\s+(\S+) LU", summary),
        _number(r"True peak:\s+Peak:\s+(\S+) dBFS", summary),
    )
    if any(v is None for v in values):
        return None
    return Measurement(*values)


def measure(blocks: Iterable[np.ndarray], layout: str, rate: int) -> Measurement | None:
    """The loudness of the blocks (by ebur128); None when FFmpeg reported nothing readable."""
    level = av.logging.get_level()
    with av.logging.Capture(local=False) as logs:
        av.logging.set_level(av.logging.INFO)
        try:
            graph = _Graph([("ebur128", "peak=true:framelog=quiet")], layout, rate)
            try:
                for block in blocks:
                    graph.push(block)
                graph.push(None)
            finally:
                graph.close()
        finally:
            av.logging.set_level(level)
    return _parse_summary("".join(str(message) for _level, _name, message in logs if message))


def linear_gain(measured: Measurement, target: float) -> float | None:
    """The factor that brings the mix to `target`, or None when its true peak would pass TRUE_PEAK."""
    gain_db = target - measured.integrated
    if measured.true_peak + gain_db > TRUE_PEAK:
        return None
    return float(10 ** (gain_db / 20))


def _loudnorm_args(target: float, measured: dict | None = None) -> str:
    args = f"I={target}:TP={TRUE_PEAK}:LRA={LOUDNESS_RANGE}"
    if measured is None:
        return args + ":print_format=json"
    return args + (
        f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
        f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
        f":offset={measured['target_offset']}:linear=true:print_format=none"
    )


def _run(graph: _Graph, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    try:
        for block in blocks:
            yield from graph.push(block)
        yield from graph.push(None)
    finally:
        graph.close()


def _loudnorm_measure(blocks: Iterable[np.ndarray], target: float, layout: str, rate: int) -> dict | None:
    """loudnorm's own first pass (its JSON report), or None when FFmpeg reported nothing readable."""
    level = av.logging.get_level()
    with av.logging.Capture(local=False) as logs:
        av.logging.set_level(av.logging.INFO)
        try:
            for _ in _run(_Graph([("loudnorm", _loudnorm_args(target))], layout, rate), blocks):
                pass
        finally:
            av.logging.set_level(level)
    text = "".join(str(message) for _level, _name, message in logs if message)
    start, end = text.rfind("{"), text.rfind("}")
    try:
        found = json.loads(text[start : end + 1]) if 0 <= start < end else {}
    except ValueError:
        return None
    return found if "input_i" in found else None


def normalised(
    blocks: Callable[[], Iterable[np.ndarray]],
    measured: Measurement | None,
    target: float,
    layout: str,
    rate: int,
) -> Iterator[np.ndarray]:
    """The mix (`blocks()` gives it, once per pass) at `target` LUFS with a true peak at or below
    TRUE_PEAK: one gain when that keeps the peak under the ceiling, else loudnorm's two passes
    (measure, then limit dynamically). The dynamic path may end a few samples early or late; the
    caller cuts or pads."""
    if measured is None or measured.silent:
        yield from blocks()
        return
    gain = linear_gain(measured, target)
    if gain is not None:
        for block in blocks():
            yield block * np.float32(gain)
        return
    report = _loudnorm_measure(blocks(), target, layout, rate)
    if report is None:
        yield from blocks()
        return
    filters = [
        ("loudnorm", _loudnorm_args(target, report)),
        ("aresample", str(rate)),
        ("aformat", f"sample_fmts=fltp:sample_rates={rate}:channel_layouts={layout}"),
    ]
    yield from _run(_Graph(filters, layout, rate), blocks())
