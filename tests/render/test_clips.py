"""A segment's video clip as lesson frames (clips.clip_pictures): picked by timestamp, seeking
exactly, holding the last frame, scaled to cover; real H.264 files decoded with PyAV."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from webapp.render.assets import probe_clip
from webapp.render.clips import clip_pictures, cover_crop
from webapp.render.effects import Clip
from webapp.render.errors import Cancelled, ManifestError, TransientRenderError
from webapp.render.sample import clip_frame_color, write_clip

W, H = 320, 180  # the lesson's frame in these tests


def write_source(
    path: Path,
    frames: int,
    rate: Fraction | int,
    size: tuple[int, int] = (W, H),
    fmt: str = "mp4",
    x264: str | None = None,
    first_pts: int = 0,
    picture=None,
) -> Path:
    """Like sample.write_clip (frame n: colour clip_frame_color(n), white bar at x = n), with a
    choice of rate, container, x264 parameters and first timestamp (in 1/rate units)."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "12"} | (
            {"x264-params": x264} if x264 else {}
        )
        for n in range(frames):
            frame = av.VideoFrame.from_image((picture or bar_picture)(n, size))
            frame.pts = first_pts + n
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def bar_picture(n: int, size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, clip_frame_color(n))
    ImageDraw.Draw(img).rectangle((n % size[0], 0, n % size[0] + 7, size[1] - 1), fill=(255, 255, 255))
    return img


def make_clip(path: Path, start: float = 0.0, end: float | None = None) -> Clip:
    info = probe_clip(path, "segments[0].video")
    return Clip(path, start, info.duration if end is None else end, 1.0, info)


def source_pictures(path: Path) -> list[Image.Image]:
    """Every picture of the file in presentation order, decoded plainly from the start."""
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def covered(img: Image.Image, size=(W, H)) -> Image.Image:
    """`img` scaled to cover `size` and centre-cropped, the way compose.py treats an image."""
    iw, ih = img.size
    scale = max(size[0] / iw, size[1] / ih)
    bw, bh = size[0] / scale, size[1] / scale
    box = ((iw - bw) / 2, (ih - bh) / 2, (iw + bw) / 2, (ih + bh) / 2)
    return img.resize(size, Image.Resampling.LANCZOS, box=box)


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def read_index(img: Image.Image, scale: float = 1.0, crop_x: float = 0.0) -> int:
    """The source frame number a picture shows: n mod 180 from its colour, n from the bar."""
    row = np.asarray(img, dtype=np.int16)[img.height // 2]
    white = np.flatnonzero((row > 240).all(axis=1))
    near_bar = np.zeros(len(row), bool)
    for x in white:
        near_bar[max(0, x - 4) : x + 5] = True
    colour = np.median(row[~near_bar], axis=0)
    palette = np.array([clip_frame_color(n) for n in range(180)])
    by_colour = int(np.argmin(np.abs(palette - colour).sum(axis=1)))
    if not len(white):
        return by_colour
    by_bar = white[0] / scale + crop_x
    return by_colour + 180 * round((by_bar - by_colour) / 180)


def expected_index(k: int, fps: int, rate: Fraction, start: Fraction = Fraction(0)) -> int:
    return math.floor((start + Fraction(k, fps)) * rate)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "30": write_clip(d / "30.mp4", 2.0, 30, (W, H), None),
        "25": write_source(d / "25.mp4", 265, 25, x264="keyint=25"),
        "60": write_source(d / "60.mp4", 180, 60),
        "ntsc": write_source(d / "ntsc.mp4", 60, Fraction(24000, 1001)),
        "bframes": write_source(d / "b.mp4", 90, 30, x264="bframes=3:b-adapt=0:keyint=15:scenecut=0"),
        "late.mp4": write_source(d / "late.mp4", 60, 30, first_pts=15),
        "late.mkv": write_source(d / "late.mkv", 60, 30, fmt="matroska", first_pts=15),
        "late.ts": write_source(
            d / "late.ts", 90, 30, fmt="mpegts", x264="bframes=3:keyint=15", first_pts=42
        ),
        "big": write_source(d / "big.mp4", 30, 30, size=(640, 360)),
        "small": write_source(d / "small.mp4", 30, 30, size=(160, 90)),
    }


