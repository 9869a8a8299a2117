"""HDR clips (a phone's "HDR video": HLG, or PQ/HDR10) shown as SDR BT.709 pictures.

A lesson is SDR BT.709; an HDR clip's code values put there as they are look flat and pale (its
BT.2020 primaries read as BT.709, its highlights squeezed into the signal's top). Players tone
map such a clip for an SDR screen; the lesson does the same, per pixel, on the picture already
scaled to the lesson's size (16-bit R'G'B' from FFmpeg's scaler):

1. to display light: HLG by its inverse OETF and the OOTF of a 1000 cd/m² display (ITU-R
   BT.2100, system gamma 1.2, luminance from the clip's own primaries); PQ by its EOTF (SMPTE
   ST 2084);
2. reference white, 203 cd/m² (ITU-R BT.2408: HLG at 75 %, PQ at 58 %), becomes SDR's 100 %;
3. BT.2020 to BT.709 primaries (ITU-R BT.2087's matrix, linear light; none for a clip tagged
   with BT.709 primaries);
4. luminance above `KNEE` rolls off smoothly towards 100 % (x -> k + (1 - k)·t/(1 + t),
   t = (x - k)/(1 - k): slope 1 at the knee, so nothing below it changes; reference white ends
   at 95 % of SDR's light, highlights keep some detail), the colour scaled with it;
5. colours outside BT.709 (or brighter than 100 % in one channel) are moved towards their own
   luminance until they fit (as bright, less saturated, the same dominant wavelength);
6. to the SDR signal by the inverse of BT.1886's EOTF (gamma 2.4).

`sdr_signal` is that definition in float64 (the tests' reference); `to_sdr` computes it with
OpenCV in float32, a band of rows at a time, a 64k-entry table for step 1's transfer function
only (within a rounding of `sdr_signal`: 0.53 levels at most over a dense grid of signals). A 3D
table interpolated by FFmpeg's lut3d was quicker but missed bright saturated colours by up to
113 levels: the gamut fit and the gamma are too steep there to interpolate.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

HLG, PQ = 18, 16  # AVColorTransferCharacteristic: ARIB STD-B67, SMPTE ST 2084
REFERENCE_WHITE = 203.0  # cd/m², ITU-R BT.2408
HLG_PEAK = 1000.0  # cd/m², the nominal display of BT.2100's HLG OOTF
KNEE = 0.9  # relative luminance where highlights start to roll off

BT2020_TO_BT709 = np.array(
    [
        [1.6604910021, -0.5876411388, -0.0728498633],
        [-0.1245504745, 1.1328998971, -0.0083494226],
        [-0.0181507634, -0.1005788980, 1.1187296614],
    ]
)
LUMA_2020 = np.array([0.2627, 0.6780, 0.0593])
LUMA_709 = np.array([0.2126, 0.7152, 0.0722])


def transfer(frame) -> int | None:
    """HLG or PQ when `frame` (an av.VideoFrame) is tagged with one of them, else None."""
    trc = frame.color_trc
    return trc if trc in (HLG, PQ) else None


def _pq_nits(e: np.ndarray) -> np.ndarray:
    """PQ's EOTF (SMPTE ST 2084): signal 0-1 -> cd/m²."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.clip(e, 0.0, 1.0) ** (1 / m2)
    return 10000.0 * (np.maximum(p - c1, 0.0) / (c2 - c3 * p)) ** (1 / m1)


def _hlg_scene(e: np.ndarray) -> np.ndarray:
    """HLG's inverse OETF (BT.2100): signal 0-1 -> scene light 0-1."""
    a = 0.17883277
    b, c = 1 - 4 * a, 0.5 - a * np.log(4 * a)
    e = np.clip(e, 0.0, 1.0)
    return np.where(e <= 0.5, e * e / 3, (np.exp((np.maximum(e, 0.5) - c) / a) + b) / 12)


def display_light(signal: np.ndarray, trc: int, bt709_primaries: bool = False) -> np.ndarray:
    """Non-linear HDR R'G'B' (..., 3) in 0-1 as display light in cd/m² (step 1)."""
    if trc == PQ:
        return _pq_nits(signal)
    scene = _hlg_scene(signal)
    luma = np.maximum(scene @ (LUMA_709 if bt709_primaries else LUMA_2020), 1e-12)[..., None]
    return HLG_PEAK * luma**0.2 * scene


def sdr_signal(signal: np.ndarray, trc: int, bt709_primaries: bool = False) -> np.ndarray:
    """Non-linear HDR R'G'B' (..., 3) in 0-1 as non-linear BT.709 SDR R'G'B' in 0-1 (the
    definition: steps 1-6 in float64)."""
    rgb = display_light(signal, trc, bt709_primaries) / REFERENCE_WHITE
    if not bt709_primaries:
        rgb = rgb @ BT2020_TO_BT709.T
    luma = rgb @ LUMA_709
    over = np.maximum(luma - KNEE, 0.0) / (1 - KNEE)
    rolled = np.where(luma > KNEE, KNEE + (1 - KNEE) * over / (1 + over), luma)
    rgb = rgb * np.where(luma > 0, rolled / np.maximum(luma, 1e-12), 0.0)[..., None]
    rgb = _fit(rgb, rolled[..., None])
    return np.clip(rgb, 0.0, 1.0) ** (1 / 2.4)


