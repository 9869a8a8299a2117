"""Compose a segment's picture once with Pillow.

The background image is scaled to cover the frame (centre crop) over the segment's
`background` colour (which also shows through transparent images). The title (bold) and the
body text (wrapped) sit centred in a translucent dark panel near the bottom, so white text
stays legible on any background. Text is split into runs by font coverage (see fonts.py) and
each run is shaped with Pillow's raqm layout (HarfBuzz + FriBiDi), so Thai marks stack
(`ปี่ ฟ้า น้ำ ป่า`) and Arabic joins. Corners of the frame are never covered by the panel.
`title_panel_box` says where the panel goes without drawing it (burn.py keeps burned-in
captions above it); both use one layout function, `_panel`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import PIL
import pillow_heif
from PIL import Image, ImageDraw, features

from .errors import ManifestError
from .fonts import FONT_DIR, FontChain, FontFace, is_mark, require_raqm
from .images import DECODE_ERRORS, IMAGE_FORMATS, draft_size, shown
from .linebreak import head_length
from .manifest import Manifest, Segment, font_chain

# Bump when the layout changes. Pieces are keyed by the picture's own hash, so this only
# guards the memo that maps a segment's inputs to its picture hash (see picture_input_key).
LAYOUT_VERSION = 1

TEXT_COLOR = (255, 255, 255, 255)
PANEL_COLOR = (0, 0, 0, 190)  # white text on it: contrast >= 6:1 even on white
ELLIPSIS = "…"


@dataclass
class _Line:
    runs: list[tuple[str, FontFace]]
    width: float


class TextBlock:
    """Measures and wraps text in one style (chain + size)."""

    def __init__(self, chain: FontChain, size: int):
        self.chain = chain
        self.size = size
        self._widths: dict[str, float] = {}

    def measure(self, text: str) -> float:
        width = self._widths.get(text)
        if width is None:
            width = sum(face.font(self.size).getlength(t) for t, face in self.chain.runs(text))
            self._widths[text] = width
        return width

    def line(self, text: str) -> _Line:
        return _Line(self.chain.runs(text), self.measure(text))

    def wrap(self, text: str, max_width: float) -> list[str]:
        lines: list[str] = []
        for para in text.split("\n"):
            tokens = re.findall(r"\S+|\s+", para.strip())
            current = ""
            for tok in tokens:
                candidate = current + tok
                if self.measure(candidate.rstrip()) <= max_width:
                    current = candidate
                    continue
                if current.strip():
                    lines.append(current.rstrip())
                current = "" if tok.isspace() else tok
                while current and self.measure(current) > max_width:
                    head, current = self._split_word(current, max_width)
                    lines.append(head)
            if current.strip() or not lines or not para.strip():
                lines.append(current.rstrip())
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def _split_word(self, word: str, max_width: float) -> tuple[str, str]:
        """Split an over-long word at the last allowed break that fits (linebreak.head_length)."""
        n = head_length(word, lambda i: self.measure(word[:i]) <= max_width)
        return word[:n], word[n:]

    def metrics(self, lines: list[_Line]) -> tuple[int, int]:
        """(ascent, descent) covering every face used in these lines."""
        faces = {face for ln in lines for _, face in ln.runs} or {self.chain.faces[0]}
        asc = max(face.font(self.size).getmetrics()[0] for face in faces)
        desc = max(face.font(self.size).getmetrics()[1] for face in faces)
        return asc, desc


def ellipsize(block: TextBlock, text: str, max_width: float) -> str:
    while text and block.measure(text + ELLIPSIS) > max_width:
        text = text[:-1]
        while text and is_mark(text[-1]):
            text = text[:-1]
    return text.rstrip() + ELLIPSIS


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """The picture scaled to cover width x height, centre-cropped."""
    iw, ih = img.size
    scale = max(width / iw, height / ih)
    bw, bh = width / scale, height / scale
    box = ((iw - bw) / 2, (ih - bh) / 2, (iw + bw) / 2, (ih + bh) / 2)
    return img.resize((width, height), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _load_background(seg: Segment, width: int, height: int) -> Image.Image:
    base = Image.new("RGB", (width, height), seg.color)
    if seg.image is None:
        return base
    try:
        with Image.open(seg.image, formats=IMAGE_FORMATS) as src:
            src.draft("RGB", draft_size(src, (width, height)))
            img = shown(src, lambda upright: _cover(upright, width, height))
    except DECODE_ERRORS as exc:
        reason = getattr(exc, "strerror", None) or exc  # an OSError's str() has the full path
        raise ManifestError(f"{seg.field}.image", f"cannot decode image ({reason})") from exc
    if img.mode == "RGBA":
        base.paste(img, (0, 0), img)
    else:
        base = img
    return base


def frame_margin(width: int, height: int) -> int:
    """Free space kept between the frame's edges and the title panel (or a burned-in caption)."""
    return max(2, round(min(width, height) * 0.05))


