"""A lesson's pictures as image viewers show them: which formats are read (and with what), turned
upright, their colours in sRGB from their ICC profile, more than 8 bits brought to 8.

Used by compose.py (still pictures) and camera.py (moving ones); `assets` checks each picture
with the same formats before a render.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps

# The picture formats a lesson's images are read as. Pillow would open more: EPS by running
# Ghostscript on the file (whose sandbox has a long history of escapes), PSD, ICNS, … HEIC (an
# iPhone's photos) is read by libheif through pillow-heif, AVIF (newer Android phones') by Pillow,
# tried first: pillow-heif also claims AVIF files that name the container ("mif1") first, and
# decodes only HEVC.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
# What a picture's decoder may raise besides OSError and ValueError (pillow-heif: a compression it
# was not built with, libheif's limits).
DECODE_ERRORS = (OSError, ValueError, RuntimeError, SyntaxError, Image.DecompressionBombError)
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def shown(src: Image.Image, resize: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """An opened image as a viewer shows it, resized by `resize` (which gets it upright): turned
    by its EXIF orientation, more than 8 bits brought to 8, its colours in sRGB from its ICC
    profile, in RGB, or RGBA when it has transparency. An RGB photo's colours are converted after
    the resize, on the lesson's pixels rather than the camera's (a 48 MP photo: 1.2 s and 200 MB)."""
    img = ImageOps.exif_transpose(src) if src.getexif().get(0x0112, 1) != 1 else src
    img = _eight_bit(img)
    icc = src.info.get("icc_profile")
    if img.mode not in ("RGB", "RGBA"):  # grey, palette or CMYK: in sRGB while it is still that
        img, icc = _in_srgb(img, icc), None
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            img = img.convert("RGBA")
        elif img.mode != "RGB":
            img = img.convert("RGB")
    return _in_srgb(resize(img), icc)


def _in_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """The picture's colours as sRGB (a screen's, and the lesson's, colour space) by LittleCMS,
    from its ICC profile (Display P3: iPhones; Adobe RGB: cameras; a grey or a printer's CMYK
    one). A profile that changes no colour (sRGB's, whatever its name) leaves the picture as it
    is; one that cannot be read is passed over (as browsers do: the picture is shown as sRGB)."""
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L", "LA", "P", "PA"):
        return img
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if img.mode in ("RGB", "RGBA", "P", "PA") and _changes_nothing(icc):
            return img
        if img.mode in ("P", "PA"):
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
        alpha = img.getchannel("A") if img.mode == "LA" else None
        shown = ImageCms.profileToProfile(
            img.convert("L") if alpha else img,
            profile,
            _SRGB,
            outputMode="RGBA" if img.mode == "RGBA" else "RGB",
        )
        if alpha is not None:
            shown.putalpha(alpha)
        return shown
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img


@functools.lru_cache(maxsize=16)
def _changes_nothing(icc: bytes) -> bool:
    """Whether an RGB profile is sRGB in effect: every colour of a 17-level grid within one level."""
    axis = np.linspace(0, 255, 17).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(1, -1, 3)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    shown = ImageCms.profileToProfile(Image.fromarray(grid), profile, _SRGB, outputMode="RGB")
    return int(np.abs(np.asarray(shown, np.int16) - grid).max()) <= 1


def draft_size(src: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """`size` (of the picture upright) for `Image.draft`, which works on the picture as stored:
    turned a quarter when its EXIF orientation is one (5-8: a phone held upright)."""
    return (size[1], size[0]) if src.getexif().get(0x0112, 1) in (5, 6, 7, 8) else size


def _eight_bit(img: Image.Image) -> Image.Image:
    """A grey picture of more than 8 bits (16-bit PNG or TIFF: mode I;16 or I; floating point: F)
    as 8-bit grey with its levels scaled; Pillow's own conversion clips them at 255 (a 16-bit mid
    grey came out white). Other pictures as they are."""
    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    values = np.asarray(img, dtype=np.float32)
    top = float(values.max(initial=0))
    if img.mode.startswith("I;16") or top > 255:
        full = 65535.0
    else:
        full = 1.0 if img.mode == "F" and top <= 1 else 255.0
    levels = np.clip(np.rint(values * (255 / full)), 0, 255).astype(np.uint8)
    return Image.fromarray(levels, "L")
