"""Pictures as cameras, scanners and image editors save them, rendered and decoded: the lesson
shows what an image viewer shows."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from webapp.render import render_lesson

W, H = 320, 180


def first_frame(lesson: Path, tmp_path: Path, cache_dir: Path, settings) -> np.ndarray:
    out = tmp_path / "out.mp4"
    render_lesson(lesson, out, cache_dir=cache_dir, settings=settings)
    with av.open(str(out)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)


def picture_lesson(folder: Path, image: str) -> Path:
    lesson = {
        "title": "Pictures",
        "width": W,
        "height": H,
        "fps": 30,
        "segments": [{"image": image, "duration": 0.2}],
    }
    (folder / "lesson.json").write_text(json.dumps(lesson), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "name, values, expected",
    [
        ("grey16.png", np.array([0, 16448, 32896, 65535], np.uint16), [0, 64, 128, 255]),
        ("grey16.tif", np.array([0, 16448, 32896, 65535], np.uint16), [0, 64, 128, 255]),
        ("dark16.png", np.array([0, 64, 128, 255], np.uint16), [0, 0, 0, 1]),  # 16-bit, nearly black
        ("float.tif", np.array([0.0, 0.25, 0.5, 1.0], np.float32), [0, 64, 128, 255]),
    ],
)
def test_grey_pictures_of_more_than_8_bits_keep_their_levels(
    tmp_path, cache_dir, serial, name, values, expected
):
    """A scanner's 16-bit grey PNG or TIFF shows its greys: mid grey (32896 of 65535) is mid grey
    on screen (every level above 255 came out white)."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    bands = np.repeat(values, W // 4)[None, :].repeat(H, axis=0)
    Image.fromarray(bands).save(folder / name)
    frame = first_frame(picture_lesson(folder, name), tmp_path, cache_dir, serial)
    for k, level in enumerate(expected):
        x = k * (W // 4) + W // 8
        patch = frame[H // 2 - 10 : H // 2 + 10, x - 10 : x + 10]
        assert np.abs(patch - level).max() <= 6, (name, k, patch.mean(), level)


def test_a_photo_taken_sideways_is_shown_upright(tmp_path, cache_dir, serial):
    """A phone held upright saves its photo sideways and says so in EXIF (orientation 6: turn
    90 degrees clockwise to view): the lesson shows it as photo viewers do, top up."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    seen = np.zeros((H, W, 3), np.uint8)
    seen[: H // 2] = (220, 30, 30)  # red sky over a blue sea, as the photo was framed
    seen[H // 2 :] = (30, 30, 220)
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(seen, k=1)))  # kept a quarter turn back
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(folder / "photo.jpg", exif=exif, quality=95)
    frame = first_frame(picture_lesson(folder, "photo.jpg"), tmp_path, cache_dir, serial)
    assert np.abs(frame[H // 4, W // 2] - (220, 30, 30)).max() < 30
    assert np.abs(frame[3 * H // 4, W // 2] - (30, 30, 220)).max() < 30
