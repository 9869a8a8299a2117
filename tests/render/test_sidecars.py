"""Sidecars beside NAME.mp4: captions NAME.vtt, chapters NAME.chapters.vtt, poster NAME.jpg.

The VTT files are read back with a WebVTT parser (webvtt-py) and compared with the frame plan;
the poster is compared with the first frame decoded from the video.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
import webvtt
from PIL import Image, ImageChops, ImageStat

from webapp.render import (
    Cancelled,
    ManifestError,
    RenderError,
    TransientRenderError,
    load_manifest,
    partial_outputs,
    render_lesson,
)
from webapp.render import pipeline as pipeline_module
from webapp.render.captions import LINE_CHARS, split_caption, width, wrap
from webapp.render.sidecars import escape, timestamp

ROOT = Path(__file__).resolve().parents[2]
FPS = 30
FRAME = 1 / FPS

LONG_TEXT = (
    "Today we learn how to greet people politely in Thai. Men end their sentences with khrap, "
    "women with kha. Say sawatdee khrap with a small bow, and smile: it is the friendliest way "
    "to start any conversation, at the market or in an office."
)


def _edit(lesson: Path, change) -> None:
    path = lesson / "lesson.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def captioned(make_lesson):
    """3 silent segments of odd lengths: explicit cues, no title (segment 1), an auto-split caption."""
    lesson = make_lesson(segments=3, seconds=[1.0, 0.95, 1.23], audio=False)

    def change(m):
        m["captions"] = {"language": "th"}
        m["segments"][0]["captions"] = [
            {"start": 0.5, "end": 1.0, "text": "Second: <b>bold</b> & more"},
            {"start": 0.0, "end": 0.4, "text": "สวัสดีครับ\n\nline two"},
        ]
        del m["segments"][1]["title"]
        m["segments"][2]["caption"] = LONG_TEXT

    _edit(lesson, change)
    return lesson


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _vtt_times(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue, as parsed by webvtt-py (its *_in_seconds drop the milliseconds)."""
    return [(_seconds(c.start), _seconds(c.end), c.text) for c in webvtt.read(str(path))]


def test_captions_and_chapters_follow_the_frame_plan(captioned, tmp_path, cache_dir, serial):
    out = tmp_path / "out" / "lesson.mp4"
    m = load_manifest(captioned)
    result = render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    assert result.captions == out.with_name("lesson.vtt") and result.captions.is_file()
    assert result.chapters == out.with_name("lesson.chapters.vtt") and result.chapters.is_file()
    assert result.poster == out.with_name("lesson.jpg") and result.poster.is_file()
    assert partial_outputs(out) == []

    starts = m.frame_starts
    expected = m.caption_cues()
    cues = _vtt_times(result.captions)
    assert len(cues) == len(expected) == 2 + len(m.segments[2].captions)
    for (start, end, _text), cue in zip(cues, expected, strict=True):
        assert abs(start - cue.start) <= FRAME and abs(end - cue.end) <= FRAME
    # Placed by the frame plan: segment 0's cues from its first frame, segment 2's from frame 59.
    assert cues[0][:2] == (0.0, 0.4)
    assert abs(cues[1][0] - 0.5) < 0.001 and abs(cues[1][1] - starts[1] / FPS) < 0.001
    seg2 = [c for c in cues if c[0] >= starts[2] / FPS - 0.001]
    assert abs(seg2[0][0] - starts[2] / FPS) < 0.001  # the auto cues cover segment 2 exactly
    assert abs(seg2[-1][1] - starts[3] / FPS) < 0.001
    assert all(abs(a[1] - b[0]) < 0.002 for a, b in itertools.pairwise(seg2))
    assert " ".join(c[2].replace("\n", " ") for c in seg2) == LONG_TEXT

    text = result.captions.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\nLanguage: th\n\n")
    assert "Second: &lt;b&gt;bold&lt;/b&gt; &amp; more" in text
    assert "สวัสดีครับ\nline two" in text  # the blank line inside the cue text is gone
    for block in text.strip().split("\n\n")[1:]:
        assert block.split("\n")[0].count(" --> ") == 1 and all(block.split("\n"))

    # Chapters: one per titled segment (segment 1 has none), from its first frame to its last.
    chapters = _vtt_times(result.chapters)
    times = m.segment_times()
    assert [c[2] for c in chapters] == [m.segments[0].title, m.segments[2].title]
    for (start, end, _), i in zip(chapters, (0, 2), strict=True):
        assert abs(start - times[i][0]) <= 0.001 and abs(end - times[i][1]) <= 0.001

    # The poster of a 320-px lesson is not upscaled.
    with Image.open(result.poster) as img:
        assert img.format == "JPEG" and img.size == (320, 180)


