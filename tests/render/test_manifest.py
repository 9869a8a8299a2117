"""lesson.json parsing and validation: every error names the field at fault."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from webapp.render import ManifestError, RenderError, load_manifest
from webapp.render import fonts as fonts_module
from webapp.render.sample import write_sample_lesson, write_tone


def _edit(lesson: Path, change) -> None:
    path = lesson / "lesson.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    result = change(manifest, lesson)
    if result is not None:
        manifest = result
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(m, _lesson):
        target = m
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


def _delete(*keys):
    def change(m, _lesson):
        target = m
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return change


def _symlink_out(m, lesson):
    outside = lesson.parent.parent / f"outside-{lesson.parent.name}.png"  # beyond the video folder
    outside.write_bytes((lesson / "images" / "1.png").read_bytes())
    os.symlink(outside, lesson / "images" / "link.png")
    m["segments"][0]["image"] = "images/link.png"


def _garbage(name, key):
    def change(m, lesson):
        (lesson / name).write_bytes(b"this is not media at all" * 100)
        m["segments"][0][key] = name

    return change


def _font_garbage(m, lesson):
    (lesson / "bad.ttf").write_bytes(b"\x00\x01\x00\x00" + b"junk" * 50)
    m["font"] = "bad.ttf"


BAD = [
    # (id, change, field, words in the reason)
    ("title missing", _delete("title"), "title", "required"),
    ("title empty", _set("title", "  "), "title", "must not be empty"),
    ("segments missing", _delete("segments"), "segments", "required"),
    ("segments empty", _set("segments", []), "segments", "at least one"),
    ("segments not a list", _set("segments", {"a": 1}), "segments", "must be a list"),
    ("segment not an object", _set("segments", 0, "hello"), "segments[0]", "must be an object"),
    ("width odd", _set("width", 321), "width", "even"),
    ("width too large", _set("width", 4000), "width", "between 16 and 3840"),
    ("height too small", _set("height", 8), "height", "between 16 and 3840"),
    ("height not a number", _set("height", "180"), "height", "integer"),
    ("fps zero", _set("fps", 0), "fps", "between 1 and 60"),
    ("fps too high", _set("fps", 120), "fps", "between 1 and 60"),
    ("fps fractional", _set("fps", 29.97), "fps", "integer"),
    ("no audio, no duration", _delete("segments", 1, "audio"), "segments[1].duration", "required"),
    ("negative duration", _set("segments", 0, "duration", -2), "segments[0].duration", "positive"),
    ("duration not a number", _set("segments", 0, "duration", "5s"), "segments[0].duration", "number"),
    ("duration boolean", _set("segments", 0, "duration", True), "segments[0].duration", "number"),
    ("duration below a frame", _set("segments", 2, "duration", 0.01), "segments[2].duration", "one frame"),
    ("audio missing", _set("segments", 1, "audio", "audio/nope.wav"), "segments[1].audio", "file not found"),
    ("audio absolute", _set("segments", 0, "audio", "/etc/passwd"), "segments[0].audio", "absolute"),
    ("audio dotdot", _set("segments", 0, "audio", "../../x.wav"), "segments[0].audio", "outside the lesson"),
    (
        "image dotdot inside",
        _set("segments", 0, "image", "images/../../../x.png"),
        "segments[0].image",
        "outside",
    ),
    ("video folder file missing", _set("segments", 0, "audio", "../x.wav"), "segments[0].audio", "not found"),
    ("image windows drive", _set("segments", 0, "image", "C:\\x.png"), "segments[0].image", "absolute"),
    ("image symlink out", _symlink_out, "segments[0].image", "outside the lesson folder"),
    ("image is a folder", _set("segments", 0, "image", "images"), "segments[0].image", "not a regular file"),
    ("image not an image", _garbage("x.png", "image"), "segments[0].image", "not a PNG, JPEG"),
    ("audio not audio", _garbage("x.wav", "audio"), "segments[0].audio", "not a readable audio"),
    ("bad colour", _set("segments", 2, "background", "blurple"), "segments[2].background", "not a colour"),
    ("colour not a string", _set("segments", 2, "background", 7), "segments[2].background", "colour"),
    ("title not a string", _set("segments", 0, "title", 42), "segments[0].title", "must be a string"),
    ("text not a string", _set("segments", 1, "text", ["a"]), "segments[1].text", "must be a string"),
    ("path not a string", _set("segments", 1, "audio", 3), "segments[1].audio", "path"),
    ("font missing", _set("font", "fonts/none.ttf"), "font", "file not found"),
    ("font not a font", _font_garbage, "font", "not a usable font"),
    ("not an object", lambda m, _l: [m], "lesson.json", "JSON object"),
]


@pytest.mark.parametrize("change,field,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_manifest_names_the_field(make_lesson, change, field, words):
    lesson = make_lesson()
    _edit(lesson, change)
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    err = info.value
    assert isinstance(err, RenderError)
    assert err.field == field
    assert str(err).startswith(f"{field}: ")
    assert words in str(err)
    assert "\n" not in str(err) and "Traceback" not in str(err)


def test_every_bad_segment_is_named_at_once_in_file_order(make_lesson, monkeypatch):
    # A user fixing a lesson sees all its segments' problems in one go, not one per upload.
    monkeypatch.setattr(fonts_module, "system_face_for", lambda ch: None)
    lesson = make_lesson(segments=6)

    def change(m, _lesson):
        m["segments"][1]["audio"] = "audio/nope.wav"
        m["segments"][3]["duration"] = -1
        m["segments"][4]["background"] = "blurple"

    _edit(lesson, change)
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    err = info.value
    assert err.field == "segments[1].audio"
    assert [e.field for e in err.more] == ["segments[3].duration", "segments[4].background"]
    text = str(err)
    assert text.startswith("segments[1].audio: file not found")
    assert text.index("segments[3].duration: must be a positive") < text.index("segments[4].background: not")
    assert "\n" not in text

    # Characters no font has and transitions that do not fit are gathered the same way.
    def change_later(m, _lesson):
        m["segments"][1]["audio"] = m["segments"][0]["audio"]
        m["segments"][3]["duration"] = 1
        m["segments"][4]["background"] = "navy"
        m["segments"][2]["transition"] = {"type": "fade", "duration": 5}
        m["segments"][0]["title"] = "中文"
        m["segments"][5]["text"] = "한국어"

    _edit(lesson, change_later)
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    fields = [info.value.field, *(e.field for e in info.value.more)]
    assert fields == ["segments[2].transition.duration", "segments[0].title", "segments[5].text"]


def test_the_check_stops_at_five_problems_and_says_so(make_lesson):
    lesson = make_lesson(segments=8)
    _edit(lesson, lambda m, _l: [s.update(background="blurple") for s in m["segments"]] and None)
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    err = info.value
    assert [e.field for e in err.more] == [*(f"segments[{i}].background" for i in range(1, 5)), "lesson.json"]
    assert str(err).endswith("; lesson.json: checking stopped at 5 problems")


def test_a_whole_lesson_limit_ends_the_check_there(make_lesson):
    lesson = make_lesson(segments=4)

    def change(m, _lesson):
        m["segments"][0]["background"] = "blurple"
        for seg in m["segments"][1:]:
            seg["duration"] = 3 * 3600  # segments[2] crosses the 4 h limit
        m["segments"][3]["background"] = "blurple"  # not looked at

    _edit(lesson, change)
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    err = info.value
    assert [err.field, *(e.field for e in err.more)] == ["segments[0].background", "segments"]
    assert "the lesson lasts more than 4:00:00" in str(err)


def test_missing_and_broken_lesson_json(tmp_path):
    with pytest.raises(ManifestError, match=r"^lesson folder: not found"):
        load_manifest(tmp_path / "nope")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(ManifestError, match=r"^lesson\.json: file not found$"):
        load_manifest(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "lesson.json").write_text('{"title": "x", "segments": [}')
    with pytest.raises(ManifestError, match=r"^lesson\.json: invalid JSON at line 1 column \d+"):
        load_manifest(broken)


def test_uncovered_characters_are_reported(make_lesson, monkeypatch):
    monkeypatch.setattr(fonts_module, "system_face_for", lambda ch: None)
    lesson = make_lesson()
    _edit(lesson, _set("segments", 1, "text", "Chinese: 中文"))
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    assert info.value.field == "segments[1].text"
    assert "U+4E2D" in str(info.value) and '"font"' in str(info.value)


def test_good_manifest(make_lesson):
    lesson = make_lesson(segments=3, seconds=[1.0, 1.5, 0.5], audio=[True, True, False])
    m = load_manifest(lesson)
    assert m.title.startswith("Greetings")
    assert (m.width, m.height, m.fps) == (320, 180, 30)
    assert [s.index for s in m.segments] == [0, 1, 2]
    assert [round(s.duration, 3) for s in m.segments] == [1.0, 1.5, 0.5]
    assert m.segments[0].audio.is_absolute() and m.segments[0].audio.is_relative_to(m.lesson_dir)
    assert m.segments[2].audio is None
    assert m.segments[0].color == (200, 40, 40)
    assert m.duration == pytest.approx(3.0)
    assert m.total_frames == 90
    assert m.frame_starts == (0, 30, 75, 90)
    assert m.warnings == ()


def test_defaults_and_unknown_keys(make_lesson):
    lesson = make_lesson()
    _edit(lesson, _delete("width"))
    _edit(lesson, _delete("height"))
    _edit(lesson, _delete("fps"))
    _edit(lesson, _set("imgae", "x"))
    _edit(lesson, _set("segments", 0, "colour", "red"))
    m = load_manifest(lesson)
    assert (m.width, m.height, m.fps) == (1920, 1080, 30)
    assert m.warnings == ("imgae: unknown key, ignored", "segments[0].colour: unknown key, ignored")


def test_frame_plan_rounds_cumulative_starts(make_lesson):
    lesson = make_lesson(segments=3, audio=False, seconds=[1.01, 1.02, 0.97])
    m = load_manifest(lesson)
    assert m.frame_starts == (0, 30, 61, 90)  # round(1.01*30)=30, round(2.03*30)=61, round(3.0*30)=90
    assert m.total_frames == round(m.duration * m.fps)
    assert [n for _, n in m.segment_frames()] == [30, 31, 29]


def test_duration_overrides_audio_length(make_lesson):
    lesson = make_lesson(segments=2)
    _edit(lesson, _set("segments", 0, "duration", 2.5))
    m = load_manifest(lesson)
    assert m.segments[0].duration == 2.5
    assert m.segments[0].audio_duration == pytest.approx(1.0)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "ogg", "opus", "m4a"])
def test_audio_formats_give_their_length(tmp_path, fmt):
    lesson = tmp_path / "l"
    write_sample_lesson(lesson, segments=1, seconds=1.5, width=64, height=36, audio_format=fmt)
    m = load_manifest(lesson)
    assert m.segments[0].audio.suffix == {"ogg": ".ogg", "opus": ".opus"}.get(fmt, f".{fmt}")
    assert m.segments[0].duration == pytest.approx(1.5, abs=0.03)


def test_symlinks_inside_the_lesson_are_fine(tmp_path):
    real = tmp_path / "real"
    write_sample_lesson(real, segments=1, width=64, height=36)
    os.symlink(real / "images" / "1.png", real / "alias.png")
    _edit(real, _set("segments", 0, "image", "alias.png"))
    os.symlink(real, tmp_path / "linked-lesson")  # the lesson folder itself may be a link
    m = load_manifest(tmp_path / "linked-lesson")
    assert m.segments[0].image == (real / "images" / "1.png").resolve()


def test_audio_can_be_written_in_other_formats(tmp_path):
    path = write_tone(tmp_path / "x.wav", 0.5, 440.0, fmt="flac")
    assert path.suffix == ".flac" and path.stat().st_size > 0


@pytest.mark.parametrize("on_disk, in_json", [("NFD", "NFC"), ("NFC", "NFD")])
def test_a_name_written_with_accents_composed_or_not_is_found(tmp_path, on_disk, in_json):
    """macOS (and zips made there) may write "ả" as "a" + a combining hook, where lesson.json,
    typed elsewhere, holds the one letter (or the other way round): the names look the same, so
    the file is found (it was "file not found"). A file of the very name given still comes first."""
    import unicodedata

    lesson = tmp_path / "lesson_1"
    write_sample_lesson(lesson, segments=1, width=64, height=36)
    folder, name = "Bài học", "ảnh đầu.png"
    (lesson / unicodedata.normalize(on_disk, folder)).mkdir()
    on_disk_path = lesson / unicodedata.normalize(on_disk, folder) / unicodedata.normalize(on_disk, name)
    os.replace(lesson / "images" / "1.png", on_disk_path)
    assert unicodedata.normalize(in_json, name) != on_disk_path.name
    _edit(lesson, _set("segments", 0, "image", unicodedata.normalize(in_json, f"{folder}/{name}")))
    assert load_manifest(lesson).segments[0].image == on_disk_path.resolve()

    (lesson / unicodedata.normalize(in_json, folder)).mkdir()
    exact = lesson / unicodedata.normalize(in_json, folder) / unicodedata.normalize(in_json, name)
    exact.write_bytes(on_disk_path.read_bytes())
    assert load_manifest(lesson).segments[0].image == exact.resolve()


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"title": "unfinished', "Unterminated string"),
        ('{"title": "a\tb"}', "Invalid control character"),
        ('{"title": 1,}', "Expecting property name enclosed in double quotes"),
    ],
)
def test_a_json_error_reads_as_a_whole_sentence(tmp_path, text, reason):
    """Python's message ends with the position it gives apart ("Unterminated string starting
    at"); the position comes first here, so the reason ends without a dangling "at"."""
    (tmp_path / "lesson.json").write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert str(caught.value).endswith(f": {reason}"), str(caught.value)


def test_a_missing_file_is_named_as_given_quoted_and_cut(make_lesson):
    """The path lesson.json gave shows in the refusal, so a typo can be seen ("audio/intro.wav"
    for "audio/Intro.wav"); quoted, with nothing unprintable (a newline cannot start a line of
    its own in a log), and cut when long."""
    lesson = make_lesson(segments=2)
    _edit(lesson, _set("segments", 1, "audio", "audio/Intro\nline.wav"))
    with pytest.raises(ManifestError) as caught:
        load_manifest(lesson)
    assert str(caught.value) == "segments[1].audio: file not found: 'audio/Intro\\nline.wav'"
    _edit(lesson, _set("segments", 1, "audio", "audio/" + "x" * 300 + ".wav"))
    with pytest.raises(ManifestError) as caught:
        load_manifest(lesson)
    assert (
        "\n" not in str(caught.value) and str(caught.value).endswith("x…'") and len(str(caught.value)) < 140
    )
