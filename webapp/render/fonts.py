"""Fonts: the bundled defaults, character coverage, and the fallback chain.

No single font covers every script (Noto Sans has no Thai, Noto Sans Thai has no Latin), so
text is split into runs, each drawn with the first font of the chain that has its glyphs.
Coverage is read from the font's own `cmap` table (parsed here, no extra dependency).

Chain, in order: the lesson's `font` (if any), the bundled Noto Sans, Noto Sans Thai and
Noto Sans Arabic, then any system font fontconfig finds for a character nothing else covers
(for CJK and other scripts we do not bundle).
"""

from __future__ import annotations

import bisect
import functools
import shutil
import struct
import subprocess
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ImageFont, features

from .errors import RenderEnvironmentError

FONT_DIR = Path(__file__).resolve().parent / "fonts"
BUNDLED_REGULAR = ("NotoSans-Regular.ttf", "NotoSansThai-Regular.ttf", "NotoSansArabic-Regular.ttf")
BUNDLED_BOLD = ("NotoSans-Bold.ttf", "NotoSansThai-Bold.ttf", "NotoSansArabic-Bold.ttf")


def raqm_problem() -> str | None:
    """Why complex text layout is unavailable, or None when Pillow's raqm works."""
    if features.check("raqm"):
        return None
    fribidi = features.check("fribidi")
    hint = "" if fribidi else " (install the system package libfribidi0)"
    return (
        "Pillow cannot shape text: its raqm layout is unavailable"
        f"{hint}; refusing to render Thai/Arabic text with broken marks"
    )


def require_raqm() -> None:
    problem = raqm_problem()
    if problem:
        raise RenderEnvironmentError(problem)


class FontFileError(ValueError):
    """Not a TrueType/OpenType font we can read."""


def _parse_cmap(data: bytes, index: int = 0) -> list[tuple[int, int]]:
    """Sorted, merged (first, last) code point ranges that map to a real glyph."""
    if data[:4] == b"ttcf":
        (count,) = struct.unpack_from(">I", data, 8)
        if index >= count:
            raise FontFileError("font collection index out of range")
        (base,) = struct.unpack_from(">I", data, 12 + 4 * index)
    else:
        base = 0
    (num_tables,) = struct.unpack_from(">H", data, base + 4)
    cmap_off = None
    for i in range(num_tables):
        tag, _checksum, offset, _length = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
        if tag == b"cmap":
            cmap_off = offset
    if cmap_off is None:
        raise FontFileError("font has no cmap table")
    _version, n = struct.unpack_from(">HH", data, cmap_off)
    subtables = {}
    for i in range(n):
        pid, eid, off = struct.unpack_from(">HHI", data, cmap_off + 4 + 8 * i)
        subtables[(pid, eid)] = cmap_off + off
    for key in ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0)):
        if key in subtables:
            ranges = _parse_subtable(data, subtables[key])
            if ranges is not None:
                return _merge(ranges)
    raise FontFileError("font has no Unicode cmap")


def _parse_subtable(data: bytes, off: int) -> list[tuple[int, int]] | None:
    """Code point ranges with a glyph in the cmap subtable at `off`; None for an unsupported format."""
    (fmt,) = struct.unpack_from(">H", data, off)
    parse = _SUBTABLE_FORMATS.get(fmt)
    return parse(data, off) if parse else None


def _format12_ranges(data: bytes, off: int) -> list[tuple[int, int]]:
    (ngroups,) = struct.unpack_from(">I", data, off + 12)
    out = []
    for g in range(ngroups):
        start, end, glyph = struct.unpack_from(">III", data, off + 16 + 12 * g)
        if glyph == 0:
            start += 1
        if start <= end:
            out.append((start, end))
    return out


