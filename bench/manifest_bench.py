#!/usr/bin/env python3
"""How long `load_manifest` takes on worst-case-but-allowed lessons (a web request validates them).

    .venv/bin/python bench/manifest_bench.py              # every case, 5 runs each
    .venv/bin/python bench/manifest_bench.py --runs 3 --only same-media,distinct-audio

Each case is a 2,000-segment lesson written to a temporary folder; the first load (cold
per-process caches: fonts, fontconfig look-ups) and the median of the following runs are
printed. `texts-5000` is larger than lesson.json may be, so it also runs with the size and
text caps lifted, to show what validating that much text costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webapp.render import ManifestError, load_manifest  # noqa: E402
from webapp.render import limits as limits_module  # noqa: E402
from webapp.render.fonts import bundled_faces, load_face  # noqa: E402
from webapp.render.sample import write_background, write_tone  # noqa: E402

SEGMENTS = 2000
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _covered(faces) -> list[str]:
    chars = []
    for face in faces:
        for a, b in zip(face.starts, face.ends, strict=True):
            chars.extend(chr(c) for c in range(max(a, 0x21), min(b, 0x2FFF) + 1))
    return [c for c in dict.fromkeys(chars) if c.isprintable() and not c.isspace()]


def _pool() -> list[str]:
    """Characters every bundled face chain covers (so validation passes), many distinct ones."""
    regular, bold = set(_covered(bundled_faces(False))), set(_covered(bundled_faces(True)))
    return sorted(regular & bold)


def _system_only_pool() -> list[str]:
    """Characters only a system font (DejaVu Sans) covers: each needs a fontconfig look-up."""
    if not DEJAVU.exists():
        return []
    bundled = set(_covered(bundled_faces(False))) | set(_covered(bundled_faces(True)))
    bold = load_face(str(DEJAVU.with_name("DejaVuSans-Bold.ttf")))
    return [c for c in _covered([load_face(str(DEJAVU))]) if c not in bundled and bold.covers(c)]


def _text(pool: list[str], start: int, n: int) -> str:
    words = []
    for i in range(0, n, 8):
        words.append("".join(pool[(start + i + k) % len(pool)] for k in range(min(7, n - i))))
    return " ".join(words)[:n]


def _write(lesson: Path, segments: list[dict]) -> Path:
    lesson.mkdir(parents=True, exist_ok=True)
    manifest = {"title": "Bench", "width": 640, "height": 360, "fps": 30, "segments": segments}
    (lesson / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return lesson


def case_texts(base: Path, chars: int, name: str, pool: list[str]) -> Path:
    return _write(
        base / name,
        [
            {"duration": 1.0, "title": _text(pool, 97 * i, chars), "text": _text(pool, 31 * i + 5, chars)}
            for i in range(SEGMENTS)
        ],
    )


def case_same_media(base: Path) -> Path:
    lesson = base / "same-media"
    lesson.mkdir()
    write_tone(lesson / "a.wav", 0.5, 440.0)
    write_background(lesson / "i.png", 64, 36, (40, 70, 200))
    return _write(
        lesson, [{"audio": "a.wav", "image": "i.png", "title": f"Part {i}"} for i in range(SEGMENTS)]
    )


def case_distinct_audio(base: Path) -> Path:
    lesson = base / "distinct-audio"
    (lesson / "audio").mkdir(parents=True)
    for i in range(SEGMENTS):
        write_tone(lesson / "audio" / f"{i}.wav", 0.2, 440.0)
    return _write(lesson, [{"audio": f"audio/{i}.wav", "title": f"Part {i}"} for i in range(SEGMENTS)])


@contextmanager
def caps_lifted():
    names = ("MAX_MANIFEST_BYTES", "MAX_TOTAL_TEXT_CHARS")
    saved = {k: getattr(limits_module, k) for k in names}  # a missing cap is an error, not a no-op
    for k in saved:
        setattr(limits_module, k, 1 << 40)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(limits_module, k, v)


def measure(lesson: Path, runs: int) -> tuple[float, float, str]:
    times, outcome = [], ""
    for _ in range(runs):
        t = time.perf_counter()
        try:
            m = load_manifest(lesson)
            outcome = f"ok, {len(m.segments)} segments"
        except ManifestError as exc:
            outcome = f"refused: {str(exc)[:70]}"
        times.append(time.perf_counter() - t)
    return times[0], statistics.median(times[1:] or times), outcome


def main() -> int:
    global SEGMENTS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", default="", help="comma-separated case names")
    p.add_argument("--segments", type=int, default=SEGMENTS, help="segments per lesson (default 2000)")
    args = p.parse_args()
    SEGMENTS = args.segments
    pool, system_pool = _pool(), _system_only_pool()
    with tempfile.TemporaryDirectory(prefix="manifest-bench-") as tmp:
        base = Path(tmp)
        cases = {
            # 2,000 segments whose titles and texts total just under 200,000 characters.
            "texts-at-cap": lambda: (case_texts(base, 49, "texts-at-cap", pool), False),
            "texts-5000": lambda: (case_texts(base, 5000, "texts-5000", pool), False),
            "texts-5000-uncapped": lambda: (base / "texts-5000", True),
            # Characters only a system font covers (fontconfig is asked about them).
            "system-font-text": lambda: (case_texts(base, 49, "system-font-text", system_pool), False),
            "same-media": lambda: (case_same_media(base), False),
            "distinct-audio": lambda: (case_distinct_audio(base), False),
        }
        only = [c for c in args.only.split(",") if c]
        if "texts-5000-uncapped" in only and "texts-5000" not in only:
            only.insert(only.index("texts-5000-uncapped"), "texts-5000")
        print(f"{'case':22} {'json':>9} {'first':>9} {'median':>9}  outcome")
        for name, make in cases.items():
            if only and name not in only:
                continue
            lesson, uncapped = make()
            size = (lesson / "lesson.json").stat().st_size
            if uncapped:
                with caps_lifted():
                    first, median, outcome = measure(lesson, args.runs)
            else:
                first, median, outcome = measure(lesson, args.runs)
            print(f"{name:22} {size / 1e6:7.2f}MB {first * 1e3:7.0f}ms {median * 1e3:7.0f}ms  {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
