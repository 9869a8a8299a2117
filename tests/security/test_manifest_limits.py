"""The renderer against a hostile lesson: lesson.json stays in its folder, manifests have
limits, validating one at the limits is fast, and no error names a server path.

Plain functions on temporary folders: no app, database or Redis. New API names are imported
inside the tests, so each test shows its own failure on a renderer without them.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from webapp.render import (
    ManifestError,
    RenderError,
    RenderSettings,
    TransientRenderError,
    load_manifest,
    render_lesson,
)
from webapp.render import assets as assets_module
from webapp.render import fonts as fonts_module
from webapp.render.errors import transient_from_oserror
from webapp.render.sample import write_background, write_sample_lesson, write_tone, write_wav

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Renders here never touch the user's cache."""
    monkeypatch.setenv("RENDER_CACHE_DIR", str(tmp_path / "env-cache"))
    monkeypatch.delenv("RENDER_PROCESSES", raising=False)


def _lesson(folder: Path, segments: list[dict], **top) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"title": "Limits", "width": 64, "height": 36, "fps": 30, "segments": segments, **top}
    (folder / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


def _refused(lesson, **kwargs) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# --------------------------------------------------------------------------------------------
# 1. lesson.json itself must be inside the lesson folder and a regular file


def test_lesson_json_symlink_leading_out_is_refused_unread(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere" / "secret.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps({"title": "Secret", "segments": [{"duration": 1}]}))
    lesson = tmp_path / "lesson"
    lesson.mkdir()
    os.symlink(outside, lesson / "lesson.json")
    opened = []

    def spy(real):
        return lambda f, *a, **k: (opened.append(str(f)), real(f, *a, **k))[1]

    monkeypatch.setattr("builtins.open", spy(open))
    monkeypatch.setattr(io, "open", spy(io.open))
    monkeypatch.setattr(os, "open", spy(os.open))
    err = _refused(lesson)
    assert err.field == "lesson.json"
    assert "resolves outside the lesson folder" in err.reason
    assert str(outside) not in opened and not any("secret" in f for f in opened)
    assert str(tmp_path) not in str(err)


def test_lesson_json_symlink_inside_the_folder_is_fine(tmp_path):
    lesson = _lesson(tmp_path / "lesson", [{"duration": 1.0, "title": "Hello"}])
    (lesson / "data").mkdir()
    (lesson / "lesson.json").rename(lesson / "data" / "real.json")
    os.symlink("data/real.json", lesson / "lesson.json")
    assert load_manifest(lesson).segments[0].title == "Hello"


def test_lesson_json_that_is_a_folder_is_refused(tmp_path):
    lesson = tmp_path / "lesson"
    (lesson / "lesson.json").mkdir(parents=True)
    err = _refused(lesson)
    assert (err.field, err.reason) == ("lesson.json", "not a regular file")


def test_lesson_json_that_is_a_fifo_is_refused_without_hanging(tmp_path):
    lesson = tmp_path / "lesson"
    lesson.mkdir()
    fifo = lesson / "lesson.json"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_manifest(lesson)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # blocked opening the FIFO: a writer's open releases it
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(timeout=5)
        pytest.fail("load_manifest hung on a FIFO named lesson.json")
    assert isinstance(outcome[0], ManifestError), outcome
    assert (outcome[0].field, outcome[0].reason) == ("lesson.json", "not a regular file")


# --------------------------------------------------------------------------------------------
# 2. Caps: file size, segments, duration, frames, text


def test_lesson_json_over_1_mb_is_refused(tmp_path):
    small = _lesson(tmp_path / "small", [{"duration": 1.0}], notes="x" * 1_000_000)
    assert small.joinpath("lesson.json").stat().st_size < 1024 * 1024
    assert load_manifest(small).warnings == ("notes: unknown key, ignored",)
    big = _lesson(tmp_path / "big", [{"duration": 1.0}], notes="x" * (1024 * 1024))
    err = _refused(big)
    assert err.field == "lesson.json" and "too large" in err.reason and "1 MB" in err.reason


def test_lesson_json_growing_after_its_size_check_is_read_only_up_to_the_cap(tmp_path, monkeypatch):
    lesson = _lesson(tmp_path / "lesson", [{"duration": 1.0}], notes="x" * (3 * 1024 * 1024))
    real_fstat, real_read = os.fstat, os.read
    read = []

    def small_fstat(fd):  # as if the file were tiny when checked, and grew right after
        st = real_fstat(fd)
        return os.stat_result(
            (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 100, 0, 0, 0)
        )

    def counting_read(fd, n):
        data = real_read(fd, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "fstat", small_fstat)
    monkeypatch.setattr(os, "read", counting_read)
    err = _refused(lesson)
    assert err.field == "lesson.json" and "1 MB" in err.reason
    assert 0 < sum(read) <= 1024 * 1024 + 1


def test_more_than_2000_segments_are_refused_before_any_is_looked_at(tmp_path):
    lesson = _lesson(tmp_path / "lesson", [7] * 2001)  # not even objects: never looked at
    err = _refused(lesson)
    assert err.field == "segments" and "2001" in err.reason and "2000" in err.reason
    assert load_manifest(_lesson(tmp_path / "ok", [{"duration": 0.1}] * 2000)).total_frames == 6000


def test_lesson_longer_than_4_hours_is_refused_at_the_segment_that_crosses(tmp_path):
    # Segment 4 crosses 4 h; segment 5's missing audio is never looked at.
    segments = [{"duration": 3600}] * 5 + [{"audio": "missing.wav"}]
    err = _refused(_lesson(tmp_path / "lesson", segments))
    assert err.field == "segments"
    assert str(err) == "segments: the lesson lasts more than 4:00:00 (the limit is 14400 s)"
    exactly = _lesson(tmp_path / "exactly", [{"duration": 3600}] * 4)
    assert load_manifest(exactly).duration == 14400


def test_max_duration_is_configurable_and_stops_probing(tmp_path, monkeypatch):
    from webapp.render import DEFAULT_MAX_DURATION
    from webapp.render import __all__ as exported

    assert DEFAULT_MAX_DURATION == 4 * 3600 and "DEFAULT_MAX_DURATION" in exported
    assert RenderSettings().max_duration == DEFAULT_MAX_DURATION
    five_hours = _lesson(tmp_path / "long", [{"duration": 3600}] * 5)
    assert load_manifest(five_hours, max_duration=6 * 3600).duration == 5 * 3600

    lesson = tmp_path / "audio"
    lesson.mkdir()
    for i in range(10):
        write_tone(lesson / f"{i}.wav", 1.0, 440.0)
    _lesson(lesson, [{"audio": f"{i}.wav"} for i in range(10)])
    probed = []
    real_probe = assets_module.probe_audio
    monkeypatch.setattr(assets_module, "probe_audio", lambda p, w: (probed.append(p), real_probe(p, w))[1])
    err = _refused(lesson, max_duration=2.5)
    assert str(err) == "segments: the lesson lasts more than 0:00:02 (the limit is 2.5 s)"
    assert len(probed) == 3


def test_render_lesson_uses_the_settings_max_duration(tmp_path):
    lesson = tmp_path / "lesson"
    write_sample_lesson(lesson, segments=2, seconds=1.0, width=64, height=36, thai=False)
    out = tmp_path / "out.mp4"
    with pytest.raises(ManifestError) as info:
        render_lesson(
            lesson, out, cache_dir=tmp_path / "cache", settings=RenderSettings(processes=1, max_duration=1.5)
        )
    assert info.value.field == "segments" and "1.5 s" in info.value.reason
    assert not out.exists() and not list(tmp_path.glob(".out.mp4.*"))


def test_cli_max_duration(tmp_path):
    lesson = tmp_path / "lesson"
    write_sample_lesson(lesson, segments=2, seconds=1.0, width=64, height=36, thai=False)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "webapp.render", str(lesson), str(tmp_path / "o.mp4"), "--check", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )

    refused = cli("--max-duration", "1")
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: segments: the lesson lasts more than 0:00:01 (the limit is 1 s)"
    assert cli("--max-duration", "10").returncode == 0
    assert cli("--max-duration", "-3").returncode == 2  # argparse: not a positive number