def _format4_ranges(data: bytes, off: int) -> list[tuple[int, int]]:
    (seg_x2,) = struct.unpack_from(">H", data, off + 6)
    segs = seg_x2 // 2
    ends = struct.unpack_from(f">{segs}H", data, off + 14)
    starts = struct.unpack_from(f">{segs}H", data, off + 16 + seg_x2)
    deltas = struct.unpack_from(f">{segs}h", data, off + 16 + 2 * seg_x2)
    ro_base = off + 16 + 3 * seg_x2
    range_offsets = struct.unpack_from(f">{segs}H", data, ro_base)
    out: list[tuple[int, int]] = []
    for i in range(segs):
        start, end = starts[i], ends[i]
        if start == 0xFFFF:
            continue
        if range_offsets[i] == 0:
            out += _delta_segment_ranges(start, end, deltas[i])
        else:
            # idRangeOffset is relative to its own slot in the array
            out += _glyph_array_ranges(data, ro_base + 2 * i + range_offsets[i], start, end, deltas[i])
    return out


def _delta_segment_ranges(start: int, end: int, delta: int) -> list[tuple[int, int]]:
    """Ranges of a format-4 segment mapped by delta alone: glyph = (c + delta) & 0xFFFF."""
    # Only one code point can map to glyph 0.
    zero = (-delta) & 0xFFFF
    if not start <= zero <= end:
        return [(start, end)]
    out = []
    if start < zero:
        out.append((start, zero - 1))
    if zero < end:
        out.append((zero + 1, end))
    return out


def _glyph_array_ranges(data: bytes, base: int, start: int, end: int, delta: int) -> list[tuple[int, int]]:
    """Ranges of a format-4 segment mapped through the glyph array at `base` (for `start`)."""
    out = []
    run_start = None
    for c in range(start, end + 1):
        addr = base + 2 * (c - start)
        (glyph,) = struct.unpack_from(">H", data, addr) if addr + 2 <= len(data) else (0,)
        if glyph:
            glyph = (glyph + delta) & 0xFFFF
        if glyph and run_start is None:
            run_start = c
        elif not glyph and run_start is not None:
            out.append((run_start, c - 1))
            run_start = None
    if run_start is not None:
        out.append((run_start, end))
    return out


def _format6_ranges(data: bytes, off: int) -> list[tuple[int, int]]:
    first, count = struct.unpack_from(">HH", data, off + 6)
    glyphs = struct.unpack_from(f">{count}H", data, off + 10)
    return [(first + i, first + i) for i, g in enumerate(glyphs) if g]


_SUBTABLE_FORMATS = {12: _format12_ranges, 4: _format4_ranges, 6: _format6_ranges}


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    ranges.sort()
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class FontFace:
    """One font file (and face index in a collection) with its character coverage."""

    path: str
    index: int
    starts: tuple[int, ...] = field(repr=False)
    ends: tuple[int, ...] = field(repr=False)

    def covers(self, ch: str) -> bool:
        cp = ord(ch)
        i = bisect.bisect_right(self.starts, cp) - 1
        return i >= 0 and cp <= self.ends[i]

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        return _truetype(self.path, self.index, size)


