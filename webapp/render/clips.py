"""A segment's video clip as RGB pictures at the lesson's frame rate, picked by timestamp.

Frame k of a segment shows the source picture on screen at clip time `clip.start + k/fps`,
counted from the clip's first picture (the stream's start time, so a stream starting at 1.4 s
starts there): the last picture whose presentation time is at or before that time, allowing
one tick of the stream's clock (at most 1 ms) for timestamps the container rounded (Matroska
keeps whole milliseconds). Times are exact fractions computed from k, never by counting
source frames, so a 25 fps, 23.976 fps or variable-rate clip stays in step however long it
runs. From `clip.end` on (and past the clip's real last picture) the last picture shown before
`clip.end` holds: a picture stamped at `clip.end` itself is already past the cut.

Pictures are scaled to cover the frame and centre-cropped, like `image` (compose.py): the
source is cropped to the output's aspect first, then scaled by FFmpeg (crop, scale and the
colour conversion in one filter graph pass; the source's colour matrix and range tags are
honoured, untagged video is read as FFmpeg's default, BT.601). Non-square pixels (a sample
aspect ratio) are honoured, and so is a display matrix turning the picture a quarter or half
turn, mirrored or not (a phone clip filmed upright is stored sideways with "rotate 90"): it is
turned upright first, as players and the ffmpeg command do (other angles show as stored). A
source already upright at the output size is only converted, not scaled. An interlaced source (a
camcorder's 1080i) is deinterlaced, one picture per frame (display.py). An HDR clip (HLG or PQ,
BT.2020, said by its pictures or only by its container) is scaled to 16-bit RGB and tone mapped
to SDR BT.709 per pixel (hdr.py).

A span starting mid-clip seeks to the keyframe at or before its first time and decodes
forward (re-seeking earlier when a container's index lands past it), so it shows exactly the
pictures a full pass would. Decoding uses FFmpeg's threads; pictures come one at a time and
the file is closed when the generator ends, is closed early, or fails.

`clip_frames` gives the same pictures as yuv420p frames (BT.709, limited range: what the
encoder takes), with no RGB in between: 8-bit 4:2:0 BT.601 sources (untagged ones too) are
scaled in their own matrix, then converted by FFmpeg's colorspace filter (the matrix only,
~1.5 ms at 1080p against swscale's ~7, and within a level or two of the RGB route); others
are converted by the scale filter.

Errors: a clip that fails to decode raises ManifestError("<field>.video", reason); an I/O
error while reading it raises TransientRenderError. Neither names a server path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from itertools import pairwise

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image

from . import hdr
from .assets import av_reason, open_input
from .display import buffer_source, progressive, upright
from .effects import Clip
from .errors import ManifestError, RenderError, transient_from_oserror
from .progress import Tick, no_tick
from .yuv import plane_array

# A picture stamped up to one tick of its stream's clock, at most this, after a frame's time
# still counts as on screen then (containers round timestamps to their clock).
MAX_TOLERANCE = Fraction(1, 1000)
TICK_EVERY = 8  # pictures (or 4x as many skipped source frames) between tick() calls
INTERPOLATION = "bilinear"  # FFmpeg's scaler: about half bicubic's time, text stays crisp (bench/)
_FIRST_STEP_BACK = Fraction(1)  # seconds; doubled while a seek lands after the wanted time


def clip_pictures(
    clip: Clip,
    fps: int,
    width: int,
    height: int,
    first: int,
    count: int,
    tick: Tick = no_tick,
    field: str = "segment",
) -> Iterator[Image.Image]:
    """RGB pictures (width x height) for frames first .. first+count-1 of a segment showing `clip`:
    frame k shows the source picture on screen at time clip.start + k/fps (the last source frame whose
    presentation time is <= that time, with a small tolerance for rounding), scaled to cover and centre-
    cropped; from clip.end on (and past the clip's last frame) the last frame before clip.end holds.

    Each picture is a new Image the caller may change. `tick(n)` (n: pictures given so far) is
    called every few frames, also while decoding up to the first; `field` names the segment in
    errors (e.g. "segments[3]")."""
    yield from _clip(clip, fps, (width, height), first, count, tick, field, "rgb24")


def clip_frames(
    clip: Clip,
    fps: int,
    width: int,
    height: int,
    first: int,
    count: int,
    tick: Tick = no_tick,
    field: str = "segment",
) -> Iterator[av.VideoFrame]:
    """The pictures `clip_pictures` gives, as yuv420p frames (BT.709 matrix, limited range).
    A picture that holds is the same frame again: do not change frames."""
    yield from _clip(clip, fps, (width, height), first, count, tick, field, "yuv420p")


def _clip(
    clip: Clip, fps: int, size: tuple[int, int], first: int, count: int, tick: Tick, field: str, fmt: str
):
    if first < 0 or count < 0 or fps <= 0:
        raise ValueError("first and count must be >= 0 and fps > 0")
    if count == 0:
        return
    where = f"{field}.video"
    source = _Source(clip, where, tick)
    try:
        cover = _Cover(*size, source.aspect, fmt, source.colour)
        yield from _pick(source, clip, fps, cover, first, count, tick)
    except RenderError:
        raise
    except OSError as exc:  # PyAV's I/O errors (EIO, a vanished file) are OSErrors too
        raise transient_from_oserror(exc, f"{where}: cannot read the clip") from exc
    except (av.error.FFmpegError, EOFError) as exc:
        raise ManifestError(where, f"cannot decode video ({av_reason(exc)})") from exc
    finally:
        source.close()


def _exact(value: float) -> Fraction:
    """A time from lesson.json as the exact decimal written there (0.1 -> 1/10)."""
    return Fraction(str(value))


def _pick(source: _Source, clip: Clip, fps: int, cover: _Cover, first: int, count: int, tick: Tick):
    start, end = _exact(clip.start), _exact(clip.end)
    tol = source.tolerance

    def due(time: Fraction, t: Fraction) -> bool:
        """Whether a picture at `time` is on screen by clip time `t` (never from `end` on)."""
        return time < end - tol and (t >= end or time <= t + tol)

    t_first = start + Fraction(first, fps)
    frames = source.frames(min(t_first, end), lambda time: due(time, t_first))
    current = next(frames, None)  # the last picture due by the first frame, or the first there is
    if current is None:
        raise ManifestError(source.where, "has no pictures to show")
    pending = next(frames, None)
    picture = None
    for i in range(count):
        t = start + Fraction(first + i, fps)
        moved = False
        while pending is not None and due(pending[0], t):
            current, pending, moved = pending, next(frames, None), True
        if moved or picture is None:
            picture = cover.picture(current[1])
        t_next = t + Fraction(1, fps)
        repeats = i + 1 < count and not (pending is not None and due(pending[0], t_next))
        # The next frame needs it unchanged (frames are never changed by their users).
        yield picture.copy() if repeats and isinstance(picture, Image.Image) else picture
        if (i + 1) % TICK_EVERY == 0:
            tick(i + 1)
    if count % TICK_EVERY:
        tick(count)


class _Source:
    """A clip's decoded pictures in presentation order with their times from its first picture."""

    def __init__(self, clip: Clip, where: str, tick: Tick):
        self.path, self.where, self.tick = clip.path, where, tick
        self.container = None
        self._open()

    def _open(self) -> None:
        try:
            self.container = open_input(self.path, self.where, "video")
        except OSError as exc:
            raise transient_from_oserror(exc, f"{self.where}: cannot read the clip") from exc
        except (av.error.FFmpegError, ValueError) as exc:
            raise ManifestError(self.where, f"not a readable video file ({av_reason(exc)})") from exc
        if not self.container.streams.video:
            raise ManifestError(self.where, "has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.time_base = self.stream.time_base or Fraction(1, 1_000_000)
        self.tolerance = min(self.time_base, MAX_TOLERANCE)
        self.origin = self.stream.start_time  # pts of the first picture; None: read it
        sar = self.stream.sample_aspect_ratio or self.stream.codec_context.sample_aspect_ratio
        self.aspect = Fraction(sar) if sar and sar > 0 else Fraction(1)  # of a pixel
        ctx = self.stream.codec_context  # the container's colour tags (a MOV's colr atom) too
        self.colour = (ctx.color_trc, ctx.color_primaries, ctx.colorspace)
        self.read_any = False

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def frames(
        self, want: Fraction, due: Callable[[Fraction], bool]
    ) -> Iterator[tuple[Fraction, av.VideoFrame]]:
        """(time, frame) from the last picture `due` (on screen at clip time `want`; or the
        first there is) on."""
        back = Fraction(0)
        while True:
            at_start = self._seek(want - back)
            decoded = self._skip_to(due)
            head = next(decoded, None)
            if at_start or (head is not None and due(head[0])):
                if head is not None:
                    yield head
                    yield from decoded
                return
            decoded.close()
            back = max(_FIRST_STEP_BACK, back * 2)  # the index put us after `want`: go back further

    def _seek(self, t: Fraction) -> bool:
        """Position before the keyframe at or before clip time `t`; True if at the clip's start."""
        if t <= 0 or self.origin is None:
            if self.read_any:
                self.close()
                self._open()
            return True
        target = self.origin + math.floor(t / self.time_base)
        try:
            self.container.seek(target, stream=self.stream, backward=True)
        except av.error.FFmpegError:  # a format that cannot seek: decode from the start
            return self._seek(Fraction(0))
        return False

    def _skip_to(self, due: Callable[[Fraction], bool]) -> Iterator[tuple[Fraction, av.VideoFrame]]:
        """Decoded (time, frame), dropping all but the last one `due`."""
        decoded = self._decode()
        held = None
        for n, item in enumerate(decoded, 1):
            if not due(item[0]):
                if held is not None:
                    yield held
                yield item
                yield from decoded
                return
            held = item
            if n % (4 * TICK_EVERY) == 0:
                self.tick(0)
        if held is not None:
            yield held

    def _decode(self) -> Iterator[tuple[Fraction, av.VideoFrame]]:
        self.read_any = True
        last = None
        for frame in progressive(self.container.decode(self.stream)):
            pts = frame.pts
            if pts is None:  # no timestamp: one frame duration after the last
                pts = self._next_pts(last)
            if self.origin is None:
                self.origin = pts
            last = pts
            yield (pts - self.origin) * self.time_base, frame

    def _next_pts(self, last: int | None) -> int:
        if last is None:
            return self.origin if self.origin is not None else 0
        rate = self.stream.average_rate or self.stream.guessed_rate or 30
        return last + max(1, round(1 / (rate * self.time_base)))


class _Cover:
    """Frames scaled to cover `size` and centre-cropped (FFmpeg filter graph), as RGB pictures
    (fmt "rgb24") or yuv420p BT.709 frames (fmt "yuv420p")."""

    def __init__(self, width: int, height: int, aspect: Fraction, fmt: str = "rgb24", colour=(2, 2, 2)):
        self.size, self.aspect, self.fmt = (width, height), aspect, fmt
        self.colour = colour  # the stream's (transfer, primaries, matrix), for untagged frames
        self.key = None
        self.graph = None

    def picture(self, frame: av.VideoFrame) -> Image.Image | av.VideoFrame:
        if frame.color_trc == UNSPECIFIED and self.colour[0] in (hdr.HLG, hdr.PQ):
            frame.color_trc, primaries, matrix = self.colour  # HDR said by the container alone
            if frame.color_primaries == UNSPECIFIED:
                frame.color_primaries = primaries
            if frame.colorspace == UNSPECIFIED:
                frame.colorspace = matrix
        trc = hdr.transfer(frame)
        key = (frame.width, frame.height, frame.format.name, frame.time_base, trc)
        if key != self.key:
            self.key, self.graph = key, self._graph(frame)
        if self.graph is None:
            if self.fmt == "rgb24":
                return _image(frame.reformat(format="rgb24"))
            return frame.reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
            )
        self.graph.push(frame)
        out = self.graph.pull()
        if trc:
            return self._sdr(out, trc, bt709_primaries=frame.color_primaries == BT709_PRIMARIES)
        return _image(out) if self.fmt == "rgb24" else out

    def _sdr(self, scaled: av.VideoFrame, trc: int, bt709_primaries: bool):
        """A scaled HDR picture (gbrp16le) tone mapped (hdr.py), as rgb24 or yuv420p BT.709."""
        green, blue, red = (plane_array(scaled, i, np.uint16) for i in range(3))
        rgb = np.dstack(hdr.to_sdr(red, green, blue, trc, bt709_primaries))
        if self.fmt == "rgb24":
            return Image.fromarray(rgb)
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )

    def _graph(self, frame: av.VideoFrame) -> av.filter.Graph | None:
        """turn upright -> crop -> scale -> rgb24 (or yuv420p BT.709) for frames like `frame`; None
        when that is a plain conversion (upright at the right size already)."""
        turn = upright(frame)
        src_w, src_h, sar = frame.width, frame.height, self.aspect
        if any(name == "transpose" for name, _ in turn):  # a quarter turn: a portrait picture
            src_w, src_h, sar = src_h, src_w, 1 / sar
        crop = cover_crop(src_w, src_h, *self.size, sar)
        width, height = self.size
        full = crop == (src_w, src_h, 0, 0)
        trc = hdr.transfer(frame)
        matrix = self.fmt == "yuv420p" and _bt601(frame) and not trc  # by the colorspace filter
        scaled = (src_w, src_h) != self.size or not full
        if not scaled and not turn and not matrix and not trc:
            return None
        graph = av.filter.Graph()
        chain = [buffer_source(graph, frame, self.aspect)]
        chain += [graph.add(name, args) for name, args in turn]
        if not full:
            chain.append(graph.add("crop", "{}:{}:{}:{}:exact=1".format(*crop)))
        if trc:  # scaled to 16-bit R'G'B' here, tone mapped after (_sdr)
            chain.append(graph.add("scale", f"{width}:{height}:flags={INTERPOLATION}"))
            chain.append(graph.add("format", "gbrp16le"))
        elif scaled or not matrix:  # the conversion to rgb24 (or to BT.709) is the scaler's
            to_yuv = ":out_color_matrix=bt709:out_range=tv" if self.fmt == "yuv420p" and not matrix else ""
            chain.append(graph.add("scale", f"{width}:{height}:flags={INTERPOLATION}{to_yuv}"))
            chain.append(graph.add("format", self.fmt))
        if matrix:
            chain.append(graph.add("colorspace", _BT601_TO_BT709))
        chain.append(graph.add("buffersink"))
        for a, b in pairwise(chain):
            a.link_to(b)
        graph.configure()
        return graph


