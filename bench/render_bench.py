#!/usr/bin/env python3
"""Benchmark the lesson renderer against a hand-tuned ffmpeg command line and MoviePy 2.

    .venv/bin/python bench/render_bench.py              # 5 min, 25 segments, 1080p30, 3 runs
    .venv/bin/python bench/render_bench.py --quick      # 60 s, 6 segments, 1080p30
    .venv/bin/python bench/render_bench.py --only ours,ffmpeg --runs 5
    .venv/bin/python bench/render_bench.py --motion     # 60 s: motion, clips, transitions, captions

Every measurement runs in a fresh child interpreter and reports wall time, CPU seconds
(the process and every process it waited for) and peak RSS (the largest single process).
Printed: medians over the runs and the ratio of each wall time to the ffmpeg command's.
Outputs and the generated lesson live in bench/out/ (git-ignored). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"


def changed_segment(profile: str) -> int:
    """The segment "fixed" between the cold and the warm renders (the middle one)."""
    return PROFILES[profile]["segments"] // 2


PROFILES = {
    "full": {"segments": 25, "seconds": 300.0, "width": 1920, "height": 1080, "fps": 30},
    "quick": {"segments": 6, "seconds": 60.0, "width": 1920, "height": 1080, "fps": 30},
    "motion": {"segments": 6, "seconds": 60.0, "width": 1920, "height": 1080, "fps": 30},
}

VARIANTS = {
    "ours-cold": "our renderer, empty cache",
    "ours-warm": "our renderer, one segment's text changed (warm cache)",
    "ours-warm-audio": "our renderer, one segment's narration changed (warm cache)",
    "ours-same": "our renderer, nothing changed (warm cache)",
    "ffmpeg": "ffmpeg CLI: PNGs + concat demuxer + libx264 veryfast/crf23/stillimage + AAC",
    "ffmpeg-naive": "same ffmpeg CLI, pixel-format conversion after fps (as commonly written)",
    "moviepy": "MoviePy 2, ImageClip per segment, same x264 settings",
    "moviepy-defaults": "MoviePy 2, ImageClip per segment, write_videofile defaults",
    "moviepy-textclip": "MoviePy 2 the usual way: background + TextClip overlays, defaults",
}
DEFAULT = ["ours-cold", "ours-warm", "ours-warm-audio", "ours-same", "ffmpeg", "moviepy", "moviepy-defaults"]
MOTION_VARIANTS = {
    "ours-cold": "our renderer, empty cache (captions burned in)",
    "ours-caption": "our renderer, captions not burned in, one caption's text changed (warm cache)",
    "ffmpeg": "one hand-tuned ffmpeg command: zoompan, crop, xfade, subtitles, sidechaincompress, loudnorm",
}


class VariantFailed(Exception):
    """A measured child process failed; the message is one line."""


# --------------------------------------------------------------------------------------------
# Tools


def find_ffmpeg() -> str:
    """An ffmpeg binary with libx264: $FFMPEG_BINARY, imageio-ffmpeg's, or one on PATH."""
    candidates = [os.environ.get("FFMPEG_BINARY")]
    try:
        import imageio_ffmpeg

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        pass
    candidates.append(shutil.which("ffmpeg"))
    for exe in filter(None, candidates):
        try:
            encoders = subprocess.run(
                [exe, "-hide_banner", "-encoders"], capture_output=True, text=True
            ).stdout
        except OSError:
            continue
        if "libx264" in encoders:
            return exe
    sys.exit(
        "No ffmpeg with libx264 found. Install the bench requirements:\n"
        "  .venv/bin/pip install --no-deps -r bench/requirements.txt\n"
        "(imageio-ffmpeg ships one), or `apt-get install ffmpeg`, or set FFMPEG_BINARY."
    )


# --------------------------------------------------------------------------------------------
# The standard lesson


def lesson_dir(profile: str) -> Path:
    if profile == "motion":
        return OUT / "motion" / "lesson_1"
    return OUT / f"lesson-{profile}"


def durations(profile: str) -> list[float]:
    p = PROFILES[profile]
    rnd = random.Random(20240120)
    weights = [rnd.uniform(0.65, 1.35) for _ in range(p["segments"])]
    scale = p["seconds"] / sum(weights)
    secs = [round(w * scale, 3) for w in weights]
    secs[-1] = round(p["seconds"] - sum(secs[:-1]), 3)
    return secs