def compose(manifest: Manifest, seg: Segment) -> Image.Image:
    """The segment's picture: an RGB image of the manifest's size."""
    img = _load_background(seg, manifest.width, manifest.height)
    panel = _panel(manifest, seg)
    if panel is not None:
        _draw_panel(img, panel)
    return img


def title_panel_box(manifest: Manifest, seg: Segment) -> tuple[int, int, int, int] | None:
    """Where `compose` draws the segment's title panel, (x0, y0, x1, y1) in pixels; None without one."""
    panel = _panel(manifest, seg)
    return panel.box if panel is not None else None


@dataclass
class _TextLayout:
    """Title and body lines wrapped at one pair of font sizes, with their vertical metrics."""

    title: TextBlock
    body: TextBlock
    title_lines: list[_Line]
    body_lines: list[_Line]
    title_ascent: int
    title_line_height: int
    body_ascent: int
    body_line_height: int
    gap: int  # between the title and the body, when there are both

    @property
    def height(self) -> int:
        return (
            len(self.title_lines) * self.title_line_height
            + self.gap
            + len(self.body_lines) * self.body_line_height
        )


def _fit_text(manifest: Manifest, seg: Segment, max_w: int, max_h: int) -> _TextLayout:
    """Lay out title and body, shrinking both by 10% steps until they fit or reach the smallest size."""
    height = manifest.height
    title_size = max(6, round(height * 0.062))
    body_size = max(6, round(height * 0.045))
    min_size = max(6, round(height * 0.022))
    bold, regular = font_chain(manifest, bold=True), font_chain(manifest, bold=False)
    while True:
        text = _lay_out(seg, TextBlock(bold, title_size), TextBlock(regular, body_size), max_w)
        if text.height <= max_h or body_size <= min_size:
            return text
        title_size = max(min_size, round(title_size * 0.9))
        body_size = max(min_size, round(body_size * 0.9))


def _lay_out(seg: Segment, tb: TextBlock, bb: TextBlock, max_w: int) -> _TextLayout:
    """Wrap the segment's title with `tb` and its text with `bb` to `max_w`."""
    title_lines = [tb.line(t) for t in tb.wrap(seg.title, max_w)] if seg.title else []
    body_lines = [bb.line(t) for t in bb.wrap(seg.text, max_w)] if seg.text else []
    t_asc, t_desc = tb.metrics(title_lines)
    b_asc, b_desc = bb.metrics(body_lines)
    return _TextLayout(
        title=tb,
        body=bb,
        title_lines=title_lines,
        body_lines=body_lines,
        title_ascent=t_asc,
        title_line_height=t_asc + t_desc,
        body_ascent=b_asc,
        body_line_height=round((b_asc + b_desc) * 1.05),
        gap=round(bb.size * 0.45) if title_lines and body_lines else 0,
    )


def _cut_body(text: _TextLayout, max_w: int, max_h: int) -> None:
    """Keep the body lines that fit under the title (at least one), the last ending in an ellipsis."""
    room = max(
        0, (max_h - len(text.title_lines) * text.title_line_height - text.gap) // text.body_line_height
    )
    if room < len(text.body_lines):
        kept = text.body_lines[: max(room, 1)]
        last = "".join(t for t, _ in kept[-1].runs)
        kept[-1] = text.body.line(ellipsize(text.body, last, max_w))
        text.body_lines = kept


@dataclass
class _Panel:
    """The title panel of a segment: its text, laid out, and where it goes."""

    text: _TextLayout
    pad: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


def _panel(manifest: Manifest, seg: Segment) -> _Panel | None:
    """Lay out the segment's title and text in their panel near the bottom; None without text."""
    if not (seg.title or seg.text):
        return None
    require_raqm()
    width, height = manifest.width, manifest.height
    margin = frame_margin(width, height)
    pad = max(2, round(height * 0.025))
    max_w = width - 2 * margin - 2 * pad
    max_h = round(height * 0.62) - 2 * pad
    text = _fit_text(manifest, seg, max_w, max_h)
    text_h = text.height
    if text_h > max_h:  # still too tall at the smallest size: cut the body, mark the cut
        _cut_body(text, max_w, max_h)
        text_h = min(max_h, text.height)
    content_w = max([ln.width for ln in text.title_lines + text.body_lines] or [0])
    panel_w = min(width - 2 * margin, round(content_w) + 2 * pad)
    panel_h = text_h + 2 * pad
    x0 = (width - panel_w) // 2
    y0 = height - margin - panel_h
    return _Panel(text, pad, (x0, y0, x0 + panel_w, y0 + panel_h))


