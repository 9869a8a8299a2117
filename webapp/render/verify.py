"""Check a joined output before it is moved into place: streams, frames, durations, decoding, faststart.

`verify` raises RenderError (one line) when the output is wrong and returns what it measured.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av

from .errors import RenderError
from .progress import Tick, no_tick


@dataclass
class OutputFacts:
    video_frames: int
    video_duration: float
    audio_duration: float
    duration: float
    width: int
    height: int
    pix_fmt: str
    faststart: bool


def top_level_boxes(path: Path, limit: int = 16) -> list[str]:
    """Names of the first top-level MP4 boxes (to check moov comes before mdat)."""
    names = []
    size_total = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= size_total and len(names) < limit:
            f.seek(offset)
            header = f.read(16)
            size, name = struct.unpack(">I4s", header[:8])
            if size == 1:
                (size,) = struct.unpack(">Q", header[8:16])
            elif size == 0:
                size = size_total - offset
            names.append(name.decode("latin-1"))
            if size < 8:
                break
            offset += size
    return names


def verify(
    path: Path,
    *,
    frames: int,
    fps: int,
    width: int,
    height: int,
    keyframes: set[int] | None = None,
    tick: Tick = no_tick,
) -> OutputFacts:
    """Check the output before it is moved into place; raise RenderError if it is wrong.

    Demuxes everything (frame count, timestamps, durations), decodes keyframes (those at the
    frame numbers in `keyframes`, e.g. the pieces encoded just now; all if None; always the
    first), decodes the first and last audio packets, and checks moov precedes mdat.
    """
    _require_faststart(path)
    with av.open(str(path)) as container:
        video, audio = _require_streams(container)
        scan = _scan_packets(container, video, audio, fps, (width, height), keyframes, tick)
        _require_frames(scan, frames)
        video_duration, audio_duration = _require_durations(video, audio, scan.video_frames, frames, fps)
        if container.duration:
            duration = container.duration / av.time_base
        else:
            duration = max(video_duration, audio_duration)
        return OutputFacts(
            video_frames=scan.video_frames,
            video_duration=video_duration,
            audio_duration=audio_duration,
            duration=duration,
            width=video.width,
            height=video.height,
            pix_fmt=video.format.name,
            faststart=True,  # _require_faststart passed
        )


# Decoding this many frames at the start of the audio track and this many packets at its end
# shows the track decodes without decoding all of it.
AUDIO_CHECK_COUNT = 16


@dataclass
class _PacketScan:
    """What one pass over the output's packets found."""

    video_frames: int = 0
    last_frame: int = -1  # the largest video pts, in frames
    video_decoded: int = 0  # pictures decoded from the keyframes checked
    audio_decoded: int = 0  # audio frames decoded from the start and the end of the track


def _require_faststart(path: Path) -> None:
    """Raise RenderError unless the moov box comes before mdat."""
    boxes = top_level_boxes(path)
    if not ("moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")):
        raise RenderError(f"output is not faststart (boxes {boxes})")


def _require_streams(container: av.container.InputContainer) -> tuple[av.VideoStream, av.AudioStream]:
    """The output's only video stream (H.264 yuv420p) and only audio stream, or RenderError."""
    if len(container.streams.video) != 1 or len(container.streams.audio) != 1:
        raise RenderError("output must have one video and one audio stream")
    video, audio = container.streams.video[0], container.streams.audio[0]
    if video.codec_context.name != "h264" or video.format is None or video.format.name != "yuv420p":
        raise RenderError("output video is not H.264 yuv420p")
    return video, audio


def _scan_packets(
    container: av.container.InputContainer,
    video: av.VideoStream,
    audio: av.AudioStream,
    fps: int,
    size: tuple[int, int],
    keyframes: set[int] | None,
    tick: Tick,
) -> _PacketScan:
    """Demux every packet once: count video frames, decode the chosen keyframes and both audio ends."""
    video_codec, audio_codec = video.codec_context, audio.codec_context
    video_codec.skip_frame = "NONKEY"
    to_frames = video.time_base * fps
    scan = _PacketScan()
    tail: list[av.Packet] = []
    for n, packet in enumerate(container.demux(video, audio)):
        if not packet.size:
            continue
        if packet.stream_index == video.index:
            scan.video_frames += 1
            pts = round(packet.pts * to_frames)
            scan.last_frame = max(scan.last_frame, pts)
            if packet.is_keyframe and (keyframes is None or pts == 0 or pts in keyframes):
                scan.video_decoded += _decode_keyframe(video_codec, packet, size)
        else:
            if scan.audio_decoded < AUDIO_CHECK_COUNT:
                scan.audio_decoded += len(audio_codec.decode(packet))
            tail.append(packet)
            del tail[:-AUDIO_CHECK_COUNT]
        if n % 512 == 0:
            tick(n)
    scan.video_decoded += len(video_codec.decode(None))
    scan.audio_decoded += sum(len(audio_codec.decode(p)) for p in tail)
    return scan


def _decode_keyframe(codec: av.VideoCodecContext, packet: av.Packet, size: tuple[int, int]) -> int:
    """Decode one keyframe packet: how many pictures it gave; RenderError if one has the wrong size."""
    decoded = 0
    for frame in codec.decode(packet):
        decoded += 1
        if (frame.width, frame.height) != size:
            raise RenderError("output frame size is wrong")
    return decoded


def _require_frames(scan: _PacketScan, frames: int) -> None:
    """Raise RenderError unless both streams decode and the video has exactly `frames` frames."""
    if scan.video_decoded == 0 or scan.audio_decoded == 0:
        raise RenderError("output does not decode")
    if scan.video_frames != frames or scan.last_frame != frames - 1:
        raise RenderError(f"output has {scan.video_frames} video frames, expected {frames}")


def _require_durations(
    video: av.VideoStream, audio: av.AudioStream, video_frames: int, frames: int, fps: int
) -> tuple[float, float]:
    """(video, audio) durations in seconds; RenderError unless both match `frames` at `fps`."""
    expected = frames / fps
    video_duration = float(video.duration * video.time_base) if video.duration else video_frames / fps
    audio_duration = float(audio.duration * audio.time_base) if audio.duration else 0.0
    if abs(video_duration - expected) > 0.5 / fps + 1e-6:
        raise RenderError(f"output video lasts {video_duration:.3f} s, expected {expected:.3f} s")
    if abs(audio_duration - expected) > 0.020:
        raise RenderError(f"output audio lasts {audio_duration:.3f} s, expected {expected:.3f} s")
    return video_duration, audio_duration