def test_frame_count_limit_of_the_lesson_and_of_a_segment(tmp_path, monkeypatch):
    # 415 days-long segments at 60 fps pass 2**31 frames (only with the duration cap lifted).
    lesson = _lesson(tmp_path / "lesson", [{"duration": 86400}] * 500, fps=60)
    err = _refused(lesson, max_duration=math.inf)
    assert err.field == "segments" and str(2**31 - 1) in err.reason

    # An audio file claiming an absurd length (FFmpeg believes some headers).
    audio = _lesson(tmp_path / "audio", [{"audio": "a.wav"}])
    write_tone(audio / "a.wav", 0.5, 440.0)
    monkeypatch.setattr(assets_module, "probe_audio", lambda path, where: (3e9, 1))
    err = _refused(audio)
    assert err.field == "segments[0].audio" and str(2**31 - 1) in err.reason


def test_segment_duration_over_24_hours_is_still_refused(tmp_path):
    err = _refused(_lesson(tmp_path / "lesson", [{"duration": 86401}]), max_duration=math.inf)
    assert err.field == "segments[0].duration" and "too long" in err.reason and "86400" in err.reason


def test_total_text_is_capped(tmp_path):
    long_text = "Lorem ipsum dolor sit amet. " * 4  # 111 characters after strip
    segments = [{"duration": 1.0, "title": f"Part {i}", "text": long_text} for i in range(2000)]
    err = _refused(_lesson(tmp_path / "lesson", segments))
    assert err.field == "segments" and "200000" in err.reason and "characters" in err.reason