def test_frames_show_the_source_picture_at_their_time(sources):
    path = sources["30"]
    source = source_pictures(path)
    pictures = list(clip_pictures(make_clip(path, start=0.5), 30, W, H, 0, 40))
    assert len(pictures) == 40 and all(p.size == (W, H) and p.mode == "RGB" for p in pictures)
    for k, picture in enumerate(pictures):
        assert read_index(picture) == 15 + k
        assert psnr(picture, source[15 + k]) >= 30


@pytest.mark.parametrize(
    ("name", "rate", "start"),
    [
        ("25", Fraction(25), Fraction(2, 5)),
        ("60", Fraction(60), Fraction(0)),
        ("ntsc", Fraction(24000, 1001), 0),
    ],
)
def test_other_frame_rates_stay_in_step(sources, name, rate, start):
    """A 25 fps clip shows source frame floor(k*25/30 + start*25) at lesson frame k, still
    after 300 frames; 60 and 23.976 fps likewise by timestamp."""
    path = sources[name]
    clip = make_clip(path, start=float(start))
    count = min(300, math.floor((Fraction(clip.end) - start) * 30))
    got = [read_index(p) for p in clip_pictures(clip, 30, W, H, 0, count)]
    assert got == [expected_index(k, 30, rate, start) for k in range(count)]
    assert count >= 60 and (name != "25" or count == 300)


def test_b_frames_come_out_in_presentation_order(sources):
    path = sources["bframes"]
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.pts is not None]
    assert [p.pts for p in packets] != sorted(p.pts for p in packets)  # stored out of order
    source = source_pictures(path)
    pictures = list(clip_pictures(make_clip(path), 30, W, H, 0, 90))
    assert [read_index(p) for p in pictures] == list(range(90))
    assert all(psnr(p, source[k]) >= 30 for k, p in enumerate(pictures))


@pytest.mark.parametrize("fmt", ["mp4", "matroska"])
def test_variable_frame_rate_follows_each_pictures_timestamp(tmp_path, fmt):
    """Pictures stamped at irregular times (ms): each lesson frame shows the last picture
    stamped at or before its time (ties at 0.2 s, 0.5 s and 1.0 s included)."""
    stamps = [0, 40, 50, 200, 210, 220, 500, 510, 1000, 1033]
    path = tmp_path / f"vfr.{fmt}"
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.codec_context.options = {"preset": "ultrafast", "crf": "12"}
        for n, ms in enumerate(stamps):
            frame = av.VideoFrame.from_image(bar_picture(n, (W, H)))
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    clip = make_clip(path)

    def shown(k):
        return max(n for n, ms in enumerate(stamps) if Fraction(ms, 1000) <= Fraction(k, 30))

    assert [read_index(p) for p in clip_pictures(clip, 30, W, H, 0, 36)] == [shown(k) for k in range(36)]
    assert [read_index(p) for p in clip_pictures(clip, 30, W, H, 20, 16)] == [shown(k) for k in range(20, 36)]


@pytest.mark.parametrize(
    ("name", "first"), [("25", 200), ("25", 31), ("bframes", 50), ("bframes", 15), ("late.ts", 50)]
)
def test_a_span_starting_mid_clip_matches_a_full_pass(sources, name, first):
    """Seeking to the keyframe before a span and decoding forward shows exactly the pictures
    a full pass shows (keyframes every second / every 15 frames)."""
    clip = make_clip(sources[name], start=0.2)
    full = list(clip_pictures(clip, 30, W, H, 0, first + 20))
    span = list(clip_pictures(clip, 30, W, H, first, 20))
    assert [p.tobytes() for p in span] == [p.tobytes() for p in full[first:]]


@pytest.mark.parametrize(("name", "first_time"), [("late.mp4", 0.5), ("late.mkv", 0.5), ("late.ts", 1.4)])
def test_times_count_from_the_first_picture(sources, name, first_time):
    """A stream whose first picture is stamped 0.5 s (in 1/15360 s, or rounded to whole ms in
    Matroska) or 1.4 s (MPEG-TS, with B-frames) starts there: lesson frame k shows source
    frame k, also after a seek (MPEG-TS seeks land after the wanted time; we seek again)."""
    path = sources[name]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.start_time * stream.time_base == Fraction(str(first_time))
    clip = make_clip(path)
    # The clip is as long as its pictures, whether the stream or only the container knows it
    # (MPEG-TS stores no duration: FFmpeg estimates one from the bitrate).
    if name != "late.ts":
        assert probe_clip(path, "segments[0].video").duration == pytest.approx(2.0, abs=0.05)
    assert [read_index(p) for p in clip_pictures(clip, 30, W, H, 0, 60)] == list(range(60))
    assert [read_index(p) for p in clip_pictures(clip, 30, W, H, 40, 10)] == list(range(40, 50))


