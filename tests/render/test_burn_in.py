"""Burned-in captions (`"captions": {"burnIn": true}`): drawn into the picture like subtitles.

The MP4 is decoded with PyAV and compared with the same lesson rendered without burn-in:
during a cue the caption's box differs and holds white text, above the title panel; between
cues and after the last one the picture is the plain one; cues start and end at the frames
the frame plan gives (the times in NAME.vtt).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from webapp.render import ManifestError, RenderSettings, load_manifest, render_lesson
from webapp.render.burn import (
    MAX_LINES,
    WIDTH_SHARE,
    CaptionPainter,
    Span,
    caption_box,
    still_spans,
)
from webapp.render.captions import CaptionSettings, Cue
from webapp.render.compose import PANEL_COLOR, compose, title_panel_box
from webapp.render.manifest import Manifest, Segment
from webapp.render.sample import write_sample_lesson

FPS = 30
W, H = 640, 360
THAI = "ปี่ ฟ้า น้ำ ป่า"
ARABIC = "مرحبا بكم"
SERIAL = RenderSettings(processes=1)


def _edit(lesson: Path, change) -> None:
    path = lesson / "lesson.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def _captioned(lesson: Path, burn_in: bool | None) -> Path:
    """3 silent segments of 2 s: a title panel and two Thai cues with a gap; Arabic; a Latin caption."""
    write_sample_lesson(lesson, segments=3, seconds=2.0, width=W, height=H, fps=FPS, audio=False)

    def change(m):
        for key in ("title", "text"):
            del m["segments"][1][key]
        if burn_in is None:
            return
        m["captions"] = {"language": "th", "burnIn": burn_in}
        m["segments"][0]["captions"] = [
            {"start": 0.3, "end": 1.0, "text": f"{THAI}\nสวัสดีครับ"},
            {"start": 1.4, "end": 2.0, "text": "ขอบคุณครับ"},
        ]
        m["segments"][1]["captions"] = [{"start": 0.0, "end": 1.2, "text": f"{ARABIC} — Arabic"}]
        m["segments"][2]["caption"] = "One caption for the whole segment, split by the renderer."

    _edit(lesson, change)
    return lesson


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """The lesson rendered with burn-in, without it (burnIn false), and without captions at all."""
    root = tmp_path_factory.mktemp("burn")
    out = {}
    for name, burn_in, cache in [("burn", True, "a"), ("plain", False, "b"), ("none", None, "b")]:
        lesson = _captioned(root / name, burn_in)
        result = render_lesson(lesson, root / f"{name}.mp4", cache_dir=root / cache, settings=SERIAL)
        out[name] = (lesson, root / f"{name}.mp4", result)
    out["cache"] = root / "a"
    return out


def _frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """RGB arrays (height, width, 3, int) of the frame numbers in `wanted`."""
    found = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            n = round(frame.pts * frame.time_base * FPS)
            if n in wanted:
                found[n] = frame.to_ndarray(format="rgb24").astype(int)
    assert set(found) == wanted
    return found


def _changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of what was drawn over `b` to make `a`, or None.

    Two encodings of one picture differ by a few stray pixels (a new GOP starts at each
    span), so only rows and columns with several clearly changed pixels count.
    """
    changed = np.abs(a - b).max(axis=2) > 40
    if changed.sum() < 200:
        return None
    (ys,), (xs,) = np.nonzero(changed.sum(axis=1) >= 3), np.nonzero(changed.sum(axis=0) >= 3)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """The same picture, up to what encoding it in another GOP changes."""
    diff = np.abs(a - b)
    return diff.mean() < 0.5 and (diff.max(axis=2) > 40).sum() < 5


def _cue_frames(manifest: Manifest) -> list[tuple[int, int, str]]:
    """(first frame, end frame, text) of each cue, from its lesson time (what NAME.vtt says)."""
    return [(round(c.start * FPS), round(c.end * FPS), c.text) for c in manifest.caption_cues()]


