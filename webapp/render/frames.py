"""Frames of segments that are not one still picture: moving images, clips, transitions.

A *frame source* is a small picklable description (`Shown`) of a span of one segment's frames
as the output shows them; encoder processes turn it into pictures (`pictures`) and encode
them as one closed-GOP piece (pool.FramesTask). Its `key()` is everything that shapes the
pixels, with files named by content hash (never by path), so it keys the piece in the cache.

- `Look`: how a segment looks on its own at frame k: a base (`StillBase`: a composed picture;
  `MotionBase`: an image seen through a moving view; `ClipBase`: a video clip) under its title
  panel (`LayerFile`, for moving bases; a composed still has it drawn in).
- `Shown`: frames [first, first + count) of a segment's look, with the transition into the
  segment (`Blend`: the previous segment's last frames as *they* are shown, blended with this
  one's first frames) and `overlays` (e.g. burned-in captions) laid over everything last.

Pictures are yuv420p planes (yuv.py). A moving image's frame k shows the view
`Motion.at(k / (frames - 1))` (eased), sampled with sub-pixel precision (camera.py); a clip's
pictures come from clips.clip_frames; a composed still is converted once per piece.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from . import yuv
from .camera import camera
from .clips import clip_frames
from .effects import Clip, Motion
from .progress import Tick, no_tick
from .yuv import Picture, Planes

# Bump when generated frames change for the same inputs (part of every frames piece's key).
FRAMES_VERSION = 1
TICK_EVERY = 8


@dataclass(frozen=True)
class StillBase:
    picture: str  # raw RGB of the composed picture (title panel drawn in), width x height
    digest: str  # sha256 of those bytes

    def key(self) -> dict:
        return {"still": self.digest}


@dataclass(frozen=True)
class MotionBase:
    image: str  # the segment's image file
    digest: str  # its content hash
    color: tuple[int, int, int]  # the background, under transparent parts
    motion: Motion
    field: str  # e.g. "segments[2]", for errors

    def key(self) -> dict:
        views = [[v.cx, v.cy, v.zoom] for v in (self.motion.start, self.motion.end)]
        return {"image": self.digest, "color": list(self.color), "motion": views}


@dataclass(frozen=True)
class ClipBase:
    clip: Clip
    digest: str  # the clip file's content hash
    field: str

    def key(self) -> dict:
        return {"clip": self.digest, "start": self.clip.start, "end": self.clip.end}


@dataclass(frozen=True)
class LayerFile:
    """An RGBA picture laid over frames [first, end) of a segment at (x, y) (end None: to its end)."""

    path: str  # raw RGBA bytes, width x height
    digest: str  # sha256 of the bytes and the size
    width: int
    height: int
    x: int
    y: int
    first: int = 0
    end: int | None = None

    @staticmethod
    def write(folder: Path, image: Image.Image, xy: tuple[int, int], first: int = 0, end: int | None = None):
        """Save an RGBA image into `folder` (named by its content) as a layer."""
        image = image.convert("RGBA")
        raw = image.tobytes()
        digest = hashlib.sha256(f"{image.width}x{image.height}:".encode() + raw).hexdigest()
        path = folder / f"{digest}.rgba"
        if not path.exists():
            path.write_bytes(raw)
        return LayerFile(str(path), digest, image.width, image.height, xy[0], xy[1], first, end)

    def key(self) -> list:
        return [self.digest, self.x, self.y, self.first, self.end]

    def shows(self, k: int) -> bool:
        return self.first <= k and (self.end is None or k < self.end)

    def load(self, frame_size: tuple[int, int]) -> yuv.Layer:
        image = Image.frombytes("RGBA", (self.width, self.height), Path(self.path).read_bytes())
        return yuv.Layer(image, (self.x, self.y), frame_size)


@dataclass(frozen=True)
class Look:
    """How a segment of `frames` frames looks on its own."""

    base: StillBase | MotionBase | ClipBase
    frames: int
    panel: LayerFile | None = None  # the title panel, over a moving base

    def key(self) -> dict:
        key = {"base": self.base.key(), "panel": self.panel.key() if self.panel else None}
        if isinstance(self.base, MotionBase):  # where the view is at frame k depends on the length
            key["frames"] = self.frames
        return key

    @property
    def cost(self) -> float:
        """Work per frame (making and encoding it), in 1080p frames of a still piece (~13 ms):
        a clip's or a moving image's ~45 ms, a blended still's ~30 ms."""
        return 2.5 if isinstance(self.base, StillBase) else 3.5


@dataclass(frozen=True)
class Blend:
    """The transition into a segment: its first `frames` frames blend `previous` into it."""

    kind: str
    frames: int
    previous: Shown  # the previous segment's frames under [first, min(first + count, frames))

    def key(self) -> dict:
        return {"type": self.kind, "frames": self.frames, "previous": self.previous.key()}