def test_the_last_frame_holds_after_the_clip_end(sources):
    path = sources["30"]  # 60 frames
    cut = make_clip(path, start=0.5, end=1.0)
    got = [read_index(p) for p in clip_pictures(cut, 30, W, H, 0, 40)]
    assert got == list(range(15, 30)) + [29] * 25  # the frame on screen just before videoEnd
    whole = make_clip(path, start=1.0)
    got = [read_index(p) for p in clip_pictures(whole, 30, W, H, 0, 50)]
    assert got == list(range(30, 60)) + [59] * 20
    # A span wholly after the end seeks straight to the held frame.
    assert [read_index(p) for p in clip_pictures(cut, 30, W, H, 100, 3)] == [29] * 3
    assert [read_index(p) for p in clip_pictures(whole, 30, W, H, 100, 3)] == [59] * 3


def test_past_the_files_real_end_the_last_picture_holds(sources):
    """A clip shorter than its header says (or than videoEnd) holds its last picture."""
    path = sources["30"]
    clip = make_clip(path)
    longer = Clip(path, 1.5, 5.0, 1.0, clip.info)
    got = [read_index(p) for p in clip_pictures(longer, 30, W, H, 0, 30)]
    assert got == list(range(45, 60)) + [59] * 15
    assert [read_index(p) for p in clip_pictures(longer, 30, W, H, 60, 2)] == [59, 59]


@pytest.mark.parametrize(("name", "scale"), [("big", 0.5), ("small", 2.0)])
def test_larger_and_smaller_sources_are_scaled_to_the_frame(sources, name, scale):
    path = sources[name]
    source = source_pictures(path)
    pictures = list(clip_pictures(make_clip(path), 30, W, H, 0, 30))
    for k, picture in enumerate(pictures):
        assert picture.size == (W, H)
        assert read_index(picture, scale=scale) == k
        assert psnr(picture, covered(source[k])) >= 30


def test_a_source_of_the_frames_size_is_not_scaled(sources):
    path = sources["30"]
    source = source_pictures(path)
    pictures = list(clip_pictures(make_clip(path), 30, W, H, 0, 5))
    assert [p.tobytes() for p in pictures] == [s.tobytes() for s in source[:5]]


def test_cover_crop_of_a_4_3_source_keeps_the_centre(tmp_path):
    """240x180 (4:3) into 320x180 (16:9): scaled by 4/3, the top and bottom 22.5 source rows
    are cut; a red band at the top, a blue band at the bottom and a green centre square show
    where the crop fell."""

    def picture(n, size):
        img = Image.new("RGB", size, (128, 128, 128))
        draw = ImageDraw.Draw(img)
        draw.rectangle((0, 0, 239, 19), fill=(255, 0, 0))
        draw.rectangle((0, 160, 239, 179), fill=(0, 0, 255))
        draw.rectangle((110, 80, 129, 99), fill=(0, 200, 0))
        return img

    path = write_source(tmp_path / "4x3.mp4", 10, 30, size=(240, 180), picture=picture)
    assert cover_crop(240, 180, W, H) == (240, 135, 0, 22)
    (img,) = clip_pictures(make_clip(path), 30, W, H, 3, 1)
    a = np.asarray(img, dtype=np.int16)
    assert psnr(img, covered(source_pictures(path)[3])) >= 30
    red, blue = np.array([255, 0, 0]), np.array([0, 0, 255])
    assert np.abs(a[:2] - red).max(axis=2).mean() > 100 and np.abs(a[-2:] - blue).max(axis=2).mean() > 100
    green = np.argwhere((a[:, :, 1] > 150) & (a[:, :, 0] < 80))
    assert abs(green[:, 0].mean() - (H - 1) / 2) <= 1.5 and abs(green[:, 1].mean() - (W - 1) / 2) <= 1.5
    assert 24 <= len(np.unique(green[:, 0])) <= 28  # 20 rows x 4/3