UNSPECIFIED, BT709_PRIMARIES = 2, 1  # AVColorTransferCharacteristic/AVColorPrimaries values

# BT.601 -> BT.709 by FFmpeg's colorspace filter, the matrix only: about five times quicker
# than swscale's conversion and more exact (within a level or two of converting through RGB).
_BT601_TO_BT709 = (
    "space=bt709:ispace=bt470bg:range=tv:irange=tv:fast=1:"
    "primaries=bt709:iprimaries=bt709:trc=bt709:itrc=bt709"
)


def _bt601(frame: av.VideoFrame) -> bool:
    """8-bit 4:2:0 limited range with the BT.601 matrix: AVColorSpace unspecified (FFmpeg's
    default), BT.470BG or SMPTE 170M; AVColorRange unspecified or MPEG."""
    return frame.format.name == "yuv420p" and frame.colorspace in (2, 5, 6) and frame.color_range in (0, 1)


def _image(frame: av.VideoFrame) -> Image.Image:
    """An rgb24 frame as a Pillow image (one copy; VideoFrame.to_image makes three)."""
    plane = frame.planes[0]
    return Image.frombuffer("RGB", (frame.width, frame.height), plane, "raw", "RGB", plane.line_size, 1)


def cover_crop(
    src_w: int, src_h: int, width: int, height: int, sar: Fraction = Fraction(1)
) -> tuple[int, int, int, int]:
    """(w, h, x, y) of the centred part of a src_w x src_h picture (pixels sar wide) with the
    aspect of width x height: what scaling to cover shows."""
    display_w = src_w * sar
    scale = max(width / display_w, Fraction(height, src_h))
    crop_w = min(src_w, max(1, round(width / scale / sar)))
    crop_h = min(src_h, max(1, round(height / scale)))
    return crop_w, crop_h, (src_w - crop_w) // 2, (src_h - crop_h) // 2
