"""Encoding with PyAV: video pieces, and the final stream-copy mux.

- A *video piece* is one closed GOP of a still picture: `frames` copies of one composed
  picture, H.264 yuv420p (BT.709, limited range), constant frame rate, in a small MP4.
  Pieces made with the same settings share SPS/PPS, so they can be joined by stream copy.
- The *audio track* (the whole lesson's sound as one AAC stream) is made in audio.py.
- `mux` joins pieces and track into the output MP4 (+faststart) by stream copy;
  `verify` (verify.py) checks the result really decodes and has the right streams and durations.

`tick(n)` callbacks are called often during long loops; they report progress and may raise
(Cancelled) to stop the work (see progress.py).
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pycountry
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

from .errors import RenderError
from .progress import Tick, no_tick
from .settings import RenderSettings
from .verify import top_level_boxes as top_level_boxes  # importable from here, as before


def x264_options(settings: RenderSettings, threads: int) -> dict[str, str]:
    opts = {"preset": settings.preset, "crf": str(settings.crf), "threads": str(threads)}
    if settings.tune:
        opts["tune"] = settings.tune
    params = {"keyint": str(settings.keyint), "open-gop": "0", **settings.x264_params}
    opts["x264-params"] = ":".join(f"{k}={v}" for k, v in params.items())
    return opts


def picture_to_frame(picture: Image.Image) -> av.VideoFrame:
    """RGB picture to a yuv420p frame (BT.709 matrix, limited range, tagged as such)."""
    frame = av.VideoFrame.from_image(picture.convert("RGB"))
    return frame.reformat(
        format="yuv420p",
        dst_colorspace=Colorspace.ITU709,
        dst_color_range=ColorRange.MPEG,
        dst_color_primaries=ColorPrimaries.BT709,
        dst_color_trc=ColorTrc.BT709,
        interpolation="BICUBIC",
    )


def encode_video_piece(
    picture: Image.Image,
    fps: int,
    frames: int,
    settings: RenderSettings,
    dest: Path,
    threads: int = 0,
    tick: Tick = no_tick,
) -> None:
    """Write `frames` frames of `picture` as one closed-GOP H.264 piece (MP4) to `dest`."""
    frame = picture_to_frame(picture)
    encode_frames((frame for _ in range(frames)), picture.size, fps, frames, settings, dest, threads, tick)


def encode_frames(
    frames: Iterable[av.VideoFrame],
    size: tuple[int, int],
    fps: int,
    count: int,
    settings: RenderSettings,
    dest: Path,
    threads: int = 0,
    tick: Tick = no_tick,
) -> None:
    """Write `count` yuv420p frames (BT.709, limited range) as one closed-GOP H.264 piece (MP4)
    to `dest`; every piece, still or moving, is encoded here with the same settings (so all share
    SPS/PPS and join by stream copy). RenderError if `frames` gives another number of frames."""
    with av.open(str(dest), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        cc = stream.codec_context
        cc.time_base = Fraction(1, fps)
        cc.colorspace, cc.color_range = Colorspace.ITU709, ColorRange.MPEG
        cc.color_primaries, cc.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
        cc.options = x264_options(settings, threads)
        i = 0
        for i, frame in enumerate(frames, 1):
            frame.pts = i - 1
            frame.time_base = cc.time_base
            for packet in stream.encode(frame):
                out.mux(packet)
            if i % 8 == 0:
                tick(i)
        if i != count:
            raise RenderError(f"a video piece got {i} frames, expected {count}")
        for packet in stream.encode(None):
            out.mux(packet)
    tick(count)


# --------------------------------------------------------------------------------------------
# Joining by stream copy


@dataclass(frozen=True)
class PieceUse:
    path: Path
    start: int  # first frame in the output
    frames: int


# Opening a piece without decoding its first picture (find_stream_info would, ~25 ms at 1080p).
FAST_OPEN = {"skip_frame": "all"}


def _piece_info(path: Path, fps: int) -> tuple[bytes, int]:
    """(extradata, decode delay in frames) of a video piece."""
    with av.open(str(path), options=FAST_OPEN) as src:
        stream = src.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        min_dts = 0
        for n, packet in enumerate(src.demux(stream)):
            if packet.dts is not None:
                min_dts = min(min_dts, round(packet.dts * packet.time_base * fps))
            if n >= 8:
                break
    return extradata, -min_dts


def mux(
    dest: Path,
    pieces: list[PieceUse],
    audio: Path,
    fps: int,
    title: str = "",
    tick: Tick = no_tick,
    captions: Sequence[tuple[float, float, str]] = (),
    language: str | None = None,
) -> None:
    """Join video pieces (in order) and the audio track into an MP4 with +faststart; with
    `captions` ((start s, end s, text), in order), also a mov_text subtitle track tagged with
    `language` (a BCP 47 tag; written as its ISO 639-2 code, "und" when unknown).

    Video timestamps are rewritten in frame units: pts = first frame of the use + the
    piece's own pts; dts = first frame + decode index - D, with D the largest decode delay
    of all pieces, so dts rise strictly across joins and never exceed pts.
    """
    infos = {path: _piece_info(path, fps) for path in {p.path for p in pieces}}
    if len({e for e, _ in infos.values()}) != 1:
        raise RenderError("cached video pieces have different H.264 parameters; clear the render cache")
    delay = max(d for _, d in infos.values())

    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        if title:
            out.metadata["title"] = title
        with av.open(str(pieces[0].path)) as first:
            vout = out.add_stream_from_template(first.streams.video[0])
        with av.open(str(audio)) as first_audio:
            aout = out.add_stream_from_template(first_audio.streams.audio[0])
        vout.time_base = Fraction(1, fps)
        streams = [_video_packets(pieces, vout, fps, delay), _audio_packets(audio, aout)]
        if captions:
            streams.append(_subtitle_packets(captions, _subtitle_stream(out, language)))
        packets = heapq.merge(*streams, key=lambda x: (x[0], x[1]))
        count = 0
        for _t, _kind, packet in packets:
            out.mux(packet)
            count += 1
            if count % 256 == 0:
                tick(count)
    tick(count)


# The mov_text encoder must be opened with an ASS header (FFmpeg's default one); the packets
# themselves are written here as tx3g samples: a 16-bit length, then the UTF-8 text.
_ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
    "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    "Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
_MS = Fraction(1, 1000)


def iso639_2(tag: str | None) -> str:
    """The ISO 639-2 code MP4 wants for a BCP 47 tag ("th" -> "tha", "pt-BR" -> "por")."""
    primary = (tag or "").split("-")[0].lower()
    found = None
    if len(primary) == 2:
        found = pycountry.languages.get(alpha_2=primary)
    elif len(primary) == 3:
        found = pycountry.languages.get(alpha_3=primary)
    return found.alpha_3 if found is not None else "und"


def _subtitle_stream(out: av.container.OutputContainer, language: str | None):
    stream = out.add_stream("mov_text")
    stream.time_base = _MS
    stream.codec_context.subtitle_header = _ASS_HEADER.encode()
    stream.metadata["language"] = iso639_2(language)
    return stream


def _subtitle_packets(cues, sout) -> Iterator[tuple[float, int, av.Packet]]:
    """One tx3g sample per cue, each ending no later than the next one starts: (start s, 2, packet)."""
    cues = list(cues)
    for i, (start, end, text) in enumerate(cues):
        begin = round(start * 1000)
        finish = round(end * 1000)
        if i + 1 < len(cues):
            finish = min(finish, round(cues[i + 1][0] * 1000))
        if finish <= begin:
            continue
        data = text.encode("utf-8")[:65535]
        packet = av.Packet(struct.pack(">H", len(data)) + data)
        packet.stream = sout
        packet.pts = packet.dts = begin
        packet.duration = finish - begin
        packet.time_base = _MS
        yield begin / 1000, 2, packet


def _video_packets(
    pieces: list[PieceUse], vout: av.VideoStream, fps: int, delay: int
) -> Iterator[tuple[float, int, av.Packet]]:
    """Every piece's packets in order, retimed for `vout` (see mux): (dts in seconds, 0, packet)."""
    frame_tb = Fraction(1, fps)
    for use in pieces:
        with av.open(str(use.path), options=FAST_OPEN) as src:
            stream = src.streams.video[0]
            scale = stream.time_base * fps
            n = 0
            for packet in src.demux(stream):
                if packet.size == 0:
                    continue
                dts = use.start + n - delay
                packet.pts = use.start + round(packet.pts * scale)
                packet.dts = dts
                packet.duration = 1
                packet.time_base = frame_tb
                packet.stream = vout
                n += 1
                yield dts / fps, 0, packet
            if n != use.frames:
                raise RenderError(f"video piece {use.path.name} has {n} frames, expected {use.frames}")


def _audio_packets(audio: Path, aout: av.AudioStream) -> Iterator[tuple[float, int, av.Packet]]:
    """The audio track's packets, for `aout`: (dts in seconds, 1, packet)."""
    with av.open(str(audio)) as src:
        stream = src.streams.audio[0]
        tb = float(stream.time_base)
        for packet in src.demux(stream):
            if packet.size == 0:
                continue
            packet.stream = aout
            yield packet.dts * tb, 1, packet
