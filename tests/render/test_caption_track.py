"""The captions as a mov_text track inside the MP4: present, tagged with the language (ISO 639-2),
the same cues at the same times as NAME.vtt; a lesson without captions has no such track."""

from __future__ import annotations

import struct

import av
import pytest

from webapp.render import load_manifest, render_lesson
from webapp.render.encode import iso639_2

from .test_sidecars import _vtt_times, captioned  # noqa: F401 - the fixture

MS = 0.001


def _subtitle_samples(path) -> tuple[dict, list[tuple[float, float, str]]]:
    """(the subtitle stream's metadata and codec, [(start, end, text)] of its non-empty samples)."""
    with av.open(str(path)) as container:
        (stream,) = container.streams.subtitles
        info = {"codec": stream.codec_context.name, **stream.metadata}
        samples = []
        for packet in container.demux(stream):
            data = bytes(packet)
            if len(data) < 2:
                continue
            (length,) = struct.unpack(">H", data[:2])
            if length:
                start = float(packet.pts * stream.time_base)
                samples.append(
                    (start, start + float(packet.duration * stream.time_base), data[2 : 2 + length].decode())
                )
    return info, samples


def test_the_mp4_carries_the_captions_as_a_tagged_track(captioned, tmp_path, cache_dir, serial):  # noqa: F811
    out = tmp_path / "lesson.mp4"
    result = render_lesson(captioned, out, cache_dir=cache_dir, settings=serial)
    info, samples = _subtitle_samples(out)
    assert info["codec"] == "mov_text" and info["language"] == "tha"
    vtt = _vtt_times(result.captions)
    assert len(samples) == len(vtt)
    for (start, end, text), (v_start, v_end, v_text) in zip(samples, vtt, strict=True):
        assert abs(start - v_start) <= MS and abs(end - v_end) <= MS
        assert text == v_text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    # The video and audio streams are as before: one each, and the file still verifies.
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
    assert load_manifest(captioned).caption_cues()[0].text.startswith("สวัสดีครับ")


def test_no_captions_no_subtitle_track(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=1, seconds=0.5)
    render_lesson(lesson, tmp_path / "plain.mp4", cache_dir=cache_dir, settings=serial)
    with av.open(str(tmp_path / "plain.mp4")) as container:
        assert len(container.streams.subtitles) == 0


@pytest.mark.parametrize(
    "tag,code",
    [
        ("th", "tha"),
        ("en-GB", "eng"),
        ("pt-BR", "por"),
        ("de", "deu"),
        ("fil", "fil"),
        ("xx", "und"),
        ("", "und"),
        (None, "und"),
    ],
)
def test_language_codes(tag, code):
    assert iso639_2(tag) == code


def test_an_automatic_thai_caption_breaks_its_lines_between_words():
    """`caption` text in Thai (no spaces between words) is split into lines between words, as a
    reader expects, not inside one (a line started "าษาที่มี…")."""
    from webapp.render.captions import LINE_CHARS, split_caption, width

    from .test_text import THAI_SENTENCE, _whole_words

    text = THAI_SENTENCE * 2
    lines = [line for cue in split_caption(text, 10.0) for line in cue.text.split("\n")]
    assert "".join(lines) == text and len(lines) > 2
    for line in lines:
        assert width(line) <= LINE_CHARS
        assert _whole_words(line), lines
