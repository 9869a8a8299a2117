"""A clip's decoded pictures as players show them, by FFmpeg filters: turned as the file's display
matrix says (a phone's "rotate 90"), and deinterlaced (a camcorder's 1080i)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise

import av
from av.sidedata.sidedata import Type as SideDataType

# w3fdif (BBC's Weston 3-field), a picture per frame; FFmpeg 8's bwdif and yadif leave the
# first one combed.
DEINTERLACE = "mode=frame:parity=auto:deint=interlaced"


def upright(frame: av.VideoFrame) -> list[tuple[str, str]]:
    """The filters (name, arguments) that show `frame` as its display matrix asks, as the ffmpeg
    command's autorotate picks them: a quarter turn by `transpose` (mirrored or not), a half turn
    or a mirror by `hflip`/`vflip`; none without a matrix or for an angle that is not a quarter turn."""
    side_data = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    if side_data is None:
        return []
    matrix = struct.unpack("=9i", bytes(side_data))
    theta = -frame.rotation % 360  # clockwise degrees, 0 <= theta < 360
    if theta == 90:
        return [("transpose", "cclock_flip" if matrix[3] > 0 else "clock")]
    if theta == 270:
        return [("transpose", "clock_flip" if matrix[3] < 0 else "cclock")]
    if theta == 180:
        return [(name, "") for name, flip in (("hflip", matrix[0] < 0), ("vflip", matrix[4] < 0)) if flip]
    return [("vflip", "")] if theta == 0 and matrix[4] < 0 else []


def progressive(frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    """Decoded pictures with those of an interlaced source (a camcorder's 1080i, a broadcast)
    deinterlaced by FFmpeg's w3fdif: one picture per frame, at the frame's own time, without the
    comb its two fields make where something moves. From the first frame marked interlaced on
    (frames not marked so pass as they are); a progressive source is not touched."""
    graph = None
    for frame in frames:
        if graph is None and not frame.interlaced_frame:
            yield frame
            continue
        if graph is None:
            graph, time_base = av.filter.Graph(), frame.time_base
            chain = [buffer_source(graph, frame), graph.add("w3fdif", DEINTERLACE), graph.add("buffersink")]
            for a, b in pairwise(chain):
                a.link_to(b)
            graph.configure()
        graph.push(frame)
        yield from _pulled(graph, time_base)
    if graph is not None:
        graph.push(None)  # one frame is held back: the last comes out at the end
        yield from _pulled(graph, time_base)


def _pulled(graph: av.filter.Graph, time_base: Fraction) -> Iterator[av.VideoFrame]:
    """What the graph gives now, timed in `time_base` again (w3fdif counts in half its units)."""
    while True:
        try:
            out = graph.pull()
        except (BlockingIOError, EOFError):  # wants more input / has given everything
            return
        if out.pts is not None:
            out.pts = round(out.pts * out.time_base / time_base)
        out.time_base = time_base
        yield out


def buffer_source(graph: av.filter.Graph, frame: av.VideoFrame, sar: Fraction = Fraction(1)):
    """A filter graph's input for frames like `frame` (pixels `sar` wide)."""
    return graph.add(
        "buffer",
        video_size=f"{frame.width}x{frame.height}",
        pix_fmt=str(int(av.VideoFormat(frame.format.name))),
        time_base=str(frame.time_base or Fraction(1, 1000)),
        pixel_aspect=f"{sar.numerator}/{sar.denominator}",
    )