@pytest.mark.parametrize(
    "text,words",
    [
        ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
        ('{"title": "x", "width": ' + "9" * 5000 + ', "segments": []}', "number is too long"),
    ],
    ids=["deep nesting", "huge number"],
)
def test_hostile_json_is_a_manifest_error(tmp_path, text, words):
    lesson = tmp_path / "lesson"
    lesson.mkdir()
    (lesson / "lesson.json").write_text(text)
    err = _refused(lesson)
    assert err.field == "lesson.json" and words in err.reason


def test_huge_integers_are_refused_with_a_short_message(tmp_path):
    for value, field in ((-(10**4000), "segments[0].duration"), (10**4000, "segments[0].duration")):
        err = _refused(_lesson(tmp_path / "lesson", [{"duration": value}]))
        assert err.field == field and len(str(err)) < 200
    err = _refused(_lesson(tmp_path / "wide", [{"duration": 1}], width=10**4000))
    assert err.field == "width" and len(str(err)) < 200


# --------------------------------------------------------------------------------------------
# 3. A manifest at the limits validates fast: each file and each character is checked once


def _covered_characters(count: int) -> list[str]:
    """Letters every bundled face covers (Latin, Greek, Cyrillic, Thai), many distinct ones."""
    regular, bold = fonts_module.bundled_faces(False), fonts_module.bundled_faces(True)
    found = []
    for cp in [
        *range(0x41, 0x5B),
        *range(0x61, 0x7B),
        *range(0xC0, 0x250),
        *range(0x391, 0x460),
        *range(0xE01, 0xE2F),
    ]:
        ch = chr(cp)
        if ch.isalpha() and any(f.covers(ch) for f in regular) and any(f.covers(ch) for f in bold):
            found.append(ch)
    return found[:count]


def test_manifest_at_the_text_limit_validates_quickly(tmp_path):
    pool = _covered_characters(600)
    segments = []
    for i in range(2000):
        title = "".join(pool[(i * 7 + k) % len(pool)] for k in range(45))
        text = " ".join("".join(pool[(i * 13 + w * 9 + k) % len(pool)] for k in range(8)) for w in range(6))
        segments.append({"duration": 1.0, "title": title, "text": text})
    lesson = _lesson(tmp_path / "lesson", segments)
    started = time.perf_counter()
    m = load_manifest(lesson)
    assert time.perf_counter() - started < 2.0  # loose: well under 0.1 s on a laptop
    assert len(m.segments) == 2000 and sum(len(s.title) + len(s.text) for s in m.segments) > 180_000