@dataclass(frozen=True)
class Shown:
    """Frames [first, first + count) of a segment as the output shows them."""

    look: Look
    first: int
    count: int
    blend: Blend | None = None
    overlays: tuple[LayerFile, ...] = ()

    def key(self) -> dict:
        return {
            "version": FRAMES_VERSION,
            "code": code_hash(),
            "look": self.look.key(),
            "first": self.first,
            "count": self.count,
            "blend": self.blend.key() if self.blend else None,
            "overlays": [o.key() for o in self.overlays],
        }

    @property
    def cost(self) -> float:
        """Work to make and encode this span, in 1080p frames of a still piece."""
        cost = self.look.cost * self.count
        if self.blend is not None:
            cost += self.blend.previous.cost - 2.0 * self.blend.previous.count  # made, not encoded
        return cost

    def files(self) -> Iterator[str]:
        """Every file the span's pictures are made from."""
        base = self.look.base
        if isinstance(base, StillBase):
            yield base.picture
        for layer in (self.look.panel, *self.overlays):
            if layer is not None:
                yield layer.path
        if self.blend is not None:
            yield from self.blend.previous.files()


@functools.cache
def code_hash() -> str:
    """Hash of the code that generates frames (this module, yuv.py, camera.py, clips.py, display.py,
    hdr.py, images.py, assets.py)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in (
        "frames.py",
        "yuv.py",
        "camera.py",
        "clips.py",
        "display.py",
        "hdr.py",
        "images.py",
        "assets.py",
    ):
        path = here / name
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Generating pictures


def pictures(shown: Shown, width: int, height: int, fps: int, tick: Tick = no_tick) -> Iterator[Picture]:
    """The span's pictures, in order. `tick(n)` (n: pictures so far) is called every few pictures
    and while preparing; it may raise (Cancelled) to stop. A picture shown again under the same
    overlays (a still, a held clip frame) is given again as the same object, laid over once, so
    the encoder converts it once too."""
    done = 0

    def check(_n: int) -> None:  # while preparing or seeking: a cancel check, progress unchanged
        tick(done)

    own = _look_pictures(shown.look, shown.first, shown.count, (width, height), fps, check)
    blend, prev = shown.blend, None
    if blend is not None and shown.first < blend.frames:
        prev = pictures(blend.previous, width, height, fps, check)
    overlays = [(o, o.load((width, height))) for o in shown.overlays]
    last = (None, (), None)  # (picture, the overlays shown on it, the result): a still is laid over once
    try:
        for i in range(shown.count):
            k = shown.first + i
            picture = next(own)
            if prev is not None and k < blend.frames:
                picture = yuv.transition(blend.kind, next(prev), picture, (k + 1) / (blend.frames + 1))
            on = tuple(layer for desc, layer in overlays if desc.shows(k))
            if on and picture is last[0] and on == last[1]:
                picture = last[2]
            elif on:
                laid = picture
                for layer in on:
                    laid = layer.over(laid)
                last, picture = (picture, on, laid), laid
            yield picture
            done = i + 1
            if done % TICK_EVERY == 0:
                tick(done)
    finally:
        own.close()
        if prev is not None:
            prev.close()


def _look_pictures(
    look: Look, first: int, count: int, size: tuple[int, int], fps: int, tick: Tick
) -> Iterator[Picture]:
    """Frames first .. first + count - 1 of the look: its base under its panel."""
    base = look.base
    if isinstance(base, StillBase):
        raw = Path(base.picture).read_bytes()
        still = yuv.from_picture(Image.frombytes("RGB", size, raw))
        source = (still for _ in range(count))
    elif isinstance(base, MotionBase):
        source = _motion_pictures(base, look.frames, first, count, size, tick)
    else:
        source = _clip_pictures(base, fps, first, count, size, tick)
    panel = look.panel.load(size) if look.panel is not None else None
    try:
        for picture in source:
            yield panel.over(picture) if panel is not None else picture
    finally:
        source.close()


def _motion_pictures(
    base: MotionBase, frames: int, first: int, count: int, size: tuple[int, int], tick: Tick
) -> Iterator[Planes]:
    view = camera(base.image, base.color, base.motion, size, base.field)
    tick(0)
    for k in range(first, first + count):
        yield view.view(base.motion.at(k / (frames - 1) if frames > 1 else 0.0))


def _clip_pictures(
    base: ClipBase, fps: int, first: int, count: int, size: tuple[int, int], tick: Tick
) -> Iterator[Picture]:
    """The clip's yuv420p frames as they come (copied once, when encoded or drawn over)."""
    yield from clip_frames(base.clip, fps, size[0], size[1], first, count, tick, field=base.field)