def test_cues_are_drawn_above_the_title_panel_and_only_while_they_last(renders):
    lesson, burned, _ = renders["burn"]
    _, plain, _ = renders["plain"]
    m = load_manifest(lesson)
    cues = _cue_frames(m)
    assert [(a, b) for a, b, _ in cues[:3]] == [(9, 30), (42, 60), (60, 96)]
    inside = {a + 2 for a, _, _ in cues}
    outside = {35, 100, 119}  # between the Thai cues, after the Arabic cue (its segment's end)
    got, want = _frames(burned, inside | outside), _frames(plain, inside | outside)
    for n in outside:
        assert _same_picture(got[n], want[n]), n
    segment_of = {n: next(i for i, (s, k) in enumerate(m.segment_frames()) if s <= n < s + k) for n in inside}
    for n in inside:
        box = _changed_box(got[n], want[n])
        assert box is not None, n
        x0, y0, x1, y1 = box
        region = got[n][y0:y1, x0:x1]
        assert (region.min(axis=2) > 225).sum() > 50  # white text
        assert np.median(region.mean(axis=2)) < 90  # on a dark box
        assert abs((x0 + x1) / 2 - W / 2) <= 3  # centred
        assert x1 - x0 <= W * WIDTH_SHARE + 2
        panel = title_panel_box(m, m.segments[segment_of[n]])
        cue = next(text for first, end, text in cues if first <= n < end)
        ex0, ey0, ex1, ey1 = caption_box(m, CaptionPainter(m).draw(cue).size, panel)  # where burn.py puts it
        assert ex0 - 2 <= x0 and ey0 - 2 <= y0 and x1 <= ex1 + 2 and y1 <= ey1 + 2
        if panel is not None:
            assert y1 <= panel[1], (box, panel)  # entirely above the title panel
        else:
            assert y1 <= H - 0.04 * H  # above the bottom margin


def test_cues_start_and_end_on_the_planned_frames(renders):
    lesson, burned, _ = renders["burn"]
    _, plain, _ = renders["plain"]
    m = load_manifest(lesson)
    cues = _cue_frames(m)
    edges = {n for first, end, _ in cues for n in (first - 1, first, end - 1, end)}
    wanted = {n for n in edges if 0 <= n < m.total_frames}
    got, want = _frames(burned, wanted), _frames(plain, wanted)
    for n in sorted(wanted):
        shown = any(first <= n < end for first, end, _ in cues)
        assert (_changed_box(got[n], want[n]) is not None) == shown, n
        assert shown or _same_picture(got[n], want[n]), n
    for cue, (first, end, _) in zip(m.caption_cues(), _cue_frames(m), strict=True):
        assert abs(first / FPS - cue.start) <= 0.5 / FPS and abs(end / FPS - cue.end) <= 0.5 / FPS


def _keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(round(p.pts * p.time_base * FPS) for p in container.demux(stream) if p.is_keyframe)


def test_a_cue_coming_or_going_makes_no_keyframe(renders):
    """Cues are laid over the frames they last, so the video has keyframes only where the
    lesson without burned-in captions has them: one per segment (a keyframe costs a 1080p
    picture's worth of bytes, for every cue that came or went)."""
    _, burned, _ = renders["burn"]
    _, plain, _ = renders["plain"]
    assert _keyframes(burned) == _keyframes(plain) == [0, 60, 120]


def test_captions_not_burned_in_change_no_picture(renders):
    _, plain, plain_result = renders["plain"]
    _, none, none_result = renders["none"]
    assert none_result.pieces_encoded == 0  # the same pieces: captions are in no picture's key
    wanted = {0, 20, 50, 70, 130, 179}
    got, want = _frames(plain, wanted), _frames(none, wanted)
    for n in wanted:
        assert np.array_equal(got[n], want[n]), n
    assert plain_result.captions is not None and none_result.captions is None


def test_changing_a_burned_in_cue_reencodes_only_its_segment(renders, tmp_path):
    lesson, _, first = renders["burn"]
    assert first.segments_encoded == 3
    _edit(lesson, lambda m: m["segments"][0]["captions"][1].update(text="ขอบคุณมากครับ"))
    again = render_lesson(lesson, tmp_path / "again.mp4", cache_dir=renders["cache"], settings=SERIAL)
    assert (again.segments_encoded, again.segments_cached) == (1, 2)
    assert again.pieces_encoded == 1 and again.audio_cached  # the segment's one piece
    m = load_manifest(lesson)
    assert [c.text for c in m.caption_cues()][1] == "ขอบคุณมากครับ"


def test_burn_in_must_be_a_boolean(tmp_path):
    lesson = _captioned(tmp_path / "l", True)
    _edit(lesson, lambda m: m["captions"].update(burnIn="yes"))
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    assert info.value.field == "captions.burnIn" and "true or false" in str(info.value)
    _edit(lesson, lambda m: m["captions"].update(burnIn=True))
    assert load_manifest(lesson).caption_settings == CaptionSettings(language="th", burn_in=True)