def ensure_lesson(profile: str) -> Path:
    from webapp.render.sample import write_sample_lesson

    d = lesson_dir(profile)
    if (d / "lesson.json").exists():
        return d
    p = PROFILES[profile]
    print(f"generating the {profile} lesson in {d} ...", flush=True)
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_sample_lesson(
        tmp,
        segments=p["segments"],
        seconds=durations(profile),
        width=p["width"],
        height=p["height"],
        fps=p["fps"],
        detail=True,
        title="Benchmark lesson — บทเรียน",
    )
    (tmp / "lesson.orig.json").write_bytes((tmp / "lesson.json").read_bytes())
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return d


def ensure_baseline_inputs(profile: str) -> Path:
    """Composed PNGs (text included) and concat lists for the ffmpeg/MoviePy baselines."""
    from webapp.render.compose import compose
    from webapp.render.manifest import load_manifest

    d = lesson_dir(profile)
    base = OUT / f"baseline-{profile}"
    if (base / "images.txt").exists():
        return base
    base.mkdir(parents=True, exist_ok=True)
    m = load_manifest(d)
    images, audio = [], []
    for seg, (_start, frames) in zip(m.segments, m.segment_frames(), strict=True):
        png = base / f"{seg.index:03d}.png"
        compose(m, seg).save(png, compress_level=1)
        images.append(f"file '{png.name}'\nduration {frames / m.fps:.6f}\n")
        audio.append(f"file '{seg.audio}'\n")
    images.append(f"file '{m.segments[-1].index:03d}.png'\n")  # concat demuxer quirk: last one
    (base / "images.txt").write_text("".join(images))
    (base / "audio.txt").write_text("".join(audio))
    return base


