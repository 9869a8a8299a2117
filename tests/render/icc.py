"""A matrix/TRC ICC profile written from a colour space's primaries (no profile files here), and
the colours such a profile means, as sRGB, computed from the definitions for the tests to compare.

The profile is ICC v2 with D50-adapted colorants (Bradford, as profiles and LittleCMS do) and a
plain gamma curve; so the expected sRGB is the colour's XYZ under D65 put through sRGB's matrix
and curve (the adaptation to D50 and back cancels).
"""

from __future__ import annotations

import struct

import numpy as np

D65 = (0.3127, 0.3290)
DISPLAY_P3 = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))  # Apple's phones and Macs
ADOBE_RGB = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))  # cameras' "Adobe RGB (1998)"
SRGB = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
_D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _xyz(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """Linear RGB -> XYZ (white's Y = 1)."""
    m = np.stack([_xyz(p) for p in primaries], axis=1)
    return m * np.linalg.solve(m, _xyz(white))


def _to_d50(white=D65) -> np.ndarray:
    cone = _BRADFORD @ _xyz(white)
    return np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ _D50) / cone) @ _BRADFORD


def _fixed(values) -> bytes:
    return b"".join(struct.pack(">i", round(float(v) * 65536)) for v in values)


def _xyz_tag(values) -> bytes:
    return b"XYZ " + bytes(4) + _fixed(values)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _assemble(space: bytes, name: str, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2 display profile of colour space `space` (b"RGB ", b"GRAY") with these tags,
    a description and a white point added."""
    text = name.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3 + 67)
    tags = [(b"desc", desc), (b"wtpt", _xyz_tag(_D50)), *tags, (b"cprt", b"text" + bytes(4) + b"none\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (
        struct.pack(">I", offset + len(body))
        + b"none"
        + struct.pack(">I", 0x02100000)
        + b"mntr"
        + space
        + b"XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8 + 4)
        + _fixed(_D50)
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def profile(primaries, gamma: float = 2.2, name: str = "Test RGB", white=D65) -> bytes:
    """An ICC v2 RGB display profile: these primaries and white, one gamma for the three channels."""
    colorants = _to_d50(white) @ rgb_to_xyz(primaries, white)
    curve = _curve(gamma)
    tags = [(b"rXYZ", _xyz_tag(colorants[:, 0])), (b"gXYZ", _xyz_tag(colorants[:, 1]))]
    tags += [(b"bXYZ", _xyz_tag(colorants[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    return _assemble(b"RGB ", name, tags)


def grey_profile(gamma: float, name: str = "Test grey") -> bytes:
    """An ICC v2 grey display profile with this gamma (Photoshop's grey pictures carry one)."""
    return _assemble(b"GRAY", name, [(b"kTRC", _curve(gamma))])


def srgb_encoded(linear) -> np.ndarray:
    """Linear light 0-1 as 8-bit sRGB levels."""
    linear = np.clip(np.asarray(linear, np.float64), 0, 1)
    return np.round(255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055))


def as_srgb(rgb, primaries, gamma: float = 2.2) -> np.ndarray:
    """8-bit colours in the profile's space (`profile(primaries, gamma)`) as 8-bit sRGB, clipped."""
    linear = (np.asarray(rgb, np.float64) / 255) ** gamma
    return srgb_encoded(np.linalg.solve(rgb_to_xyz(SRGB), rgb_to_xyz(primaries) @ linear.T).T)
