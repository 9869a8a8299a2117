#!/usr/bin/env python3
"""What loudness normalisation costs: the standard bench lesson rendered cold with
`"loudness": null` and with the default (-16 LUFS), alternating, each in a fresh child
interpreter with the bench's settings (RenderSettings() defaults, verify on).

    .venv/bin/python bench/loudness_cost.py                 # 5 min lesson, 3 runs of each
    .venv/bin/python bench/loudness_cost.py --quick --runs 5
    .venv/bin/python bench/loudness_cost.py --code ../other-checkout   # that checkout's renderer

Prints each run (wall s, CPU s, the 1-minute load average before it) and the medians. The
machine is often shared: compare medians of alternating runs only, and read the load column.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.render_bench import OUT, ensure_lesson  # noqa: E402

VARIANTS = ("null", "default")


def set_loudness(lesson: Path, variant: str) -> None:
    manifest = json.loads((lesson / "lesson.orig.json").read_text(encoding="utf-8"))
    if variant == "null":
        manifest["loudness"] = None
    (lesson / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


def child(code: Path, lesson: Path, output: Path, cache: Path) -> None:
    sys.path.insert(0, str(code))  # before this checkout: measure that renderer
    from webapp.render import RenderSettings, render_lesson

    t0 = time.perf_counter()
    render_lesson(lesson, output, cache_dir=cache, settings=RenderSettings(verify=True))
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    print(json.dumps({"wall": wall, "cpu": cpu}))


def run_once(code: Path, lesson: Path, variant: str, n: int) -> dict:
    set_loudness(lesson, variant)
    work = OUT / "loudness-cost"
    cache = work / f"cache-{variant}-{n}"
    shutil.rmtree(cache, ignore_errors=True)
    load = os.getloadavg()[0]
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(code),
        str(lesson),
        str(work / f"{variant}.mp4"),
        str(cache),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=code)  # encoder processes import from cwd
    if done.returncode:
        sys.exit(f"the {variant} render failed:\n{done.stderr[-2000:]}")
    shutil.rmtree(cache, ignore_errors=True)
    return {"variant": variant, "load": load, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the 60 s lesson instead of the 5 min one")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose webapp.render is measured")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*(Path(p) for p in args.child))
        return
    lesson = ensure_lesson("quick" if args.quick else "full")
    (OUT / "loudness-cost").mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for n in range(args.runs):
            for variant in VARIANTS if n % 2 == 0 else reversed(VARIANTS):
                r = run_once(args.code.resolve(), lesson, variant, n)
                runs.append(r)
                print(
                    f"run {n + 1} {variant:8s} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.1f} s"
                    f"  load {r['load']:.2f}",
                    flush=True,
                )
    finally:
        (lesson / "lesson.json").write_bytes((lesson / "lesson.orig.json").read_bytes())
    med = {v: statistics.median(r["wall"] for r in runs if r["variant"] == v) for v in VARIANTS}
    cpu = {v: statistics.median(r["cpu"] for r in runs if r["variant"] == v) for v in VARIANTS}
    loads = [r["load"] for r in runs]
    print(
        f"median wall: null {med['null']:.2f} s, default {med['default']:.2f} s "
        f"({(med['default'] / med['null'] - 1) * 100:+.1f} %); median CPU: null {cpu['null']:.1f} s, "
        f"default {cpu['default']:.1f} s; load {min(loads):.1f}-{max(loads):.1f}"
    )


if __name__ == "__main__":
    main()