def test_no_titles_no_captions_only_a_poster(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=2, audio=False)
    _edit(lesson, lambda m: [seg.pop("title") for seg in m["segments"]])
    out = tmp_path / "lesson.mp4"
    result = render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    assert result.captions is None and result.chapters is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["lesson.jpg", "lesson.mp4"]


def test_auto_split_obeys_two_lines_of_42():
    for text in (LONG_TEXT, "ภาษาไทยไม่มีช่องว่างระหว่างคำเลยนะครับ" * 6, "x" * 130 + " short"):
        cues = split_caption(text, 7.3)
        assert cues[0].start == 0 and cues[-1].end == 7.3
        for a, b in itertools.pairwise(cues):
            assert a.end == b.start
        for c in cues:
            lines = c.text.split("\n")
            assert 1 <= len(lines) <= 2 and all(0 < width(line) <= LINE_CHARS for line in lines)
        assert "".join(c.text for c in cues).replace("\n", "").replace(" ", "") == text.replace(" ", "")
        # Timed in proportion to length.
        per_char = [(c.end - c.start) / width(c.text.replace("\n", " ")) for c in cues]
        assert max(per_char) - min(per_char) < 1e-9 + 0.2 * max(per_char)
    # Thai is cut between clusters: no line starts with a mark.
    for line in wrap("น้ำใจ" * 40):
        assert line[0] not in "\u0e49\u0e33\u0e31"


def test_webvtt_formatting():
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3725.4567) == "01:02:05.457"
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_poster_matches_the_first_video_frame(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=2, seconds=[0.2, 0.2], width=1600, height=900, audio=False)
    out = tmp_path / "lesson.mp4"
    result = render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_image()
    with Image.open(result.poster) as poster:
        assert poster.format == "JPEG" and poster.size == (1280, 720)
        poster = poster.convert("RGB")
    frame = first.resize((1280, 720), Image.Resampling.LANCZOS)
    diff = ImageStat.Stat(ImageChops.difference(poster, frame)).mean
    assert max(diff) < 4.0, diff  # JPEG and H.264 of the same picture, title panel included


BAD = [
    ("captions not a list", ("segments", 0, "captions"), "abc", "segments[0].captions", "list"),
    ("empty cue list", ("segments", 0, "captions"), [], "segments[0].captions", "at least one"),
    ("cue not an object", ("segments", 0, "captions"), [1], "segments[0].captions[0]", "object"),
    (
        "negative start",
        ("segments", 2, "captions"),
        [{"start": 0, "end": 0.5, "text": "a"}, {"start": -1, "end": 0.5, "text": "b"}],
        "segments[2].captions[1].start",
        "negative",
    ),
    (
        "end before start",
        ("segments", 2, "captions"),
        [{"start": 0.3, "end": 0.2, "text": "a"}],
        "segments[2].captions[0].end",
        "after start",
    ),
    (
        "end after the segment",
        ("segments", 2, "captions"),
        [{"start": 0.3, "end": 1.5, "text": "a"}],
        "segments[2].captions[0].end",
        "after the end of the segment",
    ),
    (
        "no text",
        ("segments", 0, "captions"),
        [{"start": 0, "end": 0.5}],
        "segments[0].captions[0].text",
        "required",
    ),
    (
        "blank text",
        ("segments", 0, "captions"),
        [{"start": 0, "end": 0.5, "text": " \n "}],
        "segments[0].captions[0].text",
        "empty",
    ),
    (
        "start not a number",
        ("segments", 0, "captions"),
        [{"start": "0", "end": 0.5, "text": "a"}],
        "segments[0].captions[0].start",
        "number",
    ),
    ("caption not text", ("segments", 1, "caption"), 5, "segments[1].caption", "string"),
    ("caption too long", ("segments", 1, "caption"), "a" * 5001, "segments[1].caption", "too long"),
    ("captions not an object", ("captions",), "th", "captions", "object"),
    ("bad language", ("captions",), {"language": "not a tag!"}, "captions.language", "language tag"),
    ("language with a newline", ("captions",), {"language": "en\n"}, "captions.language", "language tag"),
    ("burnIn not a boolean", ("captions",), {"burnIn": "yes"}, "captions.burnIn", "true or false"),
]


