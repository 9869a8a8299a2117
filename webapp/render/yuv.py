"""Pictures as yuv420p planes (numpy), the form x264 takes: conversion, layers, blends, frames.

Moving segments are generated in YUV rather than RGB: a frame is three planes (Y at full
size, U and V at half size, uint8, BT.709 limited range), so scaling a moving picture touches
half the samples RGB would, and no per-frame RGB -> YUV conversion is needed. RGB pictures
(composed stills, layers, clip pictures) are converted with `encode.picture_to_frame`, the
conversion still pieces use, so a picture looks the same whichever kind of piece shows it.

Layers (the title panel, burned-in captions) are laid over planes as premultiplied YUV:
out = on_black + keep x (plane - black), with `on_black` the layer drawn over black and `keep`
how much of the picture shows through (255 - alpha). Blending is linear in YUV as in RGB
(the conversion is affine), so a crossfade or a fade through black is the same either way.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

BLACK = (16, 128, 128)  # Y, U, V of black (limited range)
COLOR_TAGS = {  # what encode.picture_to_frame converts to
    "dst_colorspace": Colorspace.ITU709,
    "dst_color_range": ColorRange.MPEG,
    "dst_color_primaries": ColorPrimaries.BT709,
    "dst_color_trc": ColorTrc.BT709,
}


@functools.cache
def opencv():
    """OpenCV (warps, blends), imported when first needed: the web app's processes, which load
    the renderer only to check lessons, do without its 16 MB. One thread: renders run in
    parallel processes already, and its own threads would only compete with them."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


class Planes(NamedTuple):
    """One yuv420p picture: y (h x w), u and v (h/2 x w/2), uint8. Treat as read-only: a
    still source hands the same planes out for every frame."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]


Picture = Planes | av.VideoFrame  # a decoded clip's frame is passed on as it is until drawn over


def plane_array(frame: av.VideoFrame, index: int, dtype=np.uint8) -> np.ndarray:
    """A copy of one plane of `frame` without its line padding (np.uint16 for 16-bit formats)."""
    plane = frame.planes[index]
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // np.dtype(dtype).itemsize)
    return rows[:, : plane.width].copy()


def from_picture(picture: Image.Image) -> Planes:
    """An RGB picture (even width and height) as planes: the same conversion as still pieces'
    (encode.picture_to_frame), a third quicker (no copy through Pillow's encoder)."""
    frame = av.VideoFrame.from_ndarray(np.asarray(picture.convert("RGB")), format="rgb24")
    frame = frame.reformat(format="yuv420p", interpolation="BICUBIC", **COLOR_TAGS)
    return Planes(*(plane_array(frame, i) for i in range(3)))


def from_frame(frame: av.VideoFrame) -> Planes:
    """A yuv420p frame's planes (copied)."""
    return Planes(*(plane_array(frame, i) for i in range(3)))


def to_frame(picture: Picture) -> av.VideoFrame:
    """A new yuv420p frame holding the picture's pixels (only those: no frame type, no side
    data of a decoded frame), tagged BT.709 limited range."""
    if isinstance(picture, av.VideoFrame):
        frame = av.VideoFrame(picture.width, picture.height, "yuv420p")
        for i, (plane, source) in enumerate(zip(frame.planes, picture.planes, strict=True)):
            if plane.line_size == source.line_size:
                plane.update(source)
            else:  # rows padded differently (decoders align them to what the CPU's SIMD wants)
                _write(plane, plane_array(picture, i))
    else:
        width, height = picture.size
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, picture, strict=True):
            _write(plane, data)
    frame.colorspace, frame.color_range = Colorspace.ITU709, ColorRange.MPEG
    frame.color_primaries, frame.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
    return frame


def _write(plane, data: np.ndarray) -> None:
    if plane.line_size == plane.width:
        plane.update(np.ascontiguousarray(data))
    else:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        rows[:, : plane.width] = data


def as_planes(picture: Picture) -> Planes:
    """The picture as planes (a yuv420p frame's are copied)."""
    return from_frame(picture) if isinstance(picture, av.VideoFrame) else picture


def to_picture(picture: Picture) -> Image.Image:
    """Back to an RGB picture (for the poster)."""
    rgb = to_frame(picture).reformat(
        format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG
    )
    return rgb.to_image()


