"""Render real lessons and check the MP4 by decoding it with PyAV."""

from __future__ import annotations

import av
import pytest

from webapp.render import RenderSettings, load_manifest, partial_outputs, render_lesson
from webapp.render.encode import top_level_boxes
from webapp.render.sample import segment_color

from .media import audio_samples, close, onset, rms, video_frames


@pytest.fixture
def mixed_lesson(make_lesson):
    """4 segments: WAV, MP3, silent (duration only, solid colour), Opus; odd lengths."""
    return make_lesson(
        segments=4,
        seconds=[1.2, 0.9, 0.7, 1.1],
        audio=[True, True, False, True],
        audio_format=["wav", "mp3", "wav", "opus"],
        images=[True, True, False, True],
    )


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_output_streams_sizes_and_durations(mixed_lesson, tmp_path, cache_dir, request, mode):
    settings = request.getfixturevalue(mode)
    out = tmp_path / "out" / "lesson.mp4"
    m = load_manifest(mixed_lesson)
    result = render_lesson(mixed_lesson, out, cache_dir=cache_dir, settings=settings)

    assert result.output_path == out and out.is_file()
    assert result.frames == m.total_frames == round(m.duration * 30)
    assert result.size_bytes == out.stat().st_size
    assert result.segments_encoded == 4 and result.segments_cached == 0
    assert partial_outputs(out) == []
    with av.open(str(out)) as c:
        assert c.format.name.startswith("mov,mp4")
        assert c.metadata.get("title") == m.title
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        vs, aus = c.streams.video[0], c.streams.audio[0]
        assert vs.codec_context.name == "h264"
        assert vs.format.name == "yuv420p"
        assert (vs.width, vs.height) == (320, 180)
        assert vs.average_rate == 30
        assert aus.codec_context.name == "aac"
        assert aus.rate == 48000
        video_duration = float(vs.duration * vs.time_base)
        audio_duration = float(aus.duration * aus.time_base)
        # Constant frame rate: every frame lasts exactly one tick of 1/30 s.
        pts = sorted(round(p.pts * p.time_base * 30) for p in c.demux(vs) if p.size)
    assert pts == list(range(m.total_frames))
    assert abs(video_duration - m.duration) <= 1 / 30
    assert abs(audio_duration - m.duration) <= 0.020
    assert result.duration == pytest.approx(m.total_frames / 30, abs=0.02)


def test_each_picture_and_its_sound_in_place(mixed_lesson, tmp_path, cache_dir, serial):
    out = tmp_path / "lesson.mp4"
    render_lesson(mixed_lesson, out, cache_dir=cache_dir, settings=serial)
    m = load_manifest(mixed_lesson)
    ranges = m.segment_frames()

    # The picture: the middle frame, the first and the last frame of each segment.
    wanted = set()
    for start, n in ranges:
        wanted |= {start, start + n // 2, start + n - 1}
    pixels = video_frames(out, wanted)
    for i, (start, n) in enumerate(ranges):
        for f in (start, start + n // 2, start + n - 1):
            assert close(pixels[f], segment_color(i)), (i, f, pixels[f], segment_color(i))

    # The sound: a tone where there is narration, silence where there is none.
    samples, rate = audio_samples(out)
    for i, (start, n) in enumerate(ranges):
        a, b = start / 30, (start + n) / 30
        level = rms(samples, a + 0.05, b - 0.05, rate)
        if m.segments[i].audio is None:
            assert level < 0.001, (i, level)
        else:
            assert level > 0.05, (i, level)

    # Sound after the silent segment starts exactly when its picture does.
    start3 = ranges[3][0] / 30
    t = onset(samples, start3 - 0.05, rate)
    assert t is not None and abs(t - start3) < 0.004, (t, start3)


def test_faststart_and_one_keyframe_per_segment_start(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=3, seconds=[1.0, 2.0, 1.0])
    out = tmp_path / "lesson.mp4"
    render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        keys = sorted(round(p.pts * p.time_base * 30) for p in c.demux(vs) if p.size and p.is_keyframe)
    assert keys == [0, 30, 90]  # every segment starts a closed GOP


def test_long_segments_are_cut_into_equal_gops(make_lesson, tmp_path, cache_dir):
    """A segment longer than keyint becomes equal closed GOPs, encoded once and reused."""
    lesson = make_lesson(segments=1, seconds=4.0)
    out = tmp_path / "lesson.mp4"
    result = render_lesson(lesson, out, cache_dir=cache_dir, settings=RenderSettings(processes=1, keyint=30))
    assert result.pieces_encoded == 1  # 120 frames = 4 x 30, one piece used four times
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        keys = sorted(round(p.pts * p.time_base * 30) for p in c.demux(vs) if p.size and p.is_keyframe)
    assert keys == [0, 30, 60, 90]
    pixels = video_frames(out, {0, 45, 119})
    assert all(close(px, segment_color(0)) for px in pixels.values())


def test_stereo_input_gives_stereo_output(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=2, audio_format=["ogg", "wav"])  # the Vorbis sample is stereo
    out = tmp_path / "lesson.mp4"
    render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].channels == 2


def test_all_audio_formats_render(make_lesson, tmp_path, cache_dir, serial):
    fmts = ["wav", "mp3", "flac", "ogg", "opus", "m4a"]
    lesson = make_lesson(segments=6, seconds=0.6, audio_format=fmts)
    out = tmp_path / "lesson.mp4"
    render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    samples, rate = audio_samples(out)
    m = load_manifest(lesson)
    for i, (start, n) in enumerate(m.segment_frames()):
        assert rms(samples, start / 30 + 0.05, (start + n) / 30 - 0.05, rate) > 0.05, fmts[i]


def test_output_replaces_an_existing_file_atomically(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=1)
    out = tmp_path / "lesson.mp4"
    out.write_bytes(b"old")
    render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    assert out.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
