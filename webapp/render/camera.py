"""A view moving over a segment's image (`motion`): one yuv420p picture per frame.

The image is prepared once per piece: the part the frame covers (centre crop to the frame's
aspect, like compose.py), over the segment's background colour, converted to Y, U, V planes.
Each frame then samples the view (centre and zoom as fractions of that part) with sub-pixel
precision, plane by plane, so the view moves smoothly on every frame (no whole-pixel steps):

- `ZoomCamera` (the zoom changes): the image is kept at its own resolution, but no more than
  the largest zoom needs at this frame size nor MAX_SOURCE_PIXELS, and every frame samples the
  view by one affine warp per plane (OpenCV, bilinear, positions in 1/32 of a pixel; about a
  quarter of a Pillow resize's time). Where a view shrinks the image by more than SHARP_SHRINK
  (a large zoom range), it is blended from two smaller copies of the image around its scale
  (trilinear, like a GPU's mipmaps), so fine detail does not alias and the sharpness changes
  smoothly.
- `PanCamera` (the zoom stays, e.g. the pan presets): the image is scaled once (Lanczos) so
  that the view is exactly the frame's size, and every frame is that picture shifted by a
  fraction of a pixel (bilinear weights in 1/256, one separable OpenCV filter per plane).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from . import yuv
from .effects import Motion, View
from .errors import ManifestError
from .images import DECODE_ERRORS, IMAGE_FORMATS, shown
from .yuv import Planes

MAX_SOURCE_PIXELS = 16_000_000  # a moving image is sampled from at most this many pixels
# Views shrinking the image by up to this much are sampled from it directly (the presets' zooms
# shrink by at most 1.25); beyond, from smaller copies of it too.
SHARP_SHRINK = 1.25
PAD = 2  # pixels of edge copied around a pan's picture, so a shifted view never reads past it


def camera(image: str, color: tuple[int, int, int], motion: Motion, size: tuple[int, int], field: str):
    """The camera for `motion` over the image at frame size `size`."""
    width, height = size
    zoom = max(motion.start.zoom, motion.end.zoom)
    if motion.start.zoom == motion.end.zoom and width * height * zoom * zoom <= MAX_SOURCE_PIXELS:
        return PanCamera(_Loaded(image, color, field), size, zoom)
    least = min(motion.start.zoom, motion.end.zoom)
    return ZoomCamera(_Loaded(image, color, field), size, zoom, least)


class _Loaded:
    """The image's covered part (a box in image pixels) and how to resample it."""

    def __init__(self, path: str, color: tuple[int, int, int], field: str):
        self.path, self.color, self.field = path, color, field

    def covered(self, width: int, height: int, need: int, size_of) -> Image.Image:
        """The covered part as RGB over the background, resized to `size_of(box_w, box_h)` ->
        ((w, h), (box width, box height) actually sampled); `need` is the largest side wanted."""
        try:
            with Image.open(self.path, formats=IMAGE_FORMATS) as src:
                src.draft("RGB", (need, need))  # JPEG: decode at a reduced size when that is plenty
                img = shown(src, lambda upright: _covered_part(upright, width, height, size_of))
        except DECODE_ERRORS as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ManifestError(f"{self.field}.image", f"cannot decode image ({reason})") from exc
        if img.mode == "RGBA":
            under = Image.new("RGB", img.size, self.color)
            under.paste(img, (0, 0), img)
            img = under
        return img


def _covered_part(img: Image.Image, width: int, height: int, size_of) -> Image.Image:
    iw, ih = img.size
    scale = max(width / iw, height / ih)
    bw, bh = width / scale, height / scale  # the covered part, in image pixels
    out, (sw, sh) = size_of(bw, bh)
    x0, y0 = (iw - bw) / 2, (ih - bh) / 2
    return img.resize(out, Image.Resampling.LANCZOS, box=(x0, y0, x0 + sw, y0 + sh), reducing_gap=3.0)


