"""Segments showing a video clip, rendered and decoded: the right source picture on every
frame (by timestamp, at any source rate), the last one held, mixed with stills, motion and
transitions in one output.

Source clips come from sample.write_clip: frame n has colour clip_frame_color(n) and a white
bar at x = n, so a rendered frame says which source frame it shows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from webapp.render import load_manifest, render_lesson
from webapp.render.assets import probe_clip
from webapp.render.clips import clip_frames, clip_pictures
from webapp.render.effects import Clip
from webapp.render.sample import write_background, write_clip
from webapp.render.yuv import to_picture

W, H, FPS = 320, 180, 30


def write_lesson(folder: Path, segments: list[dict], **extra) -> Path:
    manifest = {"title": "Clips", "width": W, "height": H, "fps": FPS, "segments": segments, **extra}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(float) for f in c.decode(c.streams.video[0])]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def bar_x(frame: np.ndarray, rows: slice = slice(20, -20)) -> float:
    """Where the white bar starts (the source frame's number, below the width): from the
    centroid of the bar, 8 pixels wide."""
    whiteness = np.clip(frame[rows].mean(axis=0).min(axis=1) - 200, 0, None)
    return ((np.arange(len(whiteness)) + 0.5) * whiteness).sum() / whiteness.sum() - 4


@pytest.fixture(scope="module")
def clip_lesson(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    (folder / "clips").mkdir()
    write_clip(folder / "clips" / "a30.mp4", 3.0, fps=30, size=(W, H), freq=None)
    write_clip(folder / "clips" / "b25.mp4", 3.0, fps=25, size=(2 * W, 2 * H), freq=None)
    write_clip(folder / "clips" / "short.mp4", 0.5, fps=30, size=(W, H), freq=None)
    return write_lesson(
        folder,
        [
            {"video": "clips/a30.mp4", "videoStart": 0.5, "duration": 1.0},  # frames 0-29
            {"video": "clips/b25.mp4", "duration": 2.0},  # frames 30-89, a 25 fps source
            {"video": "clips/short.mp4", "duration": 1.0},  # frames 90-119: 15 frames, then held
        ],
    )


@pytest.fixture(scope="module")
def clip_render(clip_lesson):
    out = clip_lesson / "out.mp4"
    result = render_lesson(clip_lesson, out, cache_dir=clip_lesson.parent / "cache")
    return result, decoded(out)


def source(path: Path, scale_to=(W, H)) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [np.asarray(f.to_image().resize(scale_to), dtype=float) for f in c.decode(c.streams.video[0])]


def test_each_frame_shows_the_source_picture_at_its_time(clip_render, clip_lesson):
    result, frames = clip_render
    assert result.frames == len(frames) == load_manifest(clip_lesson).total_frames == 120
    src = source(clip_lesson / "clips" / "a30.mp4")
    for k in range(30):
        assert abs(bar_x(frames[k]) - (15 + k)) < 0.5  # videoStart 0.5 s = source frame 15
        assert psnr(frames[k], src[15 + k]) >= 30


def test_a_25_fps_source_in_a_30_fps_lesson_does_not_drift(clip_render, clip_lesson):
    _, frames = clip_render
    src = source(clip_lesson / "clips" / "b25.mp4")
    for k in range(60):
        n = math.floor(k * 25 / 30 + 1e-9)  # the source picture on screen at k / 30 s
        near = range(max(0, n - 2), min(len(src), n + 3))
        assert max(near, key=lambda i: psnr(frames[30 + k], src[i])) == n, k  # the best match
        assert psnr(frames[30 + k], src[n]) >= 30, k
    assert psnr(frames[89], src[49]) >= 30  # the 60th frame, 1.967 s: source frame 49, no drift


def test_a_short_clip_holds_its_last_picture(clip_render, clip_lesson):
    _, frames = clip_render
    src = source(clip_lesson / "clips" / "short.mp4")
    assert len(src) == 15
    for k in range(30):
        assert psnr(frames[90 + k], src[min(k, 14)]) >= 30
    assert np.abs(frames[119] - frames[104]).max() < 12  # held: the same picture


def test_the_poster_shows_the_clips_first_frame(clip_render, clip_lesson):
    result, frames = clip_render
    assert result.poster is not None
    poster = np.asarray(Image.open(result.poster).convert("RGB"), dtype=float)
    assert psnr(poster, frames[0]) >= 30


def test_clips_stills_motion_and_transitions_in_one_output(tmp_path, serial, parallel):
    folder = tmp_path / "mixed"
    (folder / "clips").mkdir(parents=True)
    write_clip(folder / "clips" / "a30.mp4", 2.0, fps=30, size=(W, H), freq=None)
    (folder / "images").mkdir()
    write_background(folder / "images" / "p.png", 2 * W, 2 * H, (30, 120, 60), 1, detail=True)
    fade = {"type": "crossfade", "duration": 0.25}
    lesson = write_lesson(
        folder,
        [
            {"image": "images/p.png", "duration": 1.0, "title": "A still"},
            {
                "video": "clips/a30.mp4",
                "videoStart": 1.0,
                "duration": 1.0,
                "title": "A clip",
                "transition": fade,
            },
            {
                "image": "images/p.png",
                "duration": 1.0,
                "motion": "zoom-in",
                "transition": {"type": "slide-left"},
            },
            {"video": "clips/a30.mp4", "duration": 1.0, "transition": {"type": "wipe-left", "duration": 0.2}},
        ],
    )
    cache = tmp_path / "cache"
    first = render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache, settings=parallel)  # verified
    frames = decoded(tmp_path / "a.mp4")
    assert first.frames == len(frames) == 120
    for k in range(8, 30):  # after the crossfade: the clip from 1.0 s (source frame 30), under its title
        assert abs(bar_x(frames[30 + k], rows=slice(4, 60)) - (30 + k)) < 0.5
    for k in range(6, 30):  # after the wipe: the clip from its start
        assert abs(bar_x(frames[90 + k], rows=slice(4, 60)) - k) < 0.5
    again = render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache, settings=serial)
    assert again.pieces_encoded == 0
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def write_red_green(path: Path, size: tuple[int, int], frames: int = 15) -> Path:
    """A clip, red on the left, green on the right, written untagged (read as BT.601)."""
    img = Image.new("RGB", size, (220, 30, 30))
    img.paste((30, 200, 60), (size[0] // 2, 0, size[0], size[1]))
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "10"}
        for n in range(frames):
            frame = av.VideoFrame.from_image(img)
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("size", [(W, H), (2 * W, 2 * H)], ids=["same size", "scaled"])
def test_clip_frames_are_clip_pictures_in_bt709(tmp_path, size):
    path = write_red_green(tmp_path / "c.mp4", size)
    clip = Clip(path, 0.0, 0.5, 1.0, probe_clip(path, "segments[0].video"))
    pairs = zip(clip_frames(clip, FPS, W, H, 3, 5), clip_pictures(clip, FPS, W, H, 3, 5), strict=True)
    for frame, picture in pairs:
        assert frame.format.name == "yuv420p"
        ours = np.asarray(to_picture(frame), dtype=float)  # read as BT.709, limited range
        theirs = np.asarray(picture, dtype=float)
        assert psnr(ours, theirs) >= 40
        for patch, color in (
            ((slice(40, 140), slice(20, 140)), (220, 30, 30)),
            ((slice(40, 140), slice(180, 300)), (30, 200, 60)),
        ):
            # Read with the wrong matrix these would be (235, 47, 27) and (15, 173, 55).
            mean = ours[patch].mean(axis=(0, 1))
            assert np.abs(mean - theirs[patch].mean(axis=(0, 1))).max() < 4  # swscale scaling: 3 levels
            assert np.abs(mean - color).max() < 8