def test_one_audio_file_and_one_image_used_by_every_segment_are_checked_once(tmp_path, monkeypatch):
    lesson = tmp_path / "lesson"
    lesson.mkdir()
    flac = write_tone(lesson / "a.wav", 0.5, 440.0, fmt="flac")  # FFmpeg probes it
    write_background(lesson / "i.png", 64, 36, (40, 70, 200))
    _lesson(lesson, [{"audio": flac.name, "image": "i.png", "title": f"Part {i}"} for i in range(2000)])
    opened = {"av": 0, "image": 0}
    real_av_open, real_image_open = av.open, Image.open

    def av_open(*a, **k):
        opened["av"] += 1
        return real_av_open(*a, **k)

    def image_open(*a, **k):
        opened["image"] += 1
        return real_image_open(*a, **k)

    monkeypatch.setattr(av, "open", av_open)
    monkeypatch.setattr(Image, "open", image_open)
    started = time.perf_counter()
    m = load_manifest(lesson)
    assert time.perf_counter() - started < 2.0
    assert opened == {"av": 1, "image": 1}
    assert len(m.segments) == 2000 and m.duration == pytest.approx(1000, abs=1)


def test_distinct_wav_files_are_read_from_their_headers(tmp_path, monkeypatch):
    lesson = tmp_path / "lesson"
    (lesson / "audio").mkdir(parents=True)
    for i in range(300):
        write_wav(lesson / "audio" / f"{i}.wav", bytes(2 * (4800 + 48 * i)))  # 0.1 s + i ms
    _lesson(lesson, [{"audio": f"audio/{i}.wav"} for i in range(300)])
    calls = []
    monkeypatch.setattr(av, "open", lambda *a, **k: calls.append(a) or pytest.fail("FFmpeg opened a WAV"))
    m = load_manifest(lesson)
    assert not calls
    assert [round(s.duration, 4) for s in m.segments] == [round(0.1 + i / 1000, 4) for i in range(300)]


def _riff(fmt: bytes, data: bytes, extra: bytes = b"", data_size: int | None = None) -> bytes:
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", size)
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


def _pcm_fmt(channels: int, rate: int, bits: int, tag: int = 1) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def _extensible_fmt(channels: int, rate: int, bits: int, valid: int, subtag: int = 1) -> bytes:
    align = channels * bits // 8
    head = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits, 22, valid, 3)
    return head + struct.pack("<H", subtag) + bytes.fromhex("000000001000800000aa00389b71")


