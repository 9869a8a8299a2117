"""Text in any script: font runs by coverage, raqm shaping, wrapping, legibility."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageStat, features

from webapp.render import RenderEnvironmentError, load_manifest, render_lesson
from webapp.render import fonts as fonts_module
from webapp.render.compose import TextBlock, compose
from webapp.render.fonts import FONT_DIR, FontChain, bundled_faces, is_mark
from webapp.render.manifest import font_chain

THAI_TONES = "ปี่ ฟ้า น้ำ ป่า"


def _names(runs):
    return [(text, Path(face.path).name) for text, face in runs]


def test_raqm_is_available():
    # CI installs libfribidi0; without it Pillow falls back to basic layout and Thai breaks.
    assert features.check("raqm"), fonts_module.raqm_problem()


def test_bundled_fonts_and_licence_are_present():
    for name in fonts_module.BUNDLED_REGULAR + fonts_module.BUNDLED_BOLD:
        assert (FONT_DIR / name).stat().st_size > 10_000
    assert "SIL OPEN FONT LICENSE Version 1.1" in (FONT_DIR / "OFL.txt").read_text()


def test_no_single_font_covers_thai_and_latin():
    latin, thai, _arabic = bundled_faces()
    assert latin.covers("A") and not latin.covers("ก")
    assert thai.covers("ก") and not thai.covers("A")


def test_text_is_split_into_runs_by_coverage():
    chain = FontChain(bundled_faces(), system_fallback=False)
    runs = _names(chain.runs("Tones: ปี่ ฟ้า (x) مرحبا"))
    assert runs == [
        ("Tones: ", "NotoSans-Regular.ttf"),
        ("ปี่ ฟ้า ", "NotoSansThai-Regular.ttf"),
        ("(x) ", "NotoSans-Regular.ttf"),
        ("مرحبا", "NotoSansArabic-Regular.ttf"),
    ]
    for text, _ in runs:
        assert not is_mark(text[0])  # a tone mark never starts a run


def test_lesson_font_comes_first(make_lesson):
    lesson = make_lesson(segments=1)
    (lesson / "fonts").mkdir()
    shutil.copy(FONT_DIR / "NotoSans-Bold.ttf", lesson / "fonts" / "custom.ttf")
    manifest = json.loads((lesson / "lesson.json").read_text())
    manifest["font"] = "fonts/custom.ttf"
    (lesson / "lesson.json").write_text(json.dumps(manifest))
    m = load_manifest(lesson)
    chain = font_chain(m)
    assert Path(chain.faces[0].path) == (lesson / "fonts" / "custom.ttf").resolve()
    assert _names(chain.runs("Hi ปี่")) == [("Hi ", "custom.ttf"), ("ปี่", "NotoSansThai-Regular.ttf")]


def _ink(text: str, layout) -> tuple[bytes, tuple[int, int, int, int]]:
    font = ImageFont.truetype(str(FONT_DIR / "NotoSansThai-Regular.ttf"), 64, layout_engine=layout)
    img = Image.new("L", (200, 120), 0)
    ImageDraw.Draw(img).text((20, 90), text, font=font, fill=255, anchor="ls")
    return img.tobytes(), img.getbbox()


@pytest.mark.parametrize("word", THAI_TONES.split())
def test_thai_marks_are_positioned_by_shaping(word):
    """With raqm (HarfBuzz) marks are placed by the font's rules, not piled on each other."""
    shaped, shaped_box = _ink(word, ImageFont.Layout.RAQM)
    naive, naive_box = _ink(word, ImageFont.Layout.BASIC)
    assert shaped != naive
    if word in ("ปี่", "น้ำ"):  # the tone mark stacks above the upper vowel
        assert shaped_box[1] < naive_box[1] - 5


def test_compose_uses_raqm_for_every_face():
    for face in bundled_faces() + bundled_faces(bold=True):
        assert face.font(20).layout_engine == ImageFont.Layout.RAQM


def test_arabic_is_joined():
    face = bundled_faces()[2]
    basic = ImageFont.truetype(face.path, 64, layout_engine=ImageFont.Layout.BASIC)
    assert face.font(64).getlength("مرحبا") < basic.getlength("مرحبا") * 0.9


def test_thai_without_spaces_wraps_between_clusters():
    block = TextBlock(FontChain(bundled_faces(), system_fallback=False), 40)
    text = "ขอบคุณมากครับน้ำป่าปี่ฟ้า" * 3
    lines = block.wrap(text, 200)
    assert len(lines) > 2 and "".join(lines) == text
    for line in lines:
        assert block.measure(line) <= 200
        assert not is_mark(line[0]) and unicodedata.category(line[0]) != "Mn"
        assert line[-1] not in "เแโใไ"  # a leading vowel stays with its consonant


# A Thai sentence as Thai is written, without spaces, and the words it is made of (a compound such
# as ออกเสียง, "pronounce", may break between its words: ออก | เสียง).
THAI_WORDS = [
    "ภาษา", "ไทย", "เป็น", "ภาษา", "ที่", "มี", "วรรณยุกต์", "และ", "ไม่", "มี", "การ", "เว้น", "วรรค",
    "ระหว่าง", "คำ", "นักเรียน", "ทุก", "คน", "ควร", "ฝึก", "ออก", "เสียง", "ให้", "ถูก", "ต้อง",
]  # fmt: skip
THAI_SENTENCE = "".join(THAI_WORDS)