def _fit(rgb: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Each colour moved towards its luminance just enough to lie within 0-1 (step 5)."""
    top, bottom = rgb.max(axis=-1, keepdims=True), rgb.min(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        high = np.where(top > 1, (1 - luma) / (top - luma), 1.0)
        low = np.where(bottom < 0, luma / (luma - bottom), 1.0)
    keep = np.clip(np.nan_to_num(np.minimum(high, low), nan=0.0), 0.0, 1.0)
    return luma + (rgb - luma) * keep


ROWS = 64  # rows of the picture `to_sdr` works on at once: its float planes stay in the CPU's cache


@functools.cache
def _light(trc: int) -> np.ndarray:
    """For a 16-bit signal: display light relative to reference white (PQ) or scene light (HLG)."""
    axis = np.arange(65536, dtype=np.float64) / 65535
    light = _pq_nits(axis) / REFERENCE_WHITE if trc == PQ else _hlg_scene(axis)
    return light.astype(np.float32)


def to_sdr(red: np.ndarray, green: np.ndarray, blue: np.ndarray, trc: int, bt709_primaries: bool = False):
    """16-bit non-linear HDR planes (full range) as 8-bit SDR BT.709 planes (red, green, blue):
    sdr_signal's steps in float32 on ROWS rows at a time, in place (on whole 1080p planes each
    step went out to memory and back: 3 times as long), the knee and the fit as one gain K:

    with u the light in BT.709 primaries before the OOTF's gain and the knee, y its luminance and
    `lum` the display luminance rolled off, the result is lum + K·(u - y), K the smallest of the
    knee's own gain (lum / y) and those bringing the smallest channel up to 0 (lum / (y - min u))
    and the largest down to 1 ((1 - lum) / (max u - y)). Only the transfer function is a table;
    the rest is computed: near both limits a channel is the difference of nearly equal terms
    that the gamma magnifies (a 16-bit table for the knee's gain missed by 2 levels there)."""
    light = _light(trc)
    weights = LUMA_709 if bt709_primaries else LUMA_709 @ BT2020_TO_BT709  # y from the light
    height, width = red.shape
    rows = min(ROWS, height)
    work = np.empty((13, rows, width), np.float32)
    work[10:] = np.array([(1 - KNEE) ** 2, KNEE, 1e-30], np.float32)[:, None, None]
    out = np.empty((3, height, width), np.uint8)
    for first in range(0, height, rows):
        part = slice(first, min(first + rows, height))
        r, g, b, u0, u1, u2, y, t1, t2, t3, square, knee, tiny = (a[: part.stop - first] for a in work)
        for plane, dst in zip((red, green, blue), (r, g, b), strict=True):
            cv2.LUT(plane[part], light, dst=dst)
        u, spare = ((r, g, b), u0) if bt709_primaries else ((u0, u1, u2), r)
        if not bt709_primaries:
            for row, dst in zip(BT2020_TO_BT709, u, strict=True):
                cv2.scaleAdd(b, row[2], cv2.addWeighted(r, row[0], g, row[1], 0, dst=dst), dst=dst)
        cv2.scaleAdd(b, weights[2], cv2.addWeighted(r, weights[0], g, weights[1], 1e-30, dst=y), dst=y)
        display = y
        if trc == HLG:  # the OOTF: display luminance 1000/203 · scene luminance ** 0.2 · y
            scene = y  # the same weights with BT.709 primaries
            if not bt709_primaries:  # LUMA_2020, not y's weights: 1e-4 apart, 2 levels at the limits
                scene = cv2.addWeighted(r, LUMA_2020[0], g, LUMA_2020[1], 0, dst=t1)
                cv2.scaleAdd(b, LUMA_2020[2], scene, dst=scene)
            display = cv2.log(scene, dst=t1)
            np.multiply(display, 0.2, out=display)
            cv2.exp(display, dst=display)
            cv2.multiply(display, y, dst=display, scale=HLG_PEAK / REFERENCE_WHITE)
        # The knee (d its input): lum = min(d, k) + 1 - k - (1 - k)² / (max(d, k) + 1 - 2k).
        cut, low, lum = t2, t3, t1
        cv2.addWeighted(cv2.max(display, knee, dst=cut), 1, cut, 0, 1 - 2 * KNEE, dst=cut)
        cv2.divide(square, cut, dst=cut)
        cv2.min(display, knee, dst=low)
        cv2.addWeighted(low, 1, cut, -1, 1 - KNEE, dst=lum)
        above = cv2.addWeighted(low, -1, cut, 1, KNEE, dst=cut)  # 1 - lum
        high = cv2.max(cv2.max(u[0], u[1], dst=spare), u[2], dst=spare)
        cv2.max(cv2.subtract(high, y, dst=high), tiny, dst=high)  # 0 for a grey: rounded below
        cv2.divide(above, high, dst=high)
        low = cv2.min(cv2.min(u[0], u[1], dst=low), u[2], dst=low)
        cv2.max(cv2.subtract(y, low, dst=low), y, dst=low)  # y when no channel is below 0
        cv2.divide(lum, low, dst=low)
        gain = cv2.min(high, low, dst=high)
        cv2.subtract(lum, cv2.multiply(gain, y, dst=y), dst=lum)  # out = gain · u + lum - gain · y
        for channel, plane in enumerate(u):
            cv2.add(cv2.multiply(plane, gain, dst=plane), lum, dst=plane)
            cv2.log(plane, dst=plane)  # -inf at 0 and NaN a rounding below: both 0 at the end
            np.multiply(plane, 1 / 2.4, out=plane)
            cv2.exp(plane, dst=plane)
            cv2.convertScaleAbs(plane, alpha=255, dst=out[channel, part])
    return out[0], out[1], out[2]
