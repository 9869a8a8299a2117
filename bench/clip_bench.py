"""How fast a video clip becomes lesson frames (webapp/render/clips.py), in ms per frame.

    .venv/bin/python bench/clip_bench.py [--seconds 4] [--runs 3]

Writes textured, panning H.264 clips (veryfast, crf 23, B-frames, a keyframe every 2 s) at
1920x1080, 1280x720 and 1440x1080 into bench/out/clips/, then times, for a 1920x1080 lesson
at 30 fps (best of --runs: others share the machine):
- clip_pictures for every frame (decode + crop/scale/convert; 1080p is only converted);
- the scaling alone on already decoded frames: FFmpeg (crop + scale + rgb24 in one filter
  graph, as clips.py does) against Pillow (decode to RGB, then Image.resize with a box);
- a span starting 3 s in, one frame (seek to the keyframe before it, decode forward).
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webapp.render import clips  # noqa: E402
from webapp.render.assets import probe_clip  # noqa: E402
from webapp.render.effects import Clip  # noqa: E402

OUT = ROOT / "bench" / "out" / "clips"
LESSON = (1920, 1080)
SOURCES = {"1080p": (1920, 1080), "720p": (1280, 720), "4:3 1440x1080": (1440, 1080)}


def write_textured(path: Path, size: tuple[int, int], seconds: float, fps: int = 30) -> Path:
    if path.exists():
        return path
    w, h = size
    noise = Image.effect_noise((w + fps * 8, h), 60).convert("RGB")
    glow = Image.radial_gradient("L").resize((w + fps * 8, h)).convert("RGB")
    base = Image.blend(Image.new("RGB", noise.size, (60, 110, 160)), Image.blend(noise, glow, 0.5), 0.5)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "23", "x264-params": "keyint=60"}
        for n in range(round(seconds * fps)):
            frame = av.VideoFrame.from_image(base.crop((n * 2 % (fps * 8), 0, n * 2 % (fps * 8) + w, h)))
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def best_ms(fn, runs: int, per: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000 / per)
    return min(times)


def decoded(path: Path, n: int = 30) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == n:
                return frames
    return frames


def pillow_cover(frame: av.VideoFrame) -> Image.Image:
    img = frame.to_image()
    iw, ih = img.size
    if img.size == LESSON:
        return img
    scale = max(LESSON[0] / iw, LESSON[1] / ih)
    bw, bh = LESSON[0] / scale, LESSON[1] / scale
    box = ((iw - bw) / 2, (ih - bh) / 2, (iw + bw) / 2, (ih + bh) / 2)
    return img.resize(LESSON, Image.Resampling.BILINEAR, box=box)


def bench_source(name: str, size: tuple[int, int], seconds: float, runs: int) -> None:
    path = write_textured(OUT / f"{size[0]}x{size[1]}.mp4", size, seconds)
    info = probe_clip(path, "bench")
    clip = Clip(path, 0.0, info.duration, 0.0, info)
    count = round(info.duration * 30)
    full = best_ms(lambda: list(clips.clip_pictures(clip, 30, *LESSON, 0, count)), runs, count)
    frames = decoded(path)
    scaled = {}
    for interpolation in ("bilinear", "bicubic"):
        clips.INTERPOLATION = interpolation
        cover = clips._Cover(*LESSON, Fraction(1))
        scaled[interpolation] = best_ms(lambda c=cover: [c.picture(f) for f in frames], runs, len(frames))
    clips.INTERPOLATION = "bilinear"
    pillow = best_ms(lambda: [pillow_cover(f) for f in frames], runs, len(frames))
    seek = best_ms(lambda: list(clips.clip_pictures(clip, 30, *LESSON, 90, 1)), runs, 1)
    print(
        f"{name:>14}: clip_pictures {full:5.1f} | scale alone: FFmpeg bilinear {scaled['bilinear']:5.1f}, "
        f"bicubic {scaled['bicubic']:5.1f}, Pillow bilinear {pillow:5.1f} | one frame at 3 s: {seek:4.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"lesson {LESSON[0]}x{LESSON[1]} @ 30 fps; ms/frame, best of {args.runs} (a shared machine)")
    for name, size in SOURCES.items():
        bench_source(name, size, args.seconds, args.runs)


if __name__ == "__main__":
    main()
