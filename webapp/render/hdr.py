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

`sdr_signal` is that definition in float64 (the tests' reference); `to_sdr` computes it on
whole planes with OpenCV in float32 and 64k-entry tables for the 1D steps (within two levels of
`sdr_signal`). A 3D table interpolated by FFmpeg's lut3d was quicker but missed bright saturated
colours by up to 113 levels: the gamut fit and the gamma are too steep there to interpolate.
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


@functools.cache
def _tables(trc: int) -> tuple[np.ndarray, np.ndarray | None]:
    """For a 16-bit signal: display light relative to reference white (PQ), or scene light and
    the OOTF's gain for a 16-bit scene luminance (HLG)."""
    axis = np.arange(65536, dtype=np.float64) / 65535
    if trc == PQ:
        return (_pq_nits(axis) / REFERENCE_WHITE).astype(np.float32), None
    gain = HLG_PEAK / REFERENCE_WHITE * axis**0.2
    return _hlg_scene(axis).astype(np.float32), gain.astype(np.float32)


_GAMMA = np.round(255 * (np.arange(65536) / 65535) ** (1 / 2.4)).astype(np.uint8)


def _to_index(plane: np.ndarray) -> np.ndarray:
    """0-1 floats (changed in place) as 16-bit table indexes, clipped."""
    np.clip(plane, 0.0, 1.0, out=plane)
    plane *= 65535
    plane += 0.5
    return plane.astype(np.uint16)


def _mix(a, b, c, weights, out: np.ndarray) -> np.ndarray:
    cv2.addWeighted(a, weights[0], b, weights[1], 0, dst=out)
    return cv2.scaleAdd(c, weights[2], out, dst=out)


def to_sdr(red: np.ndarray, green: np.ndarray, blue: np.ndarray, trc: int, bt709_primaries: bool = False):
    """16-bit non-linear HDR planes (full range) as 8-bit SDR BT.709 planes (red, green, blue):
    sdr_signal's steps on whole float32 planes, in place (a new plane per step cost as much
    again: ~50 ms a 1080p picture here)."""
    signal, gain = _tables(trc)
    r, g, b = signal[red], signal[green], signal[blue]
    t1, t2, t3 = np.empty_like(r), np.empty_like(r), np.empty_like(r)
    if gain is not None:  # HLG's OOTF: scaled by the scene luminance to the power 0.2
        by = gain[_to_index(_mix(r, g, b, LUMA_709 if bt709_primaries else LUMA_2020, t1))]
        for plane in (r, g, b):
            cv2.multiply(plane, by, dst=plane)
    if not bt709_primaries:
        for row, out in zip(BT2020_TO_BT709, (t1, t2, t3), strict=True):
            _mix(r, g, b, row, out)
        r, g, b, t1, t2, t3 = t1, t2, t3, r, g, b
    y, over, rolled = t1, t2, t3
    _mix(r, g, b, LUMA_709, y)
    cv2.subtract(y, KNEE, dst=over)  # over = max(y - k, 0) / (1 - k)
    cv2.max(over, 0.0, dst=over)
    over *= 1 / (1 - KNEE)
    cv2.add(over, 1.0, dst=rolled)  # rolled = min(y, k) + (1 - k) * over / (1 + over)
    cv2.divide(over, rolled, dst=over)
    over *= 1 - KNEE
    cv2.min(y, KNEE, dst=rolled)
    rolled += over
    scale = y
    cv2.max(y, 1e-12, dst=scale)
    cv2.divide(rolled, scale, dst=scale)
    for plane in (r, g, b):
        cv2.multiply(plane, scale, dst=plane)
    # Towards the luminance until every channel is within 0-1: the smaller of the fractions that
    # bring the largest channel down to 1 and the smallest up to 0 (each >= 1 when not needed).
    high, low = over, scale
    cv2.max(cv2.max(r, g), b, dst=high)
    cv2.subtract(high, rolled, dst=high)
    cv2.max(high, 1e-9, dst=high)
    cv2.divide(cv2.subtract(1.0, rolled), high, dst=high)
    cv2.min(cv2.min(r, g), b, dst=low)
    cv2.subtract(rolled, low, dst=low)
    cv2.max(low, 1e-9, dst=low)
    cv2.divide(rolled, low, dst=low)
    keep = cv2.min(cv2.min(high, low, dst=high), 1.0, dst=high)
    out = []
    for plane in (r, g, b):
        cv2.subtract(plane, rolled, dst=plane)
        cv2.multiply(plane, keep, dst=plane)
        cv2.add(plane, rolled, dst=plane)
        out.append(_GAMMA[_to_index(plane)])
    return tuple(out)
