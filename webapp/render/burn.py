"""Captions burned into the picture: lesson `"captions": {"burnIn": true}`.

A cue is drawn like a subtitle: white text on a translucent dark box (the title panel's
colour, so the contrast stays >= 6:1 even over white), centred horizontally, at most
`MAX_LINES` lines wrapped to `WIDTH_SHARE` of the frame's width. A cue that needs more lines
is drawn smaller, down to `FLOOR_SHARE` of the frame's height, then cut with "…". Text is
shaped like titles (compose.py's TextBlock: runs by font coverage, raqm shaping, right-to-left
lines in visual order), so Thai marks stack and Arabic joins. The box sits a margin above the
bottom of the frame, or, when the segment has a title panel, `GAP_SHARE` of the frame's
height above the panel: never over it.

Where each cue shows is given by `still_spans`, which splits a segment's frames at its cues:
a cue shows from frame round(start x fps) to frame round(end x fps) in lesson time (the times
`Manifest.caption_cues` gives, so the picture agrees with NAME.vtt and the mov_text track
within a frame), and ends no later than the next cue starts; between cues and after the last
one the segment's own picture shows. Each drawn cue is laid over those frames as a layer
(plan.py, frames.LayerFile), on a still segment as on one that moves, so a cue coming or
going costs x264 a few changed blocks, not a new keyframe. Without burn-in a segment's
pieces keep the keys they always had.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

from PIL import Image, ImageDraw

from .compose import (
    PANEL_COLOR,
    TEXT_COLOR,
    TextBlock,
    draw_line,
    ellipsize,
    frame_margin,
)
from .fonts import require_raqm
from .manifest import Manifest, Segment, cues_in_lesson_time, font_chain

MAX_LINES = 2
WIDTH_SHARE = 0.8  # of the frame's width, for the box
SIZE_SHARE = 0.045  # of the frame's height: the text size (the title panel's body size)
FLOOR_SHARE = 0.03  # the smallest size a long cue is shrunk to before it is cut
GAP_SHARE = 0.02  # of the frame's height: between the caption's box and the title panel
MEMO_SIZE = 64  # cue drawings kept per render (the same text at the same size is drawn once)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


class Span(NamedTuple):
    """Frames [start, start + frames) of the output showing one picture: `caption` burned in, or none."""

    start: int
    frames: int
    caption: str | None


def still_spans(manifest: Manifest, seg: Segment, start: int, frames: int) -> list[Span]:
    """The still spans of the segment shown at frames [start, start + frames), split at its cues."""
    if not (manifest.caption_settings.burn_in and seg.captions):
        return [Span(start, frames, None)]
    fps, end = manifest.fps, start + frames
    cues = cues_in_lesson_time(seg, start / fps, end / fps)
    spans, at = [], start
    for i, cue in enumerate(cues):
        first = min(max(round(cue.start * fps), at), end)
        last = min(round(cue.end * fps), end)
        if i + 1 < len(cues):  # a cue ends no later than the next one starts
            last = min(last, round(cues[i + 1].start * fps))
        if last <= first:  # shorter than half a frame: never shown
            continue
        if first > at:
            spans.append(Span(at, first - at, None))
        spans.append(Span(first, last - first, cue.text))
        at = last
    if at < end:
        spans.append(Span(at, end - at, None))
    return spans


@dataclass(frozen=True)
class CaptionLayout:
    """How one cue is drawn at one frame size (before it is placed)."""

    block: TextBlock  # the text's style: the body text's fonts at `block.size` pixels
    lines: tuple[str, ...]  # at most MAX_LINES, the last cut with "…" if the text did not fit
    ascent: int
    line_height: int
    box: tuple[int, int]  # width, height of the dark box


class CaptionPainter:
    """Draws cues for one lesson (its font, its frame size); the last MEMO_SIZE drawings are kept."""

    def __init__(self, manifest: Manifest):
        self.m = manifest
        self.chain = font_chain(manifest, bold=False)
        self._memo: OrderedDict[str, Image.Image] = OrderedDict()

    def layout(self, text: str) -> CaptionLayout:
        """Wrap `text` to the box's width; shrink it while it needs more than MAX_LINES lines, then cut."""
        width, height = self.m.width, self.m.height
        size = max(6, round(height * SIZE_SHARE))
        floor = max(6, round(height * FLOOR_SHARE))
        while True:
            block = TextBlock(self.chain, size)
            max_w = round(width * WIDTH_SHARE) - 2 * _pad_x(size)
            lines = block.wrap(text, max_w)
            if len(lines) <= MAX_LINES or size <= floor:
                break
            size = max(floor, round(size * 0.9))
        if len(lines) > MAX_LINES:
            lines = [*lines[: MAX_LINES - 1], ellipsize(block, lines[MAX_LINES - 1], max_w)]
        text_w = max(block.measure(line) for line in lines)
        asc, desc = block.metrics([block.line(line) for line in lines])
        line_height = round((asc + desc) * 1.05)
        box = (round(text_w) + 2 * _pad_x(size), len(lines) * line_height + 2 * _pad_y(size))
        return CaptionLayout(block, tuple(lines), asc, line_height, box)

    def draw(self, text: str) -> Image.Image:
        """The cue's box with its text, as an RGBA image of the box's size (memoised by text)."""
        image = self._memo.get(text)
        if image is None:
            image = self._memo[text] = self._draw(text)
            if len(self._memo) > MEMO_SIZE:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(text)
        return image

    def _draw(self, text: str) -> Image.Image:
        require_raqm()
        layout = self.layout(text)
        block, (box_w, box_h), pad_y = layout.block, layout.box, _pad_y(layout.block.size)
        # The text's coverage, drawn alone, then laid over the box: exact "over" blending.
        ink = Image.new("RGBA", layout.box, (0, 0, 0, 0))
        draw = ImageDraw.Draw(ink)
        y = pad_y
        for ln in (block.line(line) for line in layout.lines):
            draw_line(draw, ln, block, (box_w - ln.width) / 2, y + layout.ascent)
            y += layout.line_height
        text_layer = Image.new("RGBA", layout.box, TEXT_COLOR)
        text_layer.putalpha(ink.getchannel("A"))
        shade = Image.new("RGBA", layout.box, (0, 0, 0, 0))
        radius = max(1, pad_y // 2)
        ImageDraw.Draw(shade).rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=radius, fill=PANEL_COLOR)
        return Image.alpha_composite(shade, text_layer)


def _pad_x(size: int) -> int:
    return max(2, round(size * 0.5))


def _pad_y(size: int) -> int:
    return max(2, round(size * 0.25))


def caption_box(manifest: Manifest, size: tuple[int, int], panel: Box | None) -> Box:
    """Where a caption box of `size` goes: centred, a margin above the bottom or a gap above `panel`."""
    width, height = manifest.width, manifest.height
    box_w, box_h = size
    bottom = height - frame_margin(width, height)
    if panel is not None:
        bottom = min(bottom, panel[1] - max(2, round(height * GAP_SHARE)))
    x0 = (width - box_w) // 2
    y0 = max(0, bottom - box_h)  # only a frame a few dozen pixels tall has no room above the panel
    return (x0, y0, x0 + box_w, y0 + box_h)
