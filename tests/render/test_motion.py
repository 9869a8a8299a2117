"""Moving images: the view moves every frame, smoothly and eased; the title panel stays still.

The test image has a horizontal gradient in red and a vertical one in green, so a frame's red
and green slopes give the view's zoom and their values at the centre give its centre.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from webapp.render import Cancelled, load_manifest, partial_outputs, render_lesson
from webapp.render.cache import SegmentCache
from webapp.render.camera import PanCamera, ZoomCamera, _Loaded, camera
from webapp.render.compose import compose, title_panel_layer
from webapp.render.encode import picture_to_frame
from webapp.render.frames import LayerFile, Shown, pictures
from webapp.render.moving import Looks
from webapp.render.sample import write_background
from webapp.render.yuv import from_frame, from_picture, to_picture

from .processes import worker_pids

W, H = 320, 180
LOW, SPAN = 20.0, 215.0  # gradient: LOW at one edge of the image, LOW + SPAN at the other
MOTION = {"from": [0.35, 0.4, 1.5], "to": [0.65, 0.6, 2.5]}  # zooms: resized every frame
PAN = {"from": [0.3, 0.35, 1.6], "to": [0.7, 0.62, 1.6]}  # one zoom: shifted by fractions of a pixel


def write_gradient(path: Path, size: tuple[int, int]) -> Path:
    """Red rises left to right, green top to bottom (at the pixels' centres), blue constant."""
    w, h = size
    red = LOW + SPAN * (np.arange(w) + 0.5) / w
    green = LOW + SPAN * (np.arange(h) + 0.5) / h
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0] = np.round(red)[None, :]
    rgb[..., 1] = np.round(green)[:, None]
    rgb[..., 2] = 128
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def write_lesson(folder: Path, segments: list[dict], width: int = W, height: int = H) -> Path:
    manifest = {"title": "Motion", "width": width, "height": height, "fps": 30, "segments": segments}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def write_grid(path: Path, size: tuple[int, int], step: int = 80, width: int = 4) -> Path:
    """Black lines on white, `width` px wide, centred every `step` px from step / 2, both ways."""
    w, h = size
    gray = np.full((h, w), 255, np.uint8)
    for c in range(step // 2, w, step):
        gray[:, c - width // 2 : c + width // 2] = 0
    for c in range(step // 2, h, step):
        gray[c - width // 2 : c + width // 2, :] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gray).convert("RGB").save(path)
    return path


def _line_centres(darkness: np.ndarray) -> list[float]:
    """Sub-pixel centres (in pixels from the edge) of the dark lines along one profile."""
    d = np.clip(darkness - np.median(darkness), 0, None)
    dark = d > d.max() / 3
    centres, i = [], 0
    while i < len(d):
        if not dark[i]:
            i += 1
            continue
        j = i
        while j < len(d) and dark[j]:
            j += 1
        a, b = i - 2, j + 2
        if a >= 0 and b <= len(d):  # a line cut by the frame's edge has no reliable centre
            idx = np.arange(a, b)
            centres.append(float(((idx + 0.5) * d[a:b]).sum() / d[a:b].sum()))
        i = j
    return centres


def _fit_axis(centres: list[float], length: int, lines: int, guess_c: float, guess_z: float):
    """(centre, zoom) along one axis from line centres: line j sits at fraction (j + 0.5) / lines."""
    u = [round((guess_c + (x / length - 0.5) / guess_z) * lines - 0.5) for x in centres]
    known = (np.array(u) + 0.5) / lines
    slope, at = np.polyfit(known, centres, 1)  # x = length * zoom * u + length * (0.5 - c * zoom)
    zoom = slope / length
    return (0.5 - at / length) / zoom, zoom


def view_of(rgb: np.ndarray, guess) -> tuple[float, float, float]:
    """(cx, cy, zoom) of a frame of the grid (16 x 9 lines), near the `guess` view."""
    h, w, _ = rgb.shape
    darkness = 255 - rgb.astype(float).mean(axis=2)
    cx, zx = _fit_axis(_line_centres(darkness.mean(axis=0)), w, 16, guess.cx, guess.zoom)
    cy, zy = _fit_axis(_line_centres(darkness.mean(axis=1)), h, 9, guess.cy, guess.zoom)
    return cx, cy, (zx + zy) / 2


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


@pytest.fixture(scope="module")
def gradient_lesson(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("motion")
    write_grid(folder / "images" / "grid.png", (1280, 720))
    write_background(folder / "images" / "detail.png", 2 * W, 2 * H, (90, 60, 30), 0, detail=True)
    return write_lesson(
        folder,
        [
            {"image": "images/grid.png", "motion": MOTION, "duration": 1.0},
            {"image": "images/detail.png", "motion": "pan-left", "duration": 1.0},
            {"image": "images/grid.png", "motion": PAN, "duration": 1.0},
        ],
    )


@pytest.fixture(scope="module")
def gradient_render(gradient_lesson, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "motion.mp4"
    result = render_lesson(gradient_lesson, out, cache_dir=out.parent / "cache")
    return result, decoded(out)


def _generated(lesson: Path, index: int) -> list[np.ndarray]:
    """The segment's frames as generated, before encoding."""
    m = load_manifest(lesson)
    cache = SegmentCache(lesson / ".cache", 1 << 30)
    looks = Looks(m, cache, cache.new_private_dir(), lambda p: p.name, lambda: None)
    shown = looks.shown(index, 0, looks.frames[index])
    looks.ensure_files(shown)
    return [np.asarray(to_picture(p)) for p in pictures(shown, m.width, m.height, m.fps)]


def _check_views(views: np.ndarray, wanted, tolerance: float, monotonic=slice(None)) -> None:
    """Measured (cx, cy, zoom) per frame against the motion's: close, and every frame a step
    the same way on each axis that moves (an axis that does not move stays)."""
    expected = np.array([[v.cx, v.cy, v.zoom] for v in wanted])
    assert np.abs(views[:, :2] - expected[:, :2]).max() < tolerance
    assert np.abs(views[:, 2] / expected[:, 2] - 1).max() < 2 * tolerance
    moving = np.abs(expected[-1] - expected[0]) > 1e-9
    steps = np.diff(views[monotonic], axis=0)
    assert (steps[:, moving] > 0).all()
    assert (np.abs(steps[:, ~moving]) < tolerance).all()


@pytest.mark.parametrize("index", [0, 2], ids=["zoom", "pan"])
def test_the_view_follows_the_eased_motion_every_frame(gradient_lesson, index):
    motion = load_manifest(gradient_lesson).segments[index].motion
    frames = _generated(gradient_lesson, index)
    n = len(frames)
    wanted = [motion.at(k / (n - 1)) for k in range(n)]
    views = np.array([view_of(f, v) for f, v in zip(frames, wanted, strict=True)])
    assert n == 30
    _check_views(views, wanted, 0.001)
    # Eased: the first and last steps are much smaller than the middle ones.
    steps = np.abs(np.diff(views, axis=0))
    middle = steps[n // 2 - 1]
    assert (steps[0] <= middle / 4 + 1e-9).all() and (steps[-1] <= middle / 4 + 1e-9).all()


def test_encoded_motion_is_smooth_and_no_frame_repeats(gradient_render, gradient_lesson):
    result, frames = gradient_render
    m = load_manifest(gradient_lesson)
    assert result.frames == len(frames) == m.total_frames == 90
    for index in (0, 2):
        wanted = [m.segments[index].motion.at(k / 29) for k in range(30)]
        shown = frames[30 * index : 30 * index + 30]
        views = np.array([view_of(f, v) for f, v in zip(shown, wanted, strict=True)])
        _check_views(views, wanted, 0.002)
    for a, b in itertools.pairwise(frames):
        assert np.abs(a.astype(int) - b.astype(int)).max() > 8  # every frame shows something new


def test_a_pan_looks_like_the_same_view_resized(gradient_lesson):
    m = load_manifest(gradient_lesson)
    seg = m.segments[2]
    pan = camera(str(seg.image), seg.color, seg.motion, (W, H), seg.field)
    zoom = ZoomCamera(_Loaded(str(seg.image), seg.color, seg.field), (W, H), seg.motion.start.zoom)
    assert isinstance(pan, PanCamera)
    for t in (0.0, 0.3, 0.77, 1.0):
        view = seg.motion.at(t)
        a, b = (np.asarray(to_picture(c.view(view)), dtype=int) for c in (pan, zoom))
        assert np.abs(a - b).mean() < 2.5


def test_the_title_panel_stays_still_over_the_moving_picture(tmp_path):
    size = (640, 360)
    seg = {"image": "images/gradient.png", "motion": MOTION, "duration": 1.0}
    titled = {**seg, "title": "A title that stays", "text": "Over a picture that moves"}
    plain_dir = write_lesson(tmp_path / "plain", [seg], *size)
    titled_dir = write_lesson(tmp_path / "titled", [titled], *size)
    for d in (plain_dir, titled_dir):
        write_gradient(d / "images" / "gradient.png", (size[0] * 2, size[1] * 2))
        render_lesson(d, d / "out.mp4", cache_dir=tmp_path / "cache")
    m = load_manifest(titled_dir)
    layer, (x, y) = title_panel_layer(m, m.segments[0])
    rgba = np.asarray(layer).astype(float)
    alpha = rgba[..., 3:] / 255
    box = (slice(y, y + layer.height), slice(x, x + layer.width))

    def check(plain: list[np.ndarray], with_panel: list[np.ndarray], mean: float, median: float):
        assert len(plain) == len(with_panel) == 30
        for a, b in zip(plain, with_panel, strict=True):
            expected = rgba[..., :3] * alpha + a[box] * (1 - alpha)  # where compose draws it
            diff = np.abs(b[box] - expected)
            assert diff.mean() < mean and np.median(diff) < median
            assert np.abs(b.astype(int) - a.astype(int))[: y - 4].max() < 40  # nothing above it

    check(_generated(plain_dir, 0), _generated(titled_dir, 0), 1.5, 1.5)  # as generated
    plain, with_panel = decoded(plain_dir / "out.mp4"), decoded(titled_dir / "out.mp4")
    check(plain, with_panel, 7, 6)  # encoded: x264 is coarser in the dark panel
    opaque = rgba[..., 3] == 255  # the cores of the letters
    assert opaque.sum() > 50
    letters = [f[box][opaque].astype(int) for f in with_panel]
    for a in letters[1:]:
        assert np.abs(a - letters[0]).max() <= 24 and a.min() > 200  # white letters, not moving


def test_the_panel_layer_over_a_picture_is_what_compose_draws(make_lesson):
    m = load_manifest(make_lesson(segments=2, width=640, height=360))
    for seg in m.segments:
        picture = compose(m, replace(seg, title="", text=""))
        layer, xy = title_panel_layer(m, seg)
        laid = picture.convert("RGBA")
        laid.alpha_composite(layer, xy)
        diff = np.abs(np.asarray(laid.convert("RGB"), int) - np.asarray(compose(m, seg), int))
        assert diff.max() <= 2
    assert title_panel_layer(m, replace(m.segments[0], title="", text="")) is None


def test_planes_are_converted_like_still_pieces(make_lesson):
    m = load_manifest(make_lesson(segments=1))
    picture = compose(m, m.segments[0])
    ours, still = from_picture(picture), from_frame(picture_to_frame(picture))
    assert all(np.array_equal(a, b) for a, b in zip(ours, still, strict=True))


def test_overlays_are_laid_over_their_frames_only(gradient_lesson, tmp_path):
    m = load_manifest(gradient_lesson)
    cache = SegmentCache(tmp_path / "cache", 1 << 30)
    looks = Looks(m, cache, cache.new_private_dir(), lambda p: p.name, lambda: None)
    shown = looks.shown(0, 0, 10)
    looks.ensure_files(shown)
    mark = Image.new("RGBA", (40, 20), (255, 0, 255, 255))
    overlay = LayerFile.write(tmp_path, mark, (100, 50), first=3, end=6)
    plain = list(pictures(shown, W, H, 30))
    marked = list(pictures(Shown(shown.look, 0, 10, overlays=(overlay,)), W, H, 30))
    for k, (a, b) in enumerate(zip(plain, marked, strict=True)):
        changed = np.argwhere(a.y != b.y)
        if 3 <= k < 6:
            assert changed.min(axis=0).tolist() == [50, 100] and changed.max(axis=0).tolist() == [69, 139]
        else:
            assert len(changed) == 0


def test_cancelling_a_moving_render_leaves_nothing(gradient_lesson, tmp_path, parallel):
    stop = threading.Event()
    out, cache_dir = tmp_path / "out.mp4", tmp_path / "cache"
    with pytest.raises(Cancelled):
        render_lesson(
            gradient_lesson,
            out,
            cache_dir=cache_dir,
            settings=parallel,
            on_progress=lambda done, total: stop.set(),
            should_cancel=stop,
        )
    assert not out.exists() and partial_outputs(out) == []
    assert list((cache_dir / "tmp").iterdir()) == []
    assert worker_pids(os.getpid()) == []


@pytest.mark.parametrize("motion", [MOTION, PAN], ids=["zoom", "pan"])
def test_the_background_shows_through_a_transparent_moving_image(tmp_path, motion):
    image = Image.new("RGBA", (2 * W, 2 * H), (0, 0, 0, 0))
    image.paste((250, 250, 250, 255), (0, 0, W, 2 * H))  # opaque white left half, clear right half
    (tmp_path / "images").mkdir()
    image.save(tmp_path / "images" / "half.png")
    segment = {"image": "images/half.png", "background": "#2050c0", "motion": motion, "duration": 0.5}
    lesson = write_lesson(tmp_path, [segment])
    for frame in _generated(lesson, 0):
        assert np.abs(frame[:, -4:].reshape(-1, 3).mean(axis=0) - (0x20, 0x50, 0xC0)).max() < 3
        assert frame[:, :4].min() > 240


def test_a_wide_zoom_neither_aliases_nor_jumps_in_sharpness(tmp_path):
    """Zooming from 1 to 4 over 2-px stripes: seen whole, the stripes shrink 4x, past what a
    frame can show, and must blur to grey (sampling every 4th pixel would show false stripes);
    seen close, they are sharp; in between the contrast rises steadily, with no step where the
    sampler moves from one copy of the image to the next."""
    stripes = np.zeros((4 * H, 4 * W, 3), np.uint8)
    stripes[:, 0::4] = stripes[:, 1::4] = 255
    (tmp_path / "images").mkdir()
    Image.fromarray(stripes).save(tmp_path / "images" / "stripes.png")
    motion = {"from": [0.5, 0.5, 1.0], "to": [0.5, 0.5, 4.0]}
    lesson = write_lesson(tmp_path, [{"image": "images/stripes.png", "motion": motion, "duration": 2.0}])
    frames = _generated(lesson, 0)
    contrast = np.array([f[H // 4 : 3 * H // 4, W // 4 : 3 * W // 4, 1].astype(float).std() for f in frames])
    assert contrast[0] < 4  # grey: no false stripes
    assert contrast[-1] > 100  # the stripes themselves
    steps = np.diff(contrast)
    assert steps.min() > -8 and steps.max() < 14, np.round(contrast).tolist()  # no sudden change