def _av_wav(path: Path, codec: str, layout: str, samples: int, title: str = "") -> None:
    with av.open(str(path), "w", format="wav") as out:
        if title:
            out.metadata["title"] = title
        stream = out.add_stream(codec, rate=44100, layout=layout)
        frame = av.AudioFrame(format=stream.format.name, layout=layout, samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts, frame.time_base = 44100, 0, Fraction(1, 44100)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def test_wav_headers_are_read_as_ffmpeg_reads_them(tmp_path, monkeypatch):
    from webapp.render.manifest import wav_header

    files = {
        "mono16": _riff(_pcm_fmt(1, 48000, 16), b"\x01\x00" * 48001),
        "stereo8": _riff(_pcm_fmt(2, 8000, 8), b"\x80" * 1601),
        "pcm12": _riff(struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 12), bytes(16000)),
        "float": _riff(_pcm_fmt(1, 44100, 32, tag=3), bytes(4 * 44101)),
        "list": _riff(_pcm_fmt(1, 48000, 16), bytes(9600), b"LIST" + struct.pack("<I", 10) + b"INFOabcdef"),
        "fact": _riff(_pcm_fmt(1, 48000, 16), bytes(9600), b"fact" + struct.pack("<I", 4) + b"\x05\0\0\0"),
        "ext20in24": _riff(_extensible_fmt(2, 48000, 24, 20), bytes(6 * 4800)),
        # FFmpeg's own answer for these (we leave them to it):
        "odd chunk": _riff(
            _pcm_fmt(1, 48000, 16), bytes(9600), b"LIST" + struct.pack("<I", 9) + b"INFOabcde\0"
        ),
        "truncated": _riff(_pcm_fmt(1, 48000, 16), bytes(1000), data_size=96000),
        "ext24in32": _riff(_extensible_fmt(2, 48000, 32, 24), bytes(8 * 4800)),
        "bad align": _riff(struct.pack("<HHIIHH", 1, 2, 8000, 16000, 2, 16), bytes(16000)),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.wav"
        paths[name].write_bytes(data)
    with wave.open(str(tmp_path / "w24.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(22050)
        w.writeframes(bytes(6 * 3333))
    paths["wave 24-bit"] = tmp_path / "w24.wav"
    for name, codec, layout in (
        ("s24", "pcm_s24le", "stereo"),
        ("f32", "pcm_f32le", "mono"),
        ("5.1", "pcm_s16le", "5.1"),
    ):
        paths[f"ffmpeg {name}"] = tmp_path / f"av-{name}.wav"
        _av_wav(paths[f"ffmpeg {name}"], codec, layout, 44100 // 3 + 7)
    paths["ffmpeg title"] = tmp_path / "av-title.wav"
    _av_wav(paths["ffmpeg title"], "pcm_s16le", "mono", 4410, title="An odd title")

    fast = {name: wav_header(p) for name, p in paths.items()}
    monkeypatch.setattr(assets_module, "wav_header", lambda path: None)
    for name, path in paths.items():
        duration, channels = assets_module.probe_audio(path, name)
        if fast[name] is not None:
            assert fast[name][1] == channels, name
            assert fast[name][0] == pytest.approx(duration, abs=1e-9), name
    left_to_ffmpeg = {name for name, found in fast.items() if found is None}
    assert left_to_ffmpeg == {"odd chunk", "truncated", "ext24in32", "bad align"}


def test_many_distinct_characters_ask_fontconfig_a_few_times(tmp_path, monkeypatch):
    face = fonts_module.system_face_for("\u0531")  # Armenian: no bundled font has it
    if face is None:
        pytest.skip("no system font covers Armenian here")
    regular = fonts_module.bundled_faces(False)
    pool = [
        chr(cp)
        for start, end in (
            (0x0531, 0x058F),
            (0x05D0, 0x05EA),
            (0x10A0, 0x10FF),
            (0x2190, 0x21FF),
            (0x2500, 0x257F),
        )
        for cp in range(start, end + 1)
        if face.covers(chr(cp)) and not any(f.covers(chr(cp)) for f in regular) and chr(cp).isprintable()
    ]
    assert len(pool) > 100
    segments = [
        {
            "duration": 1.0,
            "title": f"Part {i}",
            "text": "".join(pool[(i * 40 + k) % len(pool)] for k in range(40)),
        }
        for i in range(60)
    ]
    lesson = _lesson(tmp_path / "lesson", segments)
    calls = []
    real = fonts_module.system_face_for
    monkeypatch.setattr(fonts_module, "system_face_for", lambda ch: (calls.append(ch), real(ch))[1])
    load_manifest(lesson)
    assert 1 <= len(calls) <= 10, len(calls)


def test_uncovered_character_still_names_the_first_segment_and_characters(tmp_path, monkeypatch):
    monkeypatch.setattr(fonts_module, "system_face_for", lambda ch: None)
    segments = [
        {"duration": 1, "text": "fine"},
        {"duration": 1, "title": "ok", "text": "中文 and 日本 and 한"},
    ]
    segments += [{"duration": 1, "title": "中"}]
    err = _refused(_lesson(tmp_path / "lesson", segments))
    assert err.field == "segments[1].text"
    assert "'中' (U+4E2D), '文' (U+6587), '日' (U+65E5)" in err.reason and "本" not in err.reason


# --------------------------------------------------------------------------------------------
# 4. No server path in any message a user sees


def test_missing_lesson_folder_names_no_server_path(tmp_path):
    err = _refused(tmp_path / "nope")
    assert str(err).startswith("lesson folder: not found") and str(tmp_path) not in str(err)
    (tmp_path / "file").write_text("x")
    err = _refused(tmp_path / "file")
    assert str(err) == "lesson folder: not a folder"


def test_transient_errors_name_files_relative_to_their_root(tmp_path):
    def oserror(path):
        return OSError(errno.ENOSPC, "No space left on device", str(path))

    err = transient_from_oserror(oserror(tmp_path / "cache" / "v1" / "ab" / "x.mp4"), "render failed")
    assert str(err) == "render failed: No space left on device"
    roots = [
        (tmp_path / "lesson", "lesson folder", True),
        (tmp_path / "cache", "render cache", False),
        (tmp_path / "out", "final.mp4", False),
    ]
    cases = {
        tmp_path / "cache" / "v1" / "ab" / "x.mp4": "(render cache)",
        tmp_path / "lesson" / "audio" / "1.wav": "(audio/1.wav)",
        tmp_path / "out" / ".final.mp4.abc.part": "(final.mp4)",
        tmp_path / "elsewhere" / "x": "No space left on device",
    }
    for path, expected in cases.items():
        message = str(transient_from_oserror(oserror(path), "render failed", roots))
        assert message.endswith(expected) and str(tmp_path) not in message, message


def test_unwritable_output_folder_names_no_server_path(tmp_path):
    lesson = tmp_path / "lesson"
    write_sample_lesson(lesson, segments=1, seconds=0.5, width=64, height=36, thai=False)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(TransientRenderError) as info:
        render_lesson(lesson, tmp_path / "blocker" / "out.mp4", cache_dir=tmp_path / "cache")
    assert str(info.value).startswith("cannot create the output folder")
    assert str(tmp_path) not in str(info.value)


def test_unusable_cache_and_temp_folder_name_no_server_path(tmp_path, monkeypatch):
    lesson = tmp_path / "lesson"
    write_sample_lesson(lesson, segments=1, seconds=0.5, width=64, height=36, thai=False)
    (tmp_path / "cache-file").write_text("not a folder")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "cache-file"))
    with pytest.raises(TransientRenderError) as info:
        render_lesson(lesson, tmp_path / "out.mp4", cache_dir=tmp_path / "cache-file" / "c")
    assert str(info.value).startswith("no room for temporary files")
    assert str(tmp_path) not in str(info.value)


def test_failure_while_rendering_names_the_output_not_its_path(tmp_path, monkeypatch):
    lesson = tmp_path / "lesson"
    write_sample_lesson(lesson, segments=1, seconds=0.5, width=64, height=36, thai=False)
    out = tmp_path / "videos" / "final.mp4"
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst) == out:
            raise OSError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(TransientRenderError) as info:
        render_lesson(lesson, out, cache_dir=tmp_path / "cache", settings=RenderSettings(processes=1))
    assert str(info.value) == "render failed: Permission denied (final.mp4)"
    assert not out.exists() and not list(out.parent.glob(".final.mp4.*"))


def test_encoder_and_other_errors_name_no_server_path(tmp_path):
    from webapp.render.pool import describe_error, rebuild_error

    leaked = ValueError(f"cannot use {tmp_path}/cache/tmp/render-1/abc.rgb")
    message = str(rebuild_error(describe_error(leaked)))
    assert str(tmp_path) not in message and "abc.rgb" in message
    disk = OSError(errno.EIO, "Input/output error", str(tmp_path / "cache" / "tmp" / "x.mp4"))
    message = str(rebuild_error(describe_error(disk, str(tmp_path / "cache"))))
    assert message == "encoder I/O error: Input/output error (render cache)"
    for err in (
        RenderError(f"cannot open '{tmp_path}/a/b.mp4'"),
        ManifestError("segments[0].image", f"cannot read image ([Errno 5] I/O error: '{tmp_path}/i.png')"),
    ):
        assert str(tmp_path) not in str(err) and "\n" not in str(err)
