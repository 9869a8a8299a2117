"""Helpers that decode a rendered MP4 with PyAV (no numpy)."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import av

FLOAT_SAMPLE_BYTES = 4  # planar float32 ("fltp")


def video_frames(path: Path, wanted: set[int]) -> dict[int, tuple[int, int, int]]:
    """RGB of pixel (2, 2) for the frame numbers in `wanted`."""
    out = {}
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        fps = vs.average_rate
        for frame in c.decode(vs):
            n = round(frame.pts * frame.time_base * fps)
            if n in wanted:
                out[n] = frame.to_image().getpixel((2, 2))
    return out


def audio_samples(path: Path) -> tuple[array, int]:
    """Mono float samples of the first audio stream (first channel) and the sample rate."""
    samples = array("f")
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.rate
        for frame in c.decode(stream):
            if frame.format.name != "fltp":
                frame = av.AudioResampler(format="fltp", rate=rate).resample(frame)[0]
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * FLOAT_SAMPLE_BYTES])
    return samples, rate


def rms(samples: array, start: float, end: float, rate: int) -> float:
    a, b = max(0, int(start * rate)), min(len(samples), int(end * rate))
    if b <= a:
        return 0.0
    return math.sqrt(sum(x * x for x in samples[a:b]) / (b - a))


def onset(samples: array, after: float, rate: int, threshold: float = 0.01) -> float | None:
    """Time of the first sample above `threshold` at or after `after` seconds."""
    for i in range(int(after * rate), len(samples)):
        if abs(samples[i]) > threshold:
            return i / rate
    return None


def close(rgb, expected, tol: int = 14) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, expected, strict=True))