def test_a_corrupt_clip_names_the_field(sources, tmp_path):
    data = bytearray(sources["30"].read_bytes())
    middle = data.find(b"mdat") + len(data) // 3
    data[middle : middle + 2000] = b"\xff" * 2000
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data)
    clip = make_clip(bad)
    with pytest.raises(ManifestError) as caught:
        list(clip_pictures(clip, 30, W, H, 0, 60, field="segments[3]"))
    assert caught.value.field == "segments[3].video"
    assert str(caught.value).startswith("segments[3].video: cannot decode video (")
    assert str(tmp_path) not in str(caught.value) and "bad.mp4" not in str(caught.value)


def test_a_vanished_clip_is_a_transient_error(sources, tmp_path):
    path = tmp_path / "gone.mp4"
    path.write_bytes(sources["30"].read_bytes())
    pictures = clip_pictures(make_clip(path), 30, W, H, 0, 5, field="segments[1]")
    path.unlink()
    with pytest.raises(TransientRenderError) as caught:
        next(pictures)
    assert str(caught.value).startswith("segments[1].video: cannot read the clip")
    assert str(tmp_path) not in str(caught.value)


def open_descriptors(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


def test_pictures_come_lazily_and_the_file_is_closed_early_or_on_cancel(sources):
    path = sources["25"]
    clip = make_clip(path)
    pictures = clip_pictures(clip, 30, W, H, 0, 300)
    assert open_descriptors(path) == 0
    next(pictures)
    assert open_descriptors(path) == 1
    pictures.close()
    assert open_descriptors(path) == 0

    ticks = []

    def tick(n):
        ticks.append(n)
        if n >= 40:
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(clip_pictures(clip, 30, W, H, 0, 300, tick=tick))
    assert open_descriptors(path) == 0
    assert ticks == [8, 16, 24, 32, 40]


def test_tick_reports_the_pictures_given(sources):
    ticks = []
    got = list(clip_pictures(make_clip(sources["30"]), 30, W, H, 10, 20, tick=ticks.append))
    assert len(got) == 20 and ticks == [8, 16, 20]
    assert list(clip_pictures(make_clip(sources["30"]), 30, W, H, 0, 0)) == []


def test_pictures_may_be_changed_by_the_caller(sources):
    """A held picture is given afresh each frame: drawing on one does not show on the next."""
    clip = make_clip(sources["30"], start=1.95)
    pictures = clip_pictures(clip, 30, W, H, 0, 4)
    assert read_index(next(pictures)) == 58
    held = next(pictures)
    assert read_index(held) == 59
    held.paste((0, 0, 0), (0, 0, W, H))
    assert [read_index(p) for p in pictures] == [59, 59]


def test_a_decoded_frame_with_wider_rows_is_copied_pixel_for_pixel(tmp_path):
    """Decoders pad a frame's rows to what the CPU's vector instructions want, so a clip's frame
    can have wider rows than a frame made here; copying it must still give its very pixels (it
    raised instead, on a machine whose decoder padded 100 pixels to 128)."""
    from webapp.render import yuv

    path = tmp_path / "narrow.mp4"
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 100, 64, "yuv420p"
        for _ in range(3):
            noise = rng.integers(0, 256, (96, 100), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(noise, format="yuv420p")))
        out.mux(stream.encode())
    with av.open(str(path)) as source:
        decoded = next(source.decode(video=0))
    copy = yuv.to_frame(decoded)
    assert (copy.width, copy.height) == (100, 64)
    for ours, theirs in zip(yuv.from_frame(copy), yuv.from_frame(decoded), strict=True):
        assert np.array_equal(ours, theirs)


QUADRANTS = {
    "top left": (255, 0, 0),
    "top right": (0, 200, 0),
    "bottom left": (0, 0, 255),
    "bottom right": (255, 255, 255),
}


def _upright_phone_picture() -> np.ndarray:
    """A portrait picture (176 x 320) as it should be seen: a colour in each quadrant."""
    img = np.zeros((320, 176, 3), np.uint8)
    (tl, tr, bl, br) = QUADRANTS.values()
    img[:160, :88], img[:160, 88:], img[160:, :88], img[160:, 88:] = tl, tr, bl, br
    return img


