"""HDR clips (a phone's "HDR video": HLG, or PQ/HDR10) shown as SDR BT.709 pictures.

A lesson is SDR BT.709; an HDR clip's code values put there as they are look flat and pale (its
BT.2020 primaries read as BT.709, its highlights squeezed into the signal's top). Players tone
map such a clip for an SDR screen; the lesson does the same, by FFmpeg's `lut3d` filter with a
table computed here once per process (FFmpeg's own `zscale`/`tonemap` route needs libzimg, which
PyAV's FFmpeg lacks). The table maps non-linear BT.2020 R'G'B' to non-linear BT.709 R'G'B':

1. to display light in cd/m²: HLG by its inverse OETF and the OOTF of a 1000 cd/m² display
   (ITU-R BT.2100, system gamma 1.2); PQ by its EOTF (SMPTE ST 2084);
2. reference white, 203 cd/m² (ITU-R BT.2408: HLG at 75 %, PQ at 58 %), becomes SDR's 100 %;
3. BT.2020 to BT.709 primaries (ITU-R BT.2087's matrix, linear light);
4. luminance above `KNEE` rolls off smoothly towards 100 % (x -> k + (1 - k)·t/(1 + t), t = (x - k)/(1 - k):
   slope 1 at the knee, so nothing below it changes; highlights keep their detail), the colour
   scaled with it (hue kept);
5. colours outside BT.709 (or brighter than 100 % in one channel) are desaturated towards their
   own luminance until they fit, not clipped channel by channel (no hue shifts);
6. to the SDR signal by the inverse of BT.1886's EOTF (gamma 2.4), as the 203 cd/m² white of
   step 2 is shown on an SDR display.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

HLG, PQ = 18, 16  # AVColorTransferCharacteristic: ARIB STD-B67, SMPTE ST 2084
REFERENCE_WHITE = 203.0  # cd/m², ITU-R BT.2408
HLG_PEAK = 1000.0  # cd/m², the nominal display of BT.2100's HLG OOTF
KNEE = 0.8  # relative luminance where highlights start to roll off
SIZE = 49  # points per axis of the table (FFmpeg interpolates tetrahedrally; 33 left PQ 6 levels off)

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


def display_light(signal: np.ndarray, trc: int) -> np.ndarray:
    """Non-linear BT.2020 R'G'B' (..., 3) in 0-1 as display light in cd/m² (steps 1)."""
    e = np.clip(signal, 0.0, 1.0)
    if trc == PQ:
        m1, m2 = 2610 / 16384, 2523 / 4096 * 128
        c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        p = e ** (1 / m2)
        return 10000.0 * (np.maximum(p - c1, 0.0) / (c2 - c3 * p)) ** (1 / m1)
    a = 0.17883277
    b, c = 1 - 4 * a, 0.5 - a * np.log(4 * a)
    scene = np.where(e <= 0.5, e * e / 3, (np.exp((np.maximum(e, 0.5) - c) / a) + b) / 12)
    luma = np.maximum(scene @ LUMA_2020, 1e-12)[..., None]
    return HLG_PEAK * luma**0.2 * scene


def sdr_signal(signal: np.ndarray, trc: int) -> np.ndarray:
    """Non-linear BT.2020 HDR R'G'B' (..., 3) in 0-1 as non-linear BT.709 SDR R'G'B' in 0-1."""
    rgb = display_light(signal, trc) / REFERENCE_WHITE @ BT2020_TO_BT709.T
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
def cube_text(trc: int, size: int = SIZE) -> str:
    """The table as an Adobe/Resolve .cube file (red varies fastest)."""
    axis = np.linspace(0.0, 1.0, size)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    table = sdr_signal(np.stack([r, g, b], axis=-1).reshape(-1, 3), trc)
    rows = "\n".join(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in table)
    return f"LUT_3D_SIZE {size}\n{rows}\n"


def cube_file(trc: int) -> Path:
    """The table for `trc` as a file for `lut3d`: in the temporary folder, named by its content,
    written once (again if something cleaned the folder meanwhile)."""
    text = cube_text(trc)
    path = Path(tempfile.gettempdir()) / f"lvt-hdr-{hashlib.sha256(text.encode()).hexdigest()[:16]}.cube"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lvt-hdr-", suffix=".cube")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    return path