def set_segment_title(profile: str, suffix: str | None) -> None:
    d = lesson_dir(profile)
    manifest = json.loads((d / "lesson.orig.json").read_text(encoding="utf-8"))
    if suffix:
        manifest["segments"][changed_segment(profile)]["title"] += suffix
    (d / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def set_segment_audio(profile: str, variant: int) -> None:
    """Replace the changed segment's narration with a different tone of the same length."""
    from webapp.render.sample import tone_frequency, write_tone

    d = lesson_dir(profile)
    k = changed_segment(profile)
    write_tone(d / "audio" / f"{k + 1}.wav", durations(profile)[k], tone_frequency(k + variant))


# --------------------------------------------------------------------------------------------
# One measurement (runs in a child interpreter)


def _own_peak_kb() -> int | None:
    """This process's own peak RSS (VmHWM). Linux carries ru_maxrss over from the parent across
    fork and exec, so a child of a big bench process would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def child(
    variant: str, profile: str, output: Path, cache: Path, processes: int | None, lesson: Path | None = None
) -> dict:
    d = lesson or lesson_dir(profile)
    base = OUT / f"baseline-{profile}"
    t0 = time.perf_counter()
    if variant.startswith("ours"):
        from webapp.render import RenderSettings, render_lesson

        settings = RenderSettings(processes=processes) if processes else RenderSettings()
        result = render_lesson(d, output, cache_dir=cache, settings=settings)
        extra = {k: getattr(result, k, None) for k in ("segments_encoded", "pieces_encoded")}
    elif profile == "motion":
        import motion_lesson

        cmd = motion_lesson.ffmpeg_command(find_ffmpeg(), d, motion_lesson.ass_path(d.parent), output)
        subprocess.run(cmd, check=True)
        extra = {}
    elif variant.startswith("ffmpeg"):
        ffmpeg = find_ffmpeg()
        vf = "format=yuv420p,fps=30" if variant == "ffmpeg" else "fps=30,format=yuv420p"
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "concat", "-safe", "0", "-i", "images.txt",
               "-f", "concat", "-safe", "0", "-i", "audio.txt",
               "-map", "0:v", "-map", "1:a", "-vf", vf,
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-tune", "stillimage",
               "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(output)]  # fmt: skip
        subprocess.run(cmd, cwd=base, check=True)
        extra = {}
    else:
        extra = moviepy_render(variant, profile, output)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    own = _own_peak_kb() or me.ru_maxrss
    return {
        "wall": wall,
        "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        "rss_mb": max(own, kids.ru_maxrss) / 1024,
        "rss_self_mb": own / 1024,
        "rss_children_mb": kids.ru_maxrss / 1024,
        **extra,
    }


def moviepy_render(variant: str, profile: str, output: Path) -> dict:
    os.environ.setdefault("FFMPEG_BINARY", find_ffmpeg())
    from moviepy import (
        AudioFileClip,
        CompositeVideoClip,
        ImageClip,
        TextClip,
        concatenate_videoclips,
    )

    from webapp.render.fonts import FONT_DIR
    from webapp.render.manifest import load_manifest

    m = load_manifest(lesson_dir(profile))
    base = OUT / f"baseline-{profile}"
    clips = []
    for seg, (_s, frames) in zip(m.segments, m.segment_frames(), strict=True):
        dur = frames / m.fps
        audio = AudioFileClip(str(seg.audio))
        if variant == "moviepy-textclip":
            bg = ImageClip(str(seg.image)).resized((m.width, m.height)).with_duration(dur)
            title = TextClip(
                font=str(FONT_DIR / "NotoSans-Bold.ttf"), text=seg.title, font_size=64, color="white"
            )
            body = TextClip(
                font=str(FONT_DIR / "NotoSans-Regular.ttf"),
                text=seg.text,
                font_size=44,
                color="white",
                method="caption",
                size=(m.width - 200, None),
            )
            clip = CompositeVideoClip(
                [
                    bg,
                    title.with_position(("center", 700)).with_duration(dur),
                    body.with_position(("center", 800)).with_duration(dur),
                ]
            )
        else:
            clip = ImageClip(str(base / f"{seg.index:03d}.png")).with_duration(dur)
        # As a MoviePy user writes it: the clip lasts as long as its narration.
        clips.append(clip.with_duration(audio.duration).with_audio(audio))
    video = concatenate_videoclips(clips)
    if variant == "moviepy":
        video.write_videofile(
            str(output),
            fps=m.fps,
            codec="libx264",
            audio_codec="aac",
            preset="veryfast",
            ffmpeg_params=[
                "-crf",
                "23",
                "-tune",
                "stillimage",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
            ],
            logger=None,
        )
    else:
        video.write_videofile(str(output), fps=m.fps, logger=None)
    return {}


# --------------------------------------------------------------------------------------------
# The driver


def run_child(
    variant: str, profile: str, run: int, processes: int | None, lesson: Path | None = None
) -> dict:
    """Measure one variant in a child interpreter; VariantFailed (one line) if it fails."""
    output = OUT / f"{profile}-{variant}-{run}.mp4"
    cache = OUT / f"cache-{profile}-{run}"
    cmd = [sys.executable, __file__, "--child", variant, "--profile", profile,
           "--output", str(output), "--cache", str(cache)]  # fmt: skip
    if processes:
        cmd += ["--processes", str(processes)]
    if lesson:
        cmd += ["--lesson", str(lesson)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise VariantFailed(f"{variant} failed: {last[:300]}", proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["output_mb"] = output.stat().st_size / 1e6
    if profile == "motion":
        import motion_lesson

        result.update(motion_lesson.probe(output))
    with __import__("contextlib").suppress(OSError):
        output.unlink()
    return result


def measure(variants: list[str], profile: str, runs: int, processes: int | None) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {v: [] for v in variants}
    ours = [v for v in variants if v.startswith("ours")]
    for run in range(runs):
        cache = OUT / f"cache-{profile}-{run}"
        if ours:
            # One cold render, then edits on top of its cache, in a fixed order.
            shutil.rmtree(cache, ignore_errors=True)
            set_segment_title(profile, None)
            set_segment_audio(profile, 0)
            suffix = f" (fixed {run})"
            steps = [
                ("ours-cold", None),
                ("ours-warm", lambda s=suffix: set_segment_title(profile, s)),
                ("ours-warm-audio", lambda: set_segment_audio(profile, 1)),
                ("ours-same", None),
            ]
            for name, edit in steps:
                if edit:
                    edit()
                r = run_child(name, profile, run, processes)
                if name in samples:
                    samples[name].append(r)
                    print(f"  run {run + 1}: {name:18s} {r['wall']:7.2f} s", flush=True)
            set_segment_title(profile, None)
            set_segment_audio(profile, 0)
            shutil.rmtree(cache, ignore_errors=True)
        for name in variants:
            if name.startswith("ours"):
                continue
            r = run_child(name, profile, run, processes)
            samples[name].append(r)
            print(f"  run {run + 1}: {name:18s} {r['wall']:7.2f} s", flush=True)
    return samples


def summarize(samples: dict[str, list[dict]], profile: str) -> list[dict]:
    seconds = PROFILES[profile]["seconds"]
    rows = []
    for name, rs in samples.items():
        if not rs:
            continue
        wall = statistics.median(r["wall"] for r in rs)
        rows.append(
            {
                "variant": name,
                "runs": len(rs),
                "wall": wall,
                "realtime": seconds / wall,
                "cpu": statistics.median(r["cpu"] for r in rs),
                "rss_mb": max(r["rss_mb"] for r in rs),
                "output_mb": statistics.median(r["output_mb"] for r in rs),
            }
        )
    ref = next((r["wall"] for r in rows if r["variant"] == "ffmpeg"), None)
    cold = next((r["wall"] for r in rows if r["variant"] == "ours-cold"), None)
    for r in rows:
        r["vs_ffmpeg"] = r["wall"] / ref if ref else None
        r["vs_cold"] = r["wall"] / cold if cold and r["variant"].startswith("ours") else None
    return rows


def print_table(rows: list[dict], profile: str) -> str:
    p = PROFILES[profile]
    head = (
        f"lesson: {p['seconds']:.0f} s, {p['segments']} segments, {p['width']}x{p['height']} "
        f"{p['fps']} fps | {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    lines = [
        head,
        "",
        "| variant | runs | wall s (median) | realtime × | CPU s | peak RSS MB | output MB "
        "| vs ffmpeg | vs cold |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs = f"{r['vs_ffmpeg']:.2f}×" if r["vs_ffmpeg"] else "–"
        vc = f"{r['vs_cold']:.3f}×" if r["vs_cold"] else "–"
        lines.append(
            f"| {r['variant']} | {r['runs']} | {r['wall']:.2f} | {r['realtime']:.1f} | {r['cpu']:.1f} | "
            f"{r['rss_mb']:.0f} | {r['output_mb']:.1f} | {vs} | {vc} |"
        )
    text = "\n".join(lines)
    print("\n" + text + "\n")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60 s lesson of 6 segments instead of 5 min / 25")
    ap.add_argument("--runs", type=int, default=3, help="runs per variant (median reported; default 3)")
    ap.add_argument("--only", default=None, help=f"comma-separated variants (default: {','.join(DEFAULT)})")
    ap.add_argument(
        "--all", action="store_true", help="also the slow/extra variants (textclip, naive ffmpeg)"
    )
    ap.add_argument("--processes", type=int, default=None, help="our renderer's encoder processes")
    ap.add_argument(
        "--motion",
        action="store_true",
        help="60 s lesson with motion, clips, transitions, burned-in captions and music (own variants)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--profile", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--lesson", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        result = child(args.child, args.profile, args.output, args.cache, args.processes, args.lesson)
        print(json.dumps(result))
        return

    profile = "motion" if args.motion else "quick" if args.quick else "full"
    known = MOTION_VARIANTS if args.motion else VARIANTS
    variants = list(known) if args.all or args.motion else DEFAULT
    if args.only:
        variants = [v.strip() for v in args.only.split(",") if v.strip()]
        unknown = set(variants) - set(known)
        if unknown:
            sys.exit(f"unknown variants: {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"ffmpeg: {find_ffmpeg()}")
    if args.motion:
        import motion_lesson

        samples = motion_lesson.measure_motion(variants, args.runs, OUT, run_child, args.processes)
    else:
        ensure_lesson(profile)
        ensure_baseline_inputs(profile)
        try:
            samples = measure(variants, profile, args.runs, args.processes)
        except VariantFailed as exc:
            sys.exit(f"{exc.args[0]}\n{exc.args[1]}")
    rows = summarize(samples, profile)
    table = print_table(rows, profile)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"results-{profile}-{stamp}.json").write_text(
        json.dumps({"rows": rows, "samples": samples}, indent=2)
    )
    (OUT / f"results-{profile}-{stamp}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