def test_a_burned_in_caption_needs_glyphs(tmp_path):
    lesson = _captioned(tmp_path / "l", True)
    _edit(lesson, lambda m: m["segments"][0]["captions"][1].update(text="no glyph: \U0010fffd"))
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    assert info.value.field == "segments[0].captions[1].text" and "no font covers" in str(info.value)
    _edit(lesson, lambda m: m["captions"].update(burnIn=False))  # the player draws it: not our business
    assert load_manifest(lesson).caption_settings.burn_in is False


# Units: spans, layout, shaping.


def _manifest(width=W, height=H, segments=None, burn_in=True) -> Manifest:
    """A manifest made in code (no lesson folder): enough to plan spans and draw captions."""
    return Manifest(
        lesson_dir=Path("."),
        title="t",
        width=width,
        height=height,
        fps=FPS,
        segments=tuple(segments or [Segment(duration=2.0)]),
        caption_settings=CaptionSettings(burn_in=burn_in),
    )


def test_still_spans_split_a_segment_at_its_cues():
    seg = Segment(
        duration=2.0,
        captions=(Cue(0.0, 0.5, "a"), Cue(0.4, 1.0, "b"), Cue(1.2, 1.21, "tiny"), Cue(1.5, 2.0, "c")),
    )
    # The segment starts at frame 30 of the lesson; "b" starts before "a" ends, so "a" ends there.
    assert still_spans(_manifest(segments=[seg]), seg, 30, 60) == [
        Span(30, 12, "a"),
        Span(42, 18, "b"),
        Span(60, 15, None),
        Span(75, 15, "c"),
    ]
    assert still_spans(_manifest(segments=[seg], burn_in=False), seg, 30, 60) == [Span(30, 60, None)]
    bare = Segment(duration=2.0)
    assert still_spans(_manifest(segments=[bare]), bare, 0, 60) == [Span(0, 60, None)]


def test_a_long_cue_is_shrunk_then_cut_with_an_ellipsis():
    painter = CaptionPainter(_manifest())
    short = painter.layout("Two short\nlines")
    assert short.lines == ("Two short", "lines")
    long = painter.layout("many words in a very long cue " * 20)
    assert len(long.lines) == MAX_LINES and long.lines[-1].endswith("…")
    assert long.block.size < short.block.size
    assert long.box[0] <= W * WIDTH_SHARE