def _whole_words(line: str) -> bool:
    """Whether `line` is a run of whole words of THAI_WORDS."""
    ends = {0}
    for i in range(1, len(line) + 1):
        if any(i - len(w) in ends and line[i - len(w) : i] == w for w in THAI_WORDS):
            ends.add(i)
    return len(line) in ends


@pytest.mark.parametrize("width", [200, 300, 420])
def test_thai_without_spaces_wraps_between_words(width):
    """Thai puts no spaces between words: a title breaks between them, as browsers and word
    processors break it (ICU's dictionary), not inside a word ("ออกเสีย" + "ง", or a line that
    starts with the vowel ะ or า, which Thai never does)."""
    block = TextBlock(FontChain(bundled_faces(), system_fallback=False), 40)
    lines = block.wrap(THAI_SENTENCE, width)
    assert len(lines) > 1 and "".join(lines) == THAI_SENTENCE
    for line in lines:
        assert block.measure(line) <= width
        assert _whole_words(line), lines
        assert line[0] not in "ะาำๅๆฯ" and not is_mark(line[0])


def test_a_thai_word_longer_than_the_line_is_cut_between_clusters():
    block = TextBlock(FontChain(bundled_faces(), system_fallback=False), 40)
    lines = block.wrap("วรรณยุกต์", 60)
    assert len(lines) > 1 and "".join(lines) == "วรรณยุกต์"
    for line in lines:
        assert not is_mark(line[0]) and line[0] not in "ะาำๅๆฯ" and line[-1] not in "เแโใไ"


def test_latin_wraps_at_spaces():
    block = TextBlock(FontChain(bundled_faces(), system_fallback=False), 30)
    lines = block.wrap("one two three four five six seven eight nine ten", 200)
    assert len(lines) > 1
    assert " ".join(lines) == "one two three four five six seven eight nine ten"


def _lesson_with(make_lesson, title, text, color="#ffffff", size=(640, 360)):
    lesson = make_lesson(segments=1, images=False, width=size[0], height=size[1])
    manifest = json.loads((lesson / "lesson.json").read_text())
    manifest["segments"][0].update(title=title, text=text, background=color)
    (lesson / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False))
    return load_manifest(lesson)


def test_text_sits_on_a_dark_panel_and_leaves_corners_free(make_lesson):
    m = _lesson_with(make_lesson, "สวัสดีครับ", THAI_TONES)
    img = compose(m, m.segments[0])
    assert img.size == (640, 360) and img.mode == "RGB"
    for xy in [(0, 0), (639, 0), (0, 359), (639, 359)]:
        assert img.getpixel(xy) == (255, 255, 255)
    # On a white background the panel is dark (contrast with white text >= 4.5:1) and
    # carries white text.
    inverted = Image.eval(img.convert("L"), lambda v: 255 - v)
    box = inverted.getbbox()
    assert box[1] > 180  # in the lower half
    panel = img.crop(box).convert("L")
    assert panel.getextrema()[0] < 75
    assert ImageStat.Stat(panel).median[0] < 90
    assert panel.getextrema()[1] > 240


def test_long_text_shrinks_and_is_cut_with_an_ellipsis(make_lesson):
    m = _lesson_with(make_lesson, "Title", "word " * 900)
    img = compose(m, m.segments[0])
    assert img.getpixel((0, 0)) == (255, 255, 255)  # still inside the frame, corners free


def test_no_text_no_panel(make_lesson):
    m = _lesson_with(make_lesson, "", "", color="#123456")
    img = compose(m, m.segments[0])
    assert img.getcolors() == [(640 * 360, (0x12, 0x34, 0x56))]


def test_image_is_scaled_to_cover(make_lesson):
    lesson = make_lesson(segments=1, width=320, height=180)
    tall = Image.new("RGB", (100, 400), (0, 200, 0))
    tall.paste((200, 0, 0), (0, 0, 100, 100))  # the top quarter is cropped away by "cover"
    tall.save(lesson / "images" / "1.png")
    m = load_manifest(lesson)
    img = compose(m, m.segments[0])
    assert img.size == (320, 180)
    assert img.getpixel((0, 0)) == (0, 200, 0) and img.getpixel((319, 0)) == (0, 200, 0)


def test_missing_raqm_is_a_clear_environment_error(make_lesson, monkeypatch, tmp_path):
    real_check = features.check
    monkeypatch.setattr(
        fonts_module.features, "check", lambda name: False if name == "raqm" else real_check(name)
    )
    lesson = make_lesson(segments=1)
    with pytest.raises(RenderEnvironmentError, match="raqm"):
        render_lesson(lesson, tmp_path / "x.mp4", cache_dir=tmp_path / "c")
    assert not (tmp_path / "x.mp4").exists()


def test_cli_check_reports_a_good_lesson(make_lesson):
    lesson = make_lesson(segments=2)
    proc = subprocess.run(
        [sys.executable, "-m", "webapp.render", str(lesson), "unused.mp4", "--check"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 segments" in proc.stdout