def _draw_panel(img: Image.Image, panel: _Panel) -> None:
    """Draw the translucent panel on `img` where `panel.box` says, and the text on it."""
    text, pad, region = panel.text, panel.pad, panel.box
    panel_w, panel_h = region[2] - region[0], region[3] - region[1]
    overlay = img.crop(region).convert("RGBA")
    shade = Image.new("RGBA", overlay.size, (0, 0, 0, 0))
    ImageDraw.Draw(shade).rounded_rectangle(
        (0, 0, panel_w - 1, panel_h - 1), radius=max(1, pad // 2), fill=PANEL_COLOR
    )
    overlay = Image.alpha_composite(overlay, shade)
    draw = ImageDraw.Draw(overlay)
    y = pad
    for ln in text.title_lines:
        draw_line(draw, ln, text.title, (panel_w - ln.width) / 2, y + text.title_ascent)
        y += text.title_line_height
    y += text.gap
    for ln in text.body_lines:
        draw_line(draw, ln, text.body, (panel_w - ln.width) / 2, y + text.body_ascent)
        y += text.body_line_height
    img.paste(overlay.convert("RGB"), region[:2])


def draw_line(draw: ImageDraw.ImageDraw, line: _Line, block: TextBlock, x: float, baseline: float) -> None:
    runs = line.runs
    if runs and _is_rtl_paragraph("".join(t for t, _ in runs)) and len(runs) > 1:
        runs = list(reversed(runs))  # visual order of runs for a right-to-left line
    for text, face in runs:
        font = face.font(block.size)
        draw.text((x, baseline), text, font=font, fill=TEXT_COLOR, anchor="ls")
        x += font.getlength(text)


def _is_rtl_paragraph(text: str) -> bool:
    for ch in text:
        bidi = unicodedata.bidirectional(ch)
        if bidi in ("R", "AL"):
            return True
        if bidi == "L":
            return False
    return False


_CODE_HASH: str | None = None


def _code_hash() -> str:
    """Hash of the code and bundled fonts that decide how a picture looks."""
    global _CODE_HASH
    if _CODE_HASH is None:
        h = hashlib.sha256()
        here = Path(__file__).resolve().parent
        for name in ("compose.py", "fonts.py", "linebreak.py", "manifest.py", "assets.py", "images.py"):
            h.update((here / name).read_bytes())
        for font in sorted(FONT_DIR.glob("*.ttf")):
            st = font.stat()
            h.update(f"{font.name}:{st.st_size}".encode())
        for lib in ("raqm", "fribidi", "harfbuzz", "freetype2", "littlecms2", "avif"):
            h.update(f"{lib}={features.version(lib)}".encode())
        h.update(f"PIL={PIL.__version__};heif={pillow_heif.__version__};layout={LAYOUT_VERSION}".encode())
        _CODE_HASH = h.hexdigest()
    return _CODE_HASH


def picture_input_key(manifest: Manifest, seg: Segment, file_hash) -> str | None:
    """A key for everything `compose` reads, or None when a system font is involved.

    `file_hash(path)` returns a content hash of a file. The renderer memoises
    input key -> picture hash, so unchanged segments need not be composed again.
    """
    for key, bold in (("title", True), ("text", False)):
        text = getattr(seg, key)
        if text and font_chain(manifest, bold=bold, system_fallback=False).uncovered(text):
            return None
    parts = {
        "code": _code_hash(),
        "size": [manifest.width, manifest.height],
        "image": file_hash(seg.image) if seg.image else None,
        "color": list(seg.color),
        "title": seg.title,
        "text": seg.text,
        "font": file_hash(manifest.font) if manifest.font else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def title_panel_layer(manifest: Manifest, seg: Segment) -> tuple[Image.Image, tuple[int, int]] | None:
    """The title panel as an RGBA layer (straight alpha) and its top-left corner, for pictures
    that move under it; None without a title or text. Laid over any picture it gives what
    `compose` draws there, within a level: the panel is drawn (by `_draw_panel`) over black and
    over white, and the difference is how much of the picture shows through."""
    import numpy as np

    panel = _panel(manifest, seg)
    if panel is None:
        return None
    size = (manifest.width, manifest.height)
    on_black, on_white = Image.new("RGB", size, (0, 0, 0)), Image.new("RGB", size, (255, 255, 255))
    _draw_panel(on_black, panel)
    _draw_panel(on_white, panel)
    black = np.asarray(on_black.crop(panel.box), np.int32)
    white = np.asarray(on_white.crop(panel.box), np.int32)
    alpha = 255 - (white - black).min(axis=2)
    color = np.where(
        alpha[..., None] > 0, (black * 255 + alpha[..., None] // 2) // np.maximum(alpha, 1)[..., None], 0
    )
    rgba = np.dstack([np.clip(color, 0, 255), alpha]).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA"), panel.box[:2]