def test_the_box_is_dark_enough_over_white_for_white_text():
    """Contrast of white text with the box over a white picture: at least 4.5:1 (WCAG AA)."""
    m = _manifest()
    drawn = CaptionPainter(m).draw("Contrast")
    overlay = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    overlay.paste(drawn, caption_box(m, drawn.size, None)[:2])
    over_white = Image.alpha_composite(Image.new("RGBA", (W, H), "white"), overlay).convert("RGB")
    x0, y0, _, y1 = overlay.getbbox()
    box_colour = over_white.getpixel((x0 + 3, (y0 + y1) // 2))  # inside the padding: no text
    assert box_colour == over_white.getpixel((x0 + 3, y0 + 3))

    def luminance(rgb):
        c = [v / 255 for v in rgb]
        c = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    assert (1.05) / (luminance(box_colour) + 0.05) >= 4.5
    assert PANEL_COLOR[3] >= 190


def test_the_caption_stays_above_even_the_tallest_panel(tmp_path):
    write_sample_lesson(tmp_path / "l", segments=1, width=W, height=H, audio=False, images=False)
    _edit(tmp_path / "l", lambda m: m["segments"][0].update(text="word " * 900))
    m = load_manifest(tmp_path / "l")
    panel = title_panel_box(m, m.segments[0])
    assert panel[1] < H / 2  # the panel takes most of the frame
    drawn = CaptionPainter(m).draw("ปี่ ฟ้า น้ำ\n" + ARABIC)
    box = caption_box(m, drawn.size, panel)
    assert box[1] >= 0 and box[3] < panel[1]
    assert compose(m, m.segments[0]).size == (W, H)


def _text_ink(image: Image.Image) -> tuple[int, int, int, int]:
    """Bounding box of the text in a drawn caption (pixels more opaque than the box)."""
    return image.getchannel("A").point(lambda a: 255 if a > PANEL_COLOR[3] + 30 else 0).getbbox()


def _basic_ink(face_path: str, size: int, text: str) -> tuple[int, int, int, int]:
    font = ImageFont.truetype(face_path, size, layout_engine=ImageFont.Layout.BASIC)
    img = Image.new("L", (size * 10, size * 3), 0)
    ImageDraw.Draw(img).text((size, size * 2), text, font=font, fill=255, anchor="ls")
    return img.getbbox()


@pytest.mark.parametrize("word", ["ปี่", "น้ำ"])
def test_thai_marks_in_a_caption_are_stacked_by_shaping(word):
    """The tone mark sits above the upper vowel (raqm), not on top of it (basic layout)."""
    painter = CaptionPainter(_manifest(width=2560, height=1440))  # 65 px text, like test_text.py
    layout = painter.layout(word)
    ((run, face),) = layout.block.chain.runs(word)
    assert run == word and Path(face.path).name == "NotoSansThai-Regular.ttf"
    assert face.font(layout.block.size).layout_engine == ImageFont.Layout.RAQM
    _, top, _, bottom = _text_ink(painter.draw(word))
    _, basic_top, _, basic_bottom = _basic_ink(face.path, layout.block.size, word)
    assert bottom - top > basic_bottom - basic_top + 5


def test_arabic_in_a_caption_is_joined():
    painter = CaptionPainter(_manifest(width=2560, height=1440))
    layout = painter.layout(ARABIC)
    faces = {Path(face.path).name for _, face in layout.block.chain.runs(ARABIC)}
    assert faces == {"NotoSansArabic-Regular.ttf"}
    x0, _, x1, _ = _text_ink(painter.draw(ARABIC))
    face = layout.block.chain.faces[2]
    basic = ImageFont.truetype(face.path, layout.block.size, layout_engine=ImageFont.Layout.BASIC)
    assert x1 - x0 < basic.getlength(ARABIC) * 0.9  # joined forms are narrower than isolated ones
    assert abs((x1 - x0) - face.font(layout.block.size).getlength(ARABIC)) < layout.block.size * 0.3


def test_the_same_cue_is_drawn_once():
    painter = CaptionPainter(_manifest())
    assert painter.draw("same") is painter.draw("same")
    assert painter.draw("other") is not painter.draw("same")


def _moving(lesson: Path, burn_in: bool) -> Path:
    """A moving image, a clip under a title and a still after a crossfade, each with one cue."""
    from webapp.render.sample import write_clip

    write_sample_lesson(lesson, segments=3, seconds=2.0, width=W, height=H, fps=FPS, audio=False)
    write_clip(lesson / "clip.mp4", 3.0, fps=FPS, size=(W, H), freq=None)

    def change(m):
        m["captions"] = {"language": "th", "burnIn": burn_in}
        m["segments"][0].update(motion="zoom-in", captions=[{"start": 0.5, "end": 1.5, "text": THAI}])
        del m["segments"][1]["image"]
        m["segments"][1].update(video="clip.mp4", captions=[{"start": 0.2, "end": 1.0, "text": "A clip"}])
        m["segments"][2].update(
            transition={"type": "crossfade", "duration": 0.5},
            captions=[{"start": 0.1, "end": 1.0, "text": "Through the crossfade"}],
        )

    _edit(lesson, change)
    return lesson


def test_cues_are_burned_into_moving_segments_too(tmp_path):
    out = {}
    for name, burn_in in (("burn", True), ("plain", False)):
        lesson = _moving(tmp_path / name, burn_in)
        out[name] = render_lesson(
            lesson, tmp_path / f"{name}.mp4", cache_dir=tmp_path / "cache", settings=SERIAL
        )
    m = load_manifest(tmp_path / "burn")
    cues = _cue_frames(m)
    assert [(a, b) for a, b, _ in cues] == [(15, 45), (66, 90), (123, 150)]
    inside = {a + 3 for a, _, _ in cues} | {b - 1 for _, b, _ in cues}  # 123..126 lie in the crossfade
    outside = {5, 50, 100, 170}
    got, want = (
        _frames(tmp_path / "burn.mp4", inside | outside),
        _frames(tmp_path / "plain.mp4", inside | outside),
    )
    for n in sorted(inside):
        box = _changed_box(got[n], want[n])
        assert box is not None, n
        seg = next(
            s for s, (first, k) in zip(m.segments, m.segment_frames(), strict=True) if first <= n < first + k
        )
        cue = next(text for first, end, text in cues if first <= n < end)
        ex0, ey0, ex1, ey1 = caption_box(m, CaptionPainter(m).draw(cue).size, title_panel_box(m, seg))
        x0, y0, x1, y1 = box
        # Where burn.py puts it (a moving picture encodes a little differently around it).
        assert ex0 - 6 <= x0 and ey0 - 6 <= y0 and x1 <= ex1 + 6 and y1 <= ey1 + 6, (n, box)
        assert (got[n][y0:y1, x0:x1].min(axis=2) > 225).sum() > 15  # white text
    for n in sorted(outside):
        assert _changed_box(got[n], want[n]) is None, n