class ZoomCamera:
    """Views sampled from the image at (up to) the resolution the largest zoom needs."""

    def __init__(self, loaded: _Loaded, size: tuple[int, int], zoom: float, least_zoom: float = 1.0):
        width, height = self.size = size

        def size_of(bw: float, bh: float):
            f = min(1.0, zoom * width / bw, math.sqrt(MAX_SOURCE_PIXELS / (bw * bh)))
            return (max(2, 2 * round(bw * f / 2)), max(2, 2 * round(bh * f / 2))), (bw, bh)

        picture = loaded.covered(width, height, math.ceil(max(width, height) * zoom), size_of)
        self.source = picture.size
        # Level n: the planes shrunk by SHARP_SHRINK ** n (Lanczos), as many as the
        # widest view needs, so no level is ever sampled shrinking more than SHARP_SHRINK ** 2.
        self.levels = [yuv.from_picture(picture)]
        most = self.source[0] / (least_zoom * width)  # the most any view shrinks the image
        while most > SHARP_SHRINK ** len(self.levels) and self.levels[-1].y.shape[1] > 8:
            f = SHARP_SHRINK ** -len(self.levels)
            self.levels.append(Planes(*(_shrunk(p, f) for p in self.levels[0])))

    def view(self, view: View) -> Planes:
        """The view: sampled from level 0 while it shrinks the image by at most SHARP_SHRINK; beyond,
        blended from the two levels around it (the sharper one weighing less as it shrinks more)."""
        shrink = self.source[0] / (view.zoom * self.size[0])
        lod = math.log(shrink, SHARP_SHRINK) - 1 if shrink > SHARP_SHRINK else 0.0
        level = min(int(lod), len(self.levels) - 1)
        t = lod - level if level + 1 < len(self.levels) else 0.0
        sharp = self._sample(self.levels[level], view)
        if t < 1 / 512:
            return sharp
        soft = self._sample(self.levels[level + 1], view)
        return yuv.mix(sharp, soft, t)

    def _sample(self, planes: Planes, view: View) -> Planes:
        width, height = self.size
        sw, sh = self.source
        cv2, out = yuv.opencv(), []
        for i, plane in enumerate(planes):
            s = 1 if i == 0 else 2
            ow, oh = width // s, height // s
            fx, fy = plane.shape[1] / sw, plane.shape[0] / sh  # this plane's pixels per source pixel
            kx, ky = fx * sw / view.zoom / ow, fy * sh / view.zoom / oh  # plane pixels per output pixel
            x0 = (view.cx * sw - sw / view.zoom / 2) * fx  # the view's corner in this plane
            y0 = (view.cy * sh - sh / view.zoom / 2) * fy
            # output pixel (X, Y), centre at X + 0.5, shows the plane at x0 + (X + 0.5) * kx - 0.5
            m = np.array([[kx, 0.0, x0 + 0.5 * kx - 0.5], [0.0, ky, y0 + 0.5 * ky - 0.5]])
            out.append(
                cv2.warpAffine(
                    plane,
                    m,
                    (ow, oh),
                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                    borderMode=cv2.BORDER_REPLICATE,
                )
            )
        return Planes(*out)


def _shrunk(plane: np.ndarray, f: float) -> np.ndarray:
    """A plane scaled by f < 1 (Lanczos, antialiased)."""
    size = (max(1, round(plane.shape[1] * f)), max(1, round(plane.shape[0] * f)))
    return np.asarray(Image.fromarray(plane).resize(size, Image.Resampling.LANCZOS))


class PanCamera:
    """Views shifted by fractions of a pixel over the image scaled once to `zoom` x the frame."""

    def __init__(self, loaded: _Loaded, size: tuple[int, int], zoom: float):
        width, height = self.size = size
        self.full = (width * zoom, height * zoom)  # the covered part, in this picture's pixels
        w, h = math.floor(self.full[0]), math.floor(self.full[1])

        def size_of(bw: float, bh: float):
            return (w, h), (bw * w / self.full[0], bh * h / self.full[1])  # exactly full/bw px per px

        picture = np.asarray(loaded.covered(width, height, math.ceil(max(self.full)), size_of))
        pw, ph = w + 2 * PAD + (w % 2), h + 2 * PAD + (h % 2)  # even, room for a shift past the end
        padded = np.pad(picture, ((PAD, ph - h - PAD), (PAD, pw - w - PAD), (0, 0)), mode="edge")
        self.planes = yuv.from_picture(Image.fromarray(padded))

    def view(self, view: View) -> Planes:
        width, height = self.size
        x = view.cx * self.full[0] - width / 2 + PAD  # the view's corner in the padded picture
        y = view.cy * self.full[1] - height / 2 + PAD
        return Planes(
            *(
                _shifted(plane, x / s, y / s, width // s, height // s)
                for plane, s in zip(self.planes, (1, 2, 2), strict=True)
            )
        )


def _shifted(plane: np.ndarray, x: float, y: float, width: int, height: int) -> np.ndarray:
    """plane[y : y + height, x : x + width] at a fractional corner, by bilinear weights (1/256):
    OpenCV's separable filter over the whole-pixel crop one pixel larger (a view of its result)."""
    x0 = min(max(math.floor(x), 0), plane.shape[1] - width - 1)
    y0 = min(max(math.floor(y), 0), plane.shape[0] - height - 1)
    wx, wy = min(max(round((x - x0) * 256), 0), 256), min(max(round((y - y0) * 256), 0), 256)
    src = plane[y0 : y0 + height + 1, x0 : x0 + width + 1]
    kx = np.array([256 - wx, wx], np.float32) / 256
    ky = np.array([256 - wy, wy], np.float32) / 256
    cv2 = yuv.opencv()  # the filter's last row and column (past the crop's edge) are cut off
    out = cv2.sepFilter2D(src, -1, kx, ky, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    return out[:height, :width]