def solid(width: int, height: int, yuv: tuple[int, int, int]) -> Planes:
    """Planes of one colour (Y, U, V)."""
    y, u, v = yuv
    half = (height // 2, width // 2)
    return Planes(
        np.full((height, width), y, np.uint8), np.full(half, u, np.uint8), np.full(half, v, np.uint8)
    )


# --------------------------------------------------------------------------------------------
# Layers


class Layer:
    """An RGBA picture laid over planes at (x, y): premultiplied YUV on an even-aligned box."""

    def __init__(self, image: Image.Image, xy: tuple[int, int], frame_size: tuple[int, int]):
        width, height = frame_size
        x, y = xy
        # Even corners, so each chroma sample lies wholly inside or outside the box.
        x0, y0 = max(0, x - x % 2), max(0, y - y % 2)
        x1 = min(width, x + image.width + (x + image.width) % 2)
        y1 = min(height, y + image.height + (y + image.height) % 2)
        self.box = (x0, y0, x1, y1)
        self.empty = x1 <= x0 or y1 <= y0
        if self.empty:
            return
        padded = Image.new("RGBA", (x1 - x0, y1 - y0), (0, 0, 0, 0))
        padded.paste(image.convert("RGBA"), (x - x0, y - y0))
        alpha = np.asarray(padded.getchannel("A"), np.uint16)
        on_black = Image.new("RGB", padded.size, (0, 0, 0))
        on_black.paste(padded, (0, 0), padded)
        planes = from_picture(on_black)
        # keep in 0..256 (256: the picture shows fully); chroma: the mean of its 2x2 samples.
        keep = ((255 - alpha) * 256 + 127) // 255
        keep_c = (keep[0::2, 0::2] + keep[1::2, 0::2] + keep[0::2, 1::2] + keep[1::2, 1::2] + 2) // 4
        self._parts = []
        for data, black, k in zip(planes, BLACK, (keep, keep_c, keep_c), strict=True):
            # out = on_black + keep * (p - black) / 256 = base + keep * p / 256
            base = data.astype(np.int32) * 256 - k.astype(np.int32) * black + 128
            self._parts.append((base, k.astype(np.int32)))

    def over(self, picture: Picture) -> Picture:
        """New planes: the picture with this layer laid over it (the input is not changed)."""
        if self.empty:
            return picture
        planes = as_planes(picture)
        x0, y0, x1, y1 = self.box
        out = []
        for i, (data, (base, keep)) in enumerate(zip(planes, self._parts, strict=True)):
            s = 1 if i == 0 else 2
            region = (slice(y0 // s, y1 // s), slice(x0 // s, x1 // s))
            copy = data.copy()
            mixed = (base + keep * data[region]) >> 8
            copy[region] = np.clip(mixed, 0, 255)
            out.append(copy)
        return Planes(*out)


# --------------------------------------------------------------------------------------------
# Blends between two pictures of one size


def mix(a: Planes, b: Planes, progress: float) -> Planes:
    """Linear blend: `a` at progress 0, `b` at 1 (rounded to the nearest level)."""
    w = min(1.0, max(0.0, progress))
    cv2 = opencv()
    return Planes(*(cv2.addWeighted(pa, 1 - w, pb, w, 0) for pa, pb in zip(a, b, strict=True)))


def toward(a: Planes, yuv: tuple[int, int, int], progress: float) -> Planes:
    """`a` blended toward one colour: unchanged at progress 0, that colour at 1."""
    w = min(1.0, max(0.0, progress))
    cv2 = opencv()
    return Planes(*(cv2.addWeighted(p, 1 - w, p, 0, c * w) for p, c in zip(a, yuv, strict=True)))


def even_offset(progress: float, width: int) -> int:
    """round(progress x width) to an even number of pixels (chroma moves by whole samples)."""
    return min(width, max(0, 2 * round(progress * width / 2)))


def slide_left(a: Planes, b: Planes, progress: float) -> Planes:
    """`a` pushed out to the left by `b` coming in from the right, `progress` of the way."""
    width = a.size[0]
    x = even_offset(progress, width)
    out = []
    for i, (pa, pb) in enumerate(zip(a, b, strict=True)):
        s = 1 if i == 0 else 2
        w, dx = width // s, x // s
        out.append(np.concatenate([pa[:, dx:], pb[:, :dx]], axis=1) if 0 < dx < w else (pb if dx else pa))
    return Planes(*out)


def wipe_left(a: Planes, b: Planes, progress: float) -> Planes:
    """`b` uncovered over `a` from the right edge leftward, `progress` of the way."""
    width = a.size[0]
    edge = width - even_offset(progress, width)
    out = []
    for i, (pa, pb) in enumerate(zip(a, b, strict=True)):
        s = 1 if i == 0 else 2
        e = edge // s
        out.append(np.concatenate([pa[:, :e], pb[:, e:]], axis=1))
    return Planes(*out)


def transition(kind: str, a: Picture, b: Picture, progress: float) -> Planes:
    """One frame of a transition from `a` (the previous segment) to `b`; progress in (0, 1)."""
    a, b = as_planes(a), as_planes(b)
    if kind == "crossfade":
        return mix(a, b, progress)
    if kind == "fade":  # through black: `a` fades out in the first half, `b` in during the second
        if progress < 0.5:
            return toward(a, BLACK, progress * 2)
        return toward(b, BLACK, 2 - progress * 2)
    if kind == "slide-left":
        return slide_left(a, b, progress)
    if kind == "wipe-left":
        return wipe_left(a, b, progress)
    raise ValueError(f"unknown transition {kind!r}")
