"""Pictures as cameras, scanners and image editors save them, rendered and decoded: the lesson
shows what an image viewer shows."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from webapp.render import RenderSettings, render_lesson

from . import icc

W, H = 320, 180


def first_frame(lesson: Path, tmp_path: Path, cache_dir: Path, settings) -> np.ndarray:
    out = tmp_path / "out.mp4"
    render_lesson(lesson, out, cache_dir=cache_dir, settings=settings)
    with av.open(str(out)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)


def picture_lesson(folder: Path, image: str, **segment) -> Path:
    lesson = {
        "title": "Pictures",
        "width": W,
        "height": H,
        "fps": 30,
        "segments": [{"image": image, "duration": 0.2, **segment}],
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


def _save(img: Image.Image, path: Path, **options) -> Path:
    """Saved by Pillow, or as HEIC by pillow-heif's own writer (not through Pillow's registry, which
    the renderer would fill: the test must not do the renderer's part)."""
    if path.suffix.lower() == ".heic":
        pillow_heif.from_pillow(img).save(path, format="HEIF", **options)
    else:
        img.save(path, **options)
    return path


def _sideways_photo() -> Image.Image:
    """Red sky over a blue sea, kept a quarter turn back (as a phone held upright stores it)."""
    seen = np.zeros((H, W, 3), np.uint8)
    seen[: H // 2] = (220, 30, 30)
    seen[H // 2 :] = (30, 30, 220)
    return Image.fromarray(np.ascontiguousarray(np.rot90(seen, k=1)))


@pytest.mark.parametrize(
    "name, segment",
    [("IMG_0042.HEIC", {}), ("IMG_0042.HEIC", {"motion": "zoom-in"}), ("PXL_0042.avif", {})],
)
def test_phone_photos_as_phones_save_them_are_shown_upright(tmp_path, cache_dir, serial, name, segment):
    """iPhones save photos as HEIC, newer Android phones as AVIF, both turned by a tag rather
    than stored upright: a lesson shows them as the phone's gallery does, still or moving."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(_sideways_photo(), folder / name, exif=exif.tobytes(), quality=90)
    frame = first_frame(picture_lesson(folder, name, **segment), tmp_path, cache_dir, serial)
    assert np.abs(frame[H // 4, W // 2] - (220, 30, 30)).max() < 30
    assert np.abs(frame[3 * H // 4, W // 2] - (30, 30, 220)).max() < 30


BANDS = np.array([[200, 100, 50], [30, 180, 90], [250, 20, 30], [20, 40, 220]], np.uint8)


def _bands(folder: Path, name: str, **save) -> Path:
    """Four colour bands, left to right, saved as `name` (with `save`'s options, e.g. a profile)."""
    picture = Image.fromarray(np.repeat(BANDS, W // 4, axis=0)[None].repeat(H, axis=0))
    return _save(picture, folder / name, **save)


def _band_colours(frame: np.ndarray) -> np.ndarray:
    return np.array([frame[H // 2 - 8 : H // 2 + 8, (k * W) // 4 + 30 : (k * W) // 4 + 50] for k in range(4)])


@pytest.mark.parametrize(
    "name, primaries, gamma, profile_name, save",
    [
        ("iphone.jpg", icc.DISPLAY_P3, 2.2, "Display P3", {"quality": 98, "subsampling": 0}),  # a phone's
        ("iphone.heic", icc.DISPLAY_P3, 2.2, "Display P3", {"quality": 98}),  # the same phone's HEIC
        ("camera.png", icc.ADOBE_RGB, 2.2, "Adobe RGB (1998)", {}),  # a camera's, edited, saved as PNG
        # GIMP's linear-light export: sRGB's primaries, not its curve (the name says sRGB)
        ("linear.png", icc.SRGB, 1.0, "GIMP built-in Linear sRGB", {}),
        ("p3.png", icc.DISPLAY_P3, 2.2, "Rec2020-elle-V4-srgbtrc", {}),  # Krita's: "srgb" in the name
    ],
)
def test_photos_in_another_colour_space_keep_their_colours(
    tmp_path, cache_dir, serial, name, primaries, gamma, profile_name, save
):
    """A photo says its colour space by an embedded ICC profile (iPhones: Display P3): its colours
    are shown as a viewer that reads the profile shows them on an sRGB screen. Read as sRGB,
    Display P3's orange (200, 100, 50) came out (200, 100, 50), where it is (216, 93, 24); a
    profile was taken for sRGB when its name said "sRGB"."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    _bands(folder, name, icc_profile=icc.profile(primaries, gamma, name=profile_name), **save)
    frame = first_frame(picture_lesson(folder, name), tmp_path, cache_dir, serial)
    expected = icc.as_srgb(BANDS, primaries, gamma)
    for k, patch in enumerate(_band_colours(frame)):
        assert np.abs(patch - expected[k]).max() <= 8, (name, k, patch.mean(axis=(0, 1)), expected[k])


def test_photos_in_srgb_or_with_a_broken_profile_look_as_untagged_ones(tmp_path, cache_dir, serial):
    """Most photos name sRGB, the screen's own space: their frames are exactly those of the same
    photo without a profile (as before profiles were read). A profile that cannot be read is
    passed over, as browsers do, rather than failing the lesson."""
    frames = []
    for name, save in [
        ("plain.png", {}),
        ("srgb.png", {"icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()}),
        ("broken.png", {"icc_profile": b"\0\0\2\0 not a colour profile" + bytes(200)}),
    ]:
        folder = tmp_path / name.removesuffix(".png")
        folder.mkdir()
        _bands(folder, name, **save)
        frames.append(first_frame(picture_lesson(folder, name), folder, tmp_path / "cache", serial))
    assert np.array_equal(frames[0], frames[1]) and np.array_equal(frames[0], frames[2])
    for k, patch in enumerate(_band_colours(frames[0])):
        assert np.abs(patch - BANDS[k]).max() <= 8


@pytest.mark.parametrize("mode", ["L", "LA"])
def test_a_grey_picture_with_a_grey_profile_keeps_its_greys_with_or_without_transparency(
    tmp_path, cache_dir, serial, mode
):
    """Photoshop's grey pictures carry a grey profile: a linear one (gamma 1.0) shows level 64 as
    sRGB's 137. With an alpha channel (LA) the profile was passed over (64 stayed 64)."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    levels = np.array([0, 64, 128, 255], np.uint8)
    grey = Image.fromarray(np.repeat(levels, W // 4)[None, :].repeat(H, axis=0), "L")
    if mode == "LA":
        grey = Image.merge("LA", (grey, Image.new("L", grey.size, 255)))
    grey.save(folder / "grey.png", icc_profile=icc.grey_profile(1.0))
    frame = first_frame(picture_lesson(folder, "grey.png"), tmp_path, cache_dir, serial)
    expected = icc.srgb_encoded(levels / 255)
    for k, level in enumerate(expected):
        patch = frame[H // 2 - 8 : H // 2 + 8, k * (W // 4) + 30 : k * (W // 4) + 50]
        assert np.abs(patch - level).max() <= 6, (mode, k, patch.mean(), level)


def test_an_avif_whose_first_brand_is_the_container_s_is_read(tmp_path, cache_dir, serial):
    """AVIF files may name the container ("mif1") first and "avif" among the others, as the
    format allows: pillow-heif (HEVC only here) took them and the render crashed."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    path = _bands(folder, "made.avif", quality=95)
    data = path.read_bytes()
    assert data[4:12] == b"ftypavif"
    path.write_bytes(data[:8] + b"mif1" + data[12:])
    frame = first_frame(picture_lesson(folder, "made.avif"), tmp_path, cache_dir, serial)
    for k, patch in enumerate(_band_colours(frame)):
        assert np.abs(patch - BANDS[k]).max() <= 10


def test_a_large_sideways_photo_is_decoded_large_enough_for_the_frame(tmp_path, cache_dir, monkeypatch):
    """JPEGs are decoded at a reduced size when that still covers the frame, but the size asked
    for was the frame's, not turned with the photo: a phone's sideways 4000x3000 JPEG came out of
    the decoder at 2000x1500, upright 1500x2000, and was enlarged to fill a 1920x1080 frame."""
    folder = tmp_path / "lesson"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (4000, 3000), (90, 120, 150)).save(folder / "photo.jpg", exif=exif, quality=80)
    lesson = {
        "title": "t",
        "width": 1920,
        "height": 1080,
        "fps": 30,
        "segments": [{"image": "photo.jpg", "duration": 0.1}],
    }
    (folder / "lesson.json").write_text(json.dumps(lesson))
    sampled = []
    real_resize = Image.Image.resize

    def resize(self, size, resample=None, box=None, reducing_gap=None):
        if box is not None:
            sampled.append((box[2] - box[0], size[0]))
        return real_resize(self, size, resample, box, reducing_gap)

    monkeypatch.setattr(Image.Image, "resize", resize)
    render_lesson(folder, tmp_path / "out.mp4", cache_dir=cache_dir, settings=RenderSettings(processes=1))
    assert sampled and all(width >= out for width, out in sampled), sampled
