"""Still-only lessons render exactly as they did before clips, motion, transitions, captions,
the music bed and loudness came (issue 11: every existing lesson renders as before).

The digest below is of every decoded frame (Y, U and V, row by row) of the lesson written here,
as rendered by the renderer of commit 36b00cc (the last one before that work) with the same
settings, on these x86-64 machines (CI's). x264 is bit-exact across CPUs at a fixed thread
count; FFmpeg's RGB -> YUV conversion may round differently on another CPU family (its SIMD
paths are not all bit-exact), so on such a machine, render the lesson with 36b00cc there and
compare with that digest before suspecting a change.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import wave
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from webapp.render import RenderSettings, render_lesson

FRAMES_BEFORE = 339
DIGEST_BEFORE = "80de838a709d57dd9c93cf426d6bd26586a8ee9958ee4ec6d91fdb78bae60d86"


def write_still_lesson(folder: Path) -> Path:
    """Three still segments at 640x360: a picture with a title and text, a picture with
    transparency under narration, and words on a colour for 9 s (two equal pieces)."""
    (folder / "images").mkdir(parents=True)
    (folder / "audio").mkdir()
    x, y = np.arange(960)[None, :], np.arange(540)[:, None]
    rgb = np.zeros((540, 960, 3), np.uint8)
    rgb[..., 0] = x * 255 // 959
    rgb[..., 1] = y * 255 // 539
    rgb[..., 2] = ((x // 40 + y // 40) % 2) * 200
    picture = Image.fromarray(rgb)
    ImageDraw.Draw(picture).ellipse((300, 120, 660, 420), fill=(250, 240, 20))
    picture.save(folder / "images" / "a.png")
    Image.fromarray(rgb[::-1, ::-1].copy()).convert("RGBA").save(folder / "images" / "b.png")
    samples = (int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(int(48000 * 1.3)))
    with wave.open(str(folder / "audio" / "n.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    manifest = {
        "title": "Still lesson",
        "width": 640,
        "height": 360,
        "fps": 30,
        "segments": [
            {"image": "images/a.png", "title": "A title", "text": "Some words under it", "duration": 1.0},
            {"image": "images/b.png", "audio": "audio/n.wav"},
            {
                "background": "#204060",
                "title": "Only words",
                "text": "A long segment: two pieces",
                "duration": 9.0,
            },
        ],
    }
    (folder / "lesson.json").write_text(json.dumps(manifest))
    return folder


def test_still_only_lessons_show_the_same_frames_as_before(tmp_path):
    lesson = write_still_lesson(tmp_path / "lesson")
    out = tmp_path / "out.mp4"
    render_lesson(lesson, out, cache_dir=tmp_path / "cache", settings=RenderSettings(processes=1, threads=1))
    digest, frames = hashlib.sha256(), 0
    with av.open(str(out)) as container:
        for frame in container.decode(container.streams.video[0]):
            for plane in frame.planes:
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                digest.update(rows[:, : plane.width].tobytes())
            frames += 1
    assert (frames, digest.hexdigest()) == (FRAMES_BEFORE, DIGEST_BEFORE)