@pytest.mark.parametrize("fmt", ["rgb24", "yuv420p"])
@pytest.mark.parametrize(
    "turn, hflip, vflip",
    [
        (-90, False, False),
        (90, False, False),
        (180, False, False),
        (0, True, False),
        (0, False, True),
        (90, True, False),
        (-90, True, False),
        (180, True, False),
    ],
)
def test_a_clip_stored_turned_is_shown_upright(tmp_path, turn, hflip, vflip, fmt):
    """A phone filming upright stores its pictures sideways and says in the display matrix how
    to turn them ("rotate 90"; mirrored by some front cameras): the lesson shows the picture as
    every player does, upright (it was shown as stored: sideways or upside down). The stored
    picture is the upright one put through the opposite of what the matrix says (the ffmpeg
    command, which turns by the matrix, shows each of these upright)."""
    from webapp.render.clips import clip_frames

    seen = _upright_phone_picture()
    stored = seen[:, ::-1] if hflip else seen
    stored = stored[::-1] if vflip else stored
    stored = np.ascontiguousarray(np.rot90(stored, k=-turn // 90))
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(turn, hflip=hflip, vflip=vflip)
        for _ in range(3):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
        out.mux(stream.encode(None))
    clip = make_clip(path)
    if fmt == "rgb24":
        (picture,) = clip_pictures(clip, 30, W, H, 1, 1)
        shown = np.asarray(picture, dtype=np.int16)
    else:
        (frame,) = clip_frames(clip, 30, W, H, 1, 1)
        shown = frame.to_ndarray(format="rgb24").astype(np.int16)
    assert shown.shape == (H, W, 3)
    # Covering 320 x 180 with the portrait picture keeps its middle rows: the quadrants' colours
    # meet in the middle of the frame.
    for (name, colour), (y, x) in zip(
        QUADRANTS.items(),
        [(H // 4, W // 4), (H // 4, 3 * W // 4), (3 * H // 4, W // 4), (3 * H // 4, 3 * W // 4)],
        strict=True,
    ):
        assert np.abs(shown[y - 5 : y + 5, x - 5 : x + 5] - colour).max() < 40, name
    assert psnr(Image.fromarray(shown.astype(np.uint8)), covered(Image.fromarray(seen))) >= 28


def test_an_interlaced_clip_is_shown_without_its_combs(tmp_path):
    """A camcorder's 1080i stores two fields per frame, taken half a frame apart: where something
    moves, the rows alternate between its two places (a comb). The lesson shows each frame
    deinterlaced, every row of the bar in one place, the bar moving on by a frame's worth each
    frame; the first frame too. (It was shown as stored, combed.)"""
    from webapp.render.clips import clip_frames

    path = tmp_path / "camcorder.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.options = {"x264-params": "tff=1", "crf": "12"}  # interlaced, top field first
        for n in range(10):
            picture = np.full((H, W, 3), 40, np.uint8)
            for field, t in ((0, n), (1, n + 0.5)):  # the top field at n, the bottom half a frame later
                picture[field::2, round(20 + t * 16) : round(40 + t * 16)] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        stored = next(container.decode(video=0))
        assert stored.interlaced_frame
        combed = stored.to_ndarray(format="rgb24").astype(np.int16)
    assert np.abs(combed[0::2] - combed[1::2]).max() > 150  # what it looked like

    clip = make_clip(path)
    shown = [np.asarray(p, dtype=np.int16) for p in clip_pictures(clip, 25, W, H, 0, 10)]
    as_frames = [f.to_ndarray(format="rgb24").astype(np.int16) for f in clip_frames(clip, 25, W, H, 0, 10)]
    lefts = []
    for k, picture in enumerate(shown):
        assert np.abs(picture[0::2] - picture[1::2]).max() < 40, k  # no comb, first frame included
        assert np.abs(as_frames[k] - picture).mean() < 3, k
        lefts.append(int(np.flatnonzero(picture[H // 2, :, 0] > 150)[0]))
    assert np.diff(lefts).tolist() == [16] * 9  # one frame's move each frame: no frame held or skipped