@functools.lru_cache(maxsize=64)
def load_face(path: str, index: int = 0) -> FontFace:
    """Read a font's coverage; raises FontFileError if it is not a usable font."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FontFileError(f"cannot read font ({exc.strerror})") from exc
    try:
        ranges = _parse_cmap(data, index)
    except (struct.error, IndexError) as exc:
        raise FontFileError("not a TrueType/OpenType font") from exc
    try:
        ImageFont.truetype(path, 12, index=index)
    except OSError as exc:
        raise FontFileError(f"FreeType cannot load it ({exc})") from exc
    return FontFace(path, index, tuple(a for a, _ in ranges), tuple(b for _, b in ranges))


@functools.lru_cache(maxsize=256)
def _truetype(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(path, size, index=index, layout_engine=layout)


def bundled_faces(bold: bool = False) -> list[FontFace]:
    names = BUNDLED_BOLD if bold else BUNDLED_REGULAR
    return [load_face(str(FONT_DIR / n)) for n in names]


@functools.lru_cache(maxsize=1024)
def system_face_for(ch: str) -> FontFace | None:
    """A system font (via fontconfig's fc-list) covering `ch`, or None."""
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return None
    try:
        out = subprocess.run(
            [fc_list, f":charset={ord(ch):x}", "file", "index"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    candidates = []
    for line in out.splitlines():
        path, _, rest = line.partition(":")
        idx = rest.split("index=")[-1].strip().rstrip(":") if "index=" in rest else "0"
        if path.lower().endswith((".ttf", ".otf", ".ttc", ".otc")):
            candidates.append((path.strip(), int(idx) if idx.isdigit() else 0))
    # Prefer regular sans faces for a predictable look.
    candidates.sort(key=lambda c: (("Bold" in c[0]) or ("Italic" in c[0]), "Sans" not in c[0], c))
    for path, idx in candidates:
        try:
            face = load_face(path, idx)
        except FontFileError:
            continue
        if face.covers(ch):
            return face
    return None


def is_mark(ch: str) -> bool:
    """Characters that must stay in the run of the character before them."""
    cat = unicodedata.category(ch)
    return cat in ("Mn", "Mc", "Me") or ch in "\u200c\u200d" or 0xFE00 <= ord(ch) <= 0xFE0F


def is_neutral(ch: str) -> bool:
    """Spaces, punctuation, digits, symbols: keep them in the current run when possible."""
    cat = unicodedata.category(ch)
    return not cat.startswith("L") and not is_mark(ch)


class FontChain:
    """Pick, for each character, the first face of the chain that covers it."""

    def __init__(self, faces: list[FontFace], system_fallback: bool = True):
        self.faces = list(faces)
        self.system_fallback = system_fallback
        self.system_faces: list[FontFace] = []  # system fonts `covers` has found so far

    def face_for(self, ch: str) -> FontFace | None:
        for face in self.faces:
            if face.covers(ch):
                return face
        if self.system_fallback:
            face = system_face_for(ch)
            if face is not None:
                return face
        return None

    def covers(self, ch: str) -> bool:
        """Whether some face has a glyph for `ch` (controls, spaces and marks need none)."""
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or ch.isspace() or is_mark(ch):
            return True
        if any(face.covers(ch) for face in self.faces):
            return True
        if not self.system_fallback:
            return False
        # Asking fontconfig starts a process (~10 ms); a system font found for one character
        # usually covers its script, so thousands of distinct characters cost a few look-ups.
        if any(face.covers(ch) for face in self.system_faces):
            return True
        face = system_face_for(ch)
        if face is None:
            return False
        self.system_faces.append(face)
        return True

    def uncovered(self, text: str) -> list[str]:
        """Characters no face covers (ignoring controls, marks and format characters)."""
        return [ch for ch in dict.fromkeys(text) if not self.covers(ch)]

    def runs(self, text: str) -> list[tuple[str, FontFace]]:
        """Split `text` into (substring, face) runs; marks and neutrals join their neighbour."""
        runs: list[list] = []
        for ch in text:
            current = runs[-1][1] if runs else None
            if current is not None and (is_mark(ch) or (is_neutral(ch) and current.covers(ch))):
                runs[-1][0] += ch
                continue
            face = self.face_for(ch)
            if face is None:
                face = current or self.faces[0]
            if current is not None and face == current:
                runs[-1][0] += ch
            else:
                runs.append([ch, face])
        return [(t, f) for t, f in runs]


def uncovered(
    texts: Iterable[tuple[str, str, str]], chains: dict[str, FontChain]
) -> Iterator[tuple[str, list[str]]]:
    """For each (where, style, text) with characters no font of chains[style] covers: (where, the
    first three of them, in reading order). Each distinct character is looked up once per call."""
    covered: dict[str, set[str]] = {key: set() for key in chains}
    for where, key, text in texts:
        chain = chains[key]
        for ch in set(text) - covered[key]:
            if not chain.covers(ch):
                break
            covered[key].add(ch)
        else:
            continue
        missing = []
        for ch in dict.fromkeys(text):
            if ch not in covered[key] and not chain.covers(ch):
                missing.append(ch)
                if len(missing) == 3:
                    break
        yield where, missing