@pytest.mark.parametrize("keys,value,field,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_captions_name_the_field(make_lesson, keys, value, field, words):
    lesson = make_lesson(audio=False)

    def change(m):
        target = m
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    _edit(lesson, change)
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    assert info.value.field == field and str(info.value).startswith(f"{field}: ")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_caption_and_captions_not_both(make_lesson):
    lesson = make_lesson(audio=False)

    def change(m):
        m["segments"][1]["caption"] = "hello"
        m["segments"][1]["captions"] = [{"start": 0, "end": 0.5, "text": "a"}]

    _edit(lesson, change)
    with pytest.raises(ManifestError, match=r"^segments\[1\]\.captions: .*not both"):
        load_manifest(lesson)


def test_caption_settings_default_and_unknown_keys(make_lesson):
    lesson = make_lesson(audio=False)
    assert load_manifest(lesson).caption_settings.language == "und"
    _edit(lesson, lambda m: m.update(captions={"language": "en-GB", "font": "x"}))
    m = load_manifest(lesson)
    assert m.caption_settings.language == "en-GB" and not m.caption_settings.burn_in
    assert "captions.font: unknown key, ignored" in m.warnings
    assert m.caption_cues() == []


def test_cancel_after_the_sidecars_are_written_leaves_nothing(captioned, tmp_path, cache_dir, serial):
    out = tmp_path / "out" / "lesson.mp4"
    seen = []

    def should_cancel():  # as soon as the poster's .part file is there
        parts = partial_outputs(out)
        seen.extend(p.name for p in parts)
        return any(".lesson.jpg." in p.name for p in parts)

    with pytest.raises(Cancelled):
        render_lesson(captioned, out, cache_dir=cache_dir, settings=serial, should_cancel=should_cancel)
    assert any(name.endswith(".part") and ".lesson.jpg." in name for name in seen)
    assert partial_outputs(out) == [] and list(out.parent.iterdir()) == []


def test_a_failure_at_publishing_leaves_no_sidecar(captioned, tmp_path, cache_dir, serial, monkeypatch):
    out = tmp_path / "out" / "lesson.mp4"
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(pipeline_module.os, "replace", failing_replace)
    with pytest.raises(TransientRenderError):
        render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    assert partial_outputs(out) == [] and list(out.parent.iterdir()) == []


def test_a_failure_publishing_the_sidecars_leaves_nothing(
    captioned, tmp_path, cache_dir, serial, monkeypatch
):
    out = tmp_path / "out" / "lesson.mp4"

    def broken_sidecars(*_args):
        raise RenderError("boom")

    monkeypatch.setattr(pipeline_module.Sidecars, "publish", broken_sidecars)
    with pytest.raises(RenderError):
        render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    assert partial_outputs(out) == [] and list(out.parent.iterdir()) == []


def _video_digest(path: Path) -> str:
    h = hashlib.sha256()
    with av.open(str(path)) as c:
        for packet in c.demux(video=0):
            if packet.size:
                h.update(bytes(packet))
    return h.hexdigest()


def test_captions_change_no_video(captioned, make_lesson, tmp_path, cache_dir, serial):
    out = tmp_path / "lesson.mp4"
    render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    first = _video_digest(out)
    _edit(captioned, lambda m: m["segments"][0]["captions"][0].update(text="A changed caption"))
    result = render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    assert result.pieces_encoded == 0 and result.segments_encoded == 0 and result.audio_cached
    assert "A changed caption" in result.captions.read_text(encoding="utf-8")
    # Captions removed: the old NAME.vtt goes with them.
    _edit(captioned, lambda m: [seg.pop(k, None) for seg in m["segments"] for k in ("caption", "captions")])
    result = render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    assert result.pieces_encoded == 0 and result.captions is None
    assert not (tmp_path / "lesson.vtt").exists()
    # The same lesson without any caption key, in a fresh cache: identical video.
    plain = make_lesson("plain", segments=3, seconds=[1.0, 0.95, 1.23], audio=False)
    _edit(plain, lambda m: m["segments"][1].pop("title"))
    plain_out = tmp_path / "plain.mp4"
    render_lesson(plain, plain_out, cache_dir=tmp_path / "cache2", settings=serial)
    assert _video_digest(plain_out) == first == _video_digest(out)


def test_cli_prints_the_sidecars(captioned, tmp_path):
    out = tmp_path / "cli.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "webapp.render", str(captioned), str(out), "--quiet", "--processes", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("cli.jpg", "cli.chapters.vtt", "cli.vtt"):
        assert str(tmp_path / name) in proc.stderr and (tmp_path / name).is_file()
