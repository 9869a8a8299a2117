"""The mix: narration, a clip's own sound (videoVolume) and the music bed (looped, faded, ducked
under narration without clicks), normalised as a whole; each sound is told apart in the decoded
output by its own frequency (narration 660 Hz, clip 440 Hz, music 220 Hz)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import numpy as np
import pytest

from webapp.render import audio, render_lesson
from webapp.render.sample import write_clip, write_tone, write_wav

from .test_loudness import measure

NARRATION, CLIP, MUSIC = 660.0, 440.0, 220.0
BED_AMPLITUDE = 0.5


def write_bed(path: Path, seconds: float, channels: int = 1) -> Path:
    """A steady 220 Hz tone (a whole number of cycles, so it loops without a seam)."""
    t = np.arange(round(seconds * 48_000)) / 48_000
    tone = (BED_AMPLITUDE * 32767 * np.sin(2 * np.pi * MUSIC * t)).astype("<i2")
    write_wav(path, np.repeat(tone, channels).tobytes(), channels=channels)
    return path


def write_lesson(folder: Path, segments: list[dict], **top) -> Path:
    lesson = {"title": "Mix", "width": 320, "height": 180, "fps": 30, "segments": segments, **top}
    (folder / "lesson.json").write_text(json.dumps(lesson), encoding="utf-8")
    return folder


def decoded(path: Path) -> tuple[np.ndarray, int]:
    """The output's audio as (channels, samples) float32, and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        return np.concatenate(frames, axis=1), stream.rate


def level(x: np.ndarray, rate: int, start: float, end: float, freq: float) -> float:
    """Amplitude of the `freq` component over [start, end) s (a Hann-windowed DFT bin, i.e. Goertzel)."""
    window = x[round(start * rate) : round(end * rate)]
    hann = np.hanning(len(window))
    n = np.arange(len(window))
    return float(2 * abs(np.sum(window * hann * np.exp(-2j * np.pi * freq * n / rate))) / hann.sum())


@pytest.fixture
def lesson(tmp_path) -> Path:
    folder = tmp_path / "lesson"
    (folder / "audio").mkdir(parents=True)
    (folder / "clips").mkdir()
    return folder


def bed_lesson(lesson: Path) -> Path:
    """2 s quiet, then 2 s of narration in a 3 s segment, then 1.5 s quiet; a 1.5 s bed under it all."""
    write_tone(lesson / "audio" / "n.wav", 2.0, NARRATION)
    write_bed(lesson / "audio" / "bed.wav", 1.5)
    segments = [
        {"duration": 2.0, "background": "#203040"},
        {"audio": "audio/n.wav", "duration": 3.0},
        {"duration": 1.5},
    ]
    music = {"src": "audio/bed.wav", "volume": 0.5, "duck": 0.3, "fade": 0.5}
    return write_lesson(lesson, segments, music=music, loudness=None)


def test_the_bed_loops_fades_and_ducks_under_narration(lesson, tmp_path, cache_dir, serial):
    out = tmp_path / "bed.mp4"
    render_lesson(bed_lesson(lesson), out, cache_dir=cache_dir, settings=serial)
    samples, rate = decoded(out)
    x = samples[0]
    full = BED_AMPLITUDE * 0.5  # "loudness": null leaves the mix as mixed: file level x volume

    def bed(a: float, b: float) -> float:
        return level(x, rate, a, b, MUSIC) / full

    assert bed(0.0, 0.1) < 0.2 and bed(0.2, 0.3) < 0.8  # fading in over 0.5 s
    assert abs(bed(0.6, 1.6) - 1) < 0.05  # then at its volume
    assert bed(1.85, 1.95) < 0.8  # already going down before the first word (at 2.0 s)
    assert abs(bed(2.0, 3.9) - 0.3) < 0.03  # ducked to duck x volume under the narration
    assert abs(bed(4.3, 4.9) - 1) < 0.05  # back up once the narration ends (at 4.0 s, mid-segment)
    assert abs(bed(5.0, 6.0) - 1) < 0.05  # still playing past the bed's own 1.5 s: looped
    assert bed(6.4, 6.5) < 0.2  # fading out at the end
    assert level(x, rate, 2.0, 2.2, NARRATION) > 0.4  # the narration itself is untouched

    # The bed's envelope has no jump: 20 ms windows every 10 ms change by little...
    envelope = [bed(t, t + 0.02) for t in np.arange(0.0, 6.48, 0.01)]
    assert max(abs(b - a) for a, b in itertools.pairwise(envelope)) < 0.1
    # ...and around the duck's edges, where only the bed plays, no sample steps further than
    # the 220 Hz tone itself does (a click would be a step of ~0.7 x its level).
    tone_step = full * 2 * np.pi * MUSIC / rate
    for a, b in ((1.7, 1.999), (4.0, 4.3)):
        steps = np.abs(np.diff(x[round(a * rate) : round(b * rate)]))
        assert steps.max() < tone_step * 1.15, (a, steps.max())


def test_clip_sound_by_video_volume(lesson, tmp_path, cache_dir, serial):
    write_clip(lesson / "clips" / "c.mp4", 2.0, size=(320, 180), freq=CLIP)
    for k in (1, 2):
        write_tone(lesson / "audio" / f"{k}.wav", 1.0, NARRATION)
    segments = [
        {"video": "clips/c.mp4", "videoEnd": 1.0, "duration": 2.0},  # alone: videoVolume 1
        {"video": "clips/c.mp4", "videoEnd": 1.0, "audio": "audio/1.wav", "videoVolume": 0.3},
        {"video": "clips/c.mp4", "videoEnd": 1.0, "audio": "audio/2.wav"},  # default 0 with narration
    ]
    out = tmp_path / "clip.mp4"
    render_lesson(write_lesson(lesson, segments, loudness=None), out, cache_dir=cache_dir, settings=serial)
    x, rate = decoded(out)
    x = x[0]
    alone = level(x, rate, 0.0, 0.9, CLIP)
    assert alone > 0.2
    assert level(x, rate, 1.05, 1.95, CLIP) < 0.01 * alone  # silent after videoEnd (1.0 s)
    assert abs(level(x, rate, 2.0, 2.9, CLIP) / alone - 0.3) < 0.03  # under the narration at 0.3
    assert level(x, rate, 2.0, 2.9, NARRATION) > 0.2
    assert level(x, rate, 3.0, 3.9, CLIP) < 0.01 * alone  # not heard at the default 0
    assert level(x, rate, 3.0, 3.9, NARRATION) > 0.2


def test_clip_sound_starts_at_video_start(lesson, tmp_path, cache_dir, serial):
    """videoStart 1.5 s (reached by seeking): the clip's tone bursts (0.25 s on, 0.1 s off from
    0 s) are mid-burst at the segment's start and pause from 0.15 to 0.25 s into it."""
    write_clip(lesson / "clips" / "c.mp4", 3.0, size=(320, 180), freq=CLIP)
    segments = [{"duration": 1.0}, {"video": "clips/c.mp4", "videoStart": 1.5, "videoEnd": 2.5}]
    out = tmp_path / "start.mp4"
    render_lesson(write_lesson(lesson, segments, loudness=None), out, cache_dir=cache_dir, settings=serial)
    x, rate = decoded(out)
    x = x[0]
    on = level(x, rate, 1.01, 1.13, CLIP)
    assert on > 0.3
    assert level(x, rate, 1.165, 1.235, CLIP) < 0.05 * on
    assert level(x, rate, 1.26, 1.38, CLIP) > 0.8 * on
    assert level(x, rate, 0.0, 0.99, CLIP) < 0.01 * on  # nothing before its segment


def test_the_final_mix_is_normalised(lesson, tmp_path, cache_dir, serial):
    write_clip(lesson / "clips" / "c.mp4", 2.0, size=(320, 180), freq=CLIP)
    write_tone(lesson / "audio" / "n.wav", 2.0, NARRATION, amplitude=0.05)
    write_bed(lesson / "audio" / "bed.wav", 1.0)
    segments = [
        {"video": "clips/c.mp4"},
        {"video": "clips/c.mp4", "audio": "audio/n.wav", "videoVolume": 0.3},
    ]
    music = {"src": "audio/bed.wav", "volume": 0.8, "duck": 0.3, "fade": 0.5}
    out = tmp_path / "loud.mp4"
    render_lesson(write_lesson(lesson, segments, music=music), out, cache_dir=cache_dir, settings=serial)
    integrated, peak = measure(out)
    assert abs(integrated - -16.0) <= 1.0, integrated
    assert peak <= -1.5, peak


def test_a_mix_too_long_to_keep_in_memory_is_mixed_again(lesson, tmp_path, cache_dir, serial, monkeypatch):
    """Past MIX_MEMORY the second loudness pass decodes and mixes again: the same sound."""
    monkeypatch.setattr(audio, "MIX_MEMORY", 0)
    write_tone(lesson / "audio" / "n.wav", 2.0, NARRATION, amplitude=0.05)
    write_bed(lesson / "audio" / "bed.wav", 0.5)
    music = {"src": "audio/bed.wav", "volume": 0.5, "fade": 0}
    out = tmp_path / "again.mp4"
    lesson = write_lesson(lesson, [{"audio": "audio/n.wav", "duration": 3.0}], music=music)
    render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    integrated, peak = measure(out)
    assert abs(integrated - -16.0) <= 1.0 and peak <= -1.5, (integrated, peak)
    x, rate = decoded(out)
    ducked, after = level(x[0], rate, 0.5, 1.5, MUSIC), level(x[0], rate, 2.3, 2.7, MUSIC)
    assert abs(ducked / after - 0.3) < 0.03  # ducked under the narration, then back up


def test_stereo_when_the_bed_is_stereo(lesson, tmp_path, cache_dir, serial):
    write_tone(lesson / "audio" / "n.wav", 1.0, NARRATION)
    write_bed(lesson / "audio" / "bed.wav", 1.0, channels=2)
    out = tmp_path / "stereo.mp4"
    music = {"src": "audio/bed.wav", "volume": 0.5}
    lesson = write_lesson(lesson, [{"audio": "audio/n.wav"}], music=music, loudness=None)
    render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    x, rate = decoded(out)
    assert x.shape[0] == 2
    for channel in x:  # the mono narration is heard on both sides, and so is the bed
        assert level(channel, rate, 0.0, 0.2, NARRATION) > 0.1
        assert level(channel, rate, 0.3, 0.7, MUSIC) > 0.01


def test_the_audio_cache_follows_the_music_not_the_captions(lesson, tmp_path, cache_dir, serial):
    bed_lesson(lesson)
    first = render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=serial)
    assert not first.audio_cached
    manifest = json.loads((lesson / "lesson.json").read_text(encoding="utf-8"))
    manifest["segments"][1]["caption"] = "A caption changes no sound."
    (lesson / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    captioned = render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=serial)
    assert captioned.audio_cached and captioned.pieces_encoded == 0
    manifest["music"]["volume"] = 0.4
    (lesson / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    louder = render_lesson(lesson, tmp_path / "c.mp4", cache_dir=cache_dir, settings=serial)
    assert not louder.audio_cached and louder.pieces_encoded == 0
    x, rate = decoded(tmp_path / "c.mp4")
    assert abs(level(x[0], rate, 0.6, 1.6, MUSIC) - BED_AMPLITUDE * 0.4) < 0.01


def write_offset_clip(path: Path, fmt: str, video_start: float, audio_start: float) -> Path:
    """4 s of 25 fps picture whose first timestamp is `video_start` (a whole frame), and a sound
    whose first timestamp is `audio_start`: silent for 2 s, then the clip's tone. (Cameras'
    .MTS/.ts files start at large times; phones' MP4s often start the sound a little before or
    after the picture.)"""
    from fractions import Fraction

    vcodec, acodec = ("mpeg2video", "mp2") if fmt == "mpegts" else ("libx264", "aac")
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(vcodec, rate=25)
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        video.codec_context.time_base = Fraction(1, 25)
        sound = out.add_stream(acodec, rate=48_000, layout="stereo")
        for i in range(100):
            frame = av.VideoFrame.from_ndarray(np.full((96, 160, 3), 128, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(video_start * 25) + i, Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        n = np.arange(4 * 48_000)
        tone = (0.3 * np.sin(2 * np.pi * CLIP * n / 48_000) * (n >= 96_000)).astype(np.float32)
        for s in range(0, len(n), 1024):
            frame = av.AudioFrame.from_ndarray(
                np.stack([tone[s : s + 1024]] * 2), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts, frame.time_base = (
                48_000,
                round(audio_start * 48_000) + s,
                Fraction(1, 48_000),
            )
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


@pytest.mark.parametrize(
    "fmt, video_start, audio_start, video_from",
    [
        ("mp4", 0.0, 0.5, 0.0),  # the sound starts half a second after the picture
        ("mp4", 0.4, 0.0, 0.0),  # ... and 0.4 s before it
        ("mp4", 0.0, 0.5, 1.5),  # reached by seeking
        ("mpegts", 1.4, 1.4, 1.5),  # a camera's file: both start at 1.4 s
        ("mpegts", 100.0, 100.0, 1.5),  # ... at 100 s
        ("mpegts", 100.0, 100.0, 0.5),
    ],
)
def test_a_clips_sound_stays_in_step_with_its_picture(
    lesson, tmp_path, cache_dir, serial, fmt, video_start, audio_start, video_from
):
    """The sound of a clip whose streams do not both start at time 0 is heard with the picture
    it belongs to: the tone starts 2 s after the sound does, so at `audio_start + 2 - video_start`
    of the clip's time (which counts from its first picture, as its frames do) and that minus
    videoStart into the segment. It was heard up to 1.4 s late or early, or not at all."""
    suffix = ".ts" if fmt == "mpegts" else ".mp4"
    write_offset_clip(lesson / "clips" / f"c{suffix}", fmt, video_start, audio_start)
    segments = [{"video": f"clips/c{suffix}", "videoStart": video_from, "duration": 3.0}]
    out = tmp_path / "step.mp4"
    render_lesson(write_lesson(lesson, segments, loudness=None), out, cache_dir=cache_dir, settings=serial)
    x, rate = decoded(out)
    loud = np.flatnonzero(np.abs(x[0]) > 0.15)
    assert loud.size, "the clip's sound is not heard"
    expected = audio_start + 2.0 - video_start - video_from
    assert abs(loud[0] / rate - expected) < 0.005, (loud[0] / rate, expected)


def write_aac(path: Path, seconds: float, freq: float, rate: int = 44_100) -> Path:
    """A steady tone in an M4A (AAC in MP4), as music is sold and exported: the encoder pads the
    last frame, so decoding gives ~20 ms more than the file says its sound lasts."""
    from fractions import Fraction

    n = np.arange(round(seconds * rate))
    tone = (BED_AMPLITUDE * np.sin(2 * np.pi * freq * n / rate)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        for s in range(0, len(n), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, s : s + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, s, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_an_m4a_music_bed_loops_without_a_gap(lesson, tmp_path, cache_dir, serial):
    """A 2 s AAC bed (1,000 whole cycles, so it loops seamlessly) under a 5 s lesson: no silence
    where it starts again (there were ~20 ms, the encoder's padding, at 2 s and 4 s)."""
    write_aac(lesson / "audio" / "bed.m4a", 2.0, 500.0)
    music = {"src": "audio/bed.m4a", "volume": 1.0, "duck": 1.0, "fade": 0}
    out = tmp_path / "loop.mp4"
    render_lesson(
        write_lesson(lesson, [{"duration": 5.0}], music=music, loudness=None),
        out,
        cache_dir=cache_dir,
        settings=serial,
    )
    x, rate = decoded(out)
    x = x[0]
    steady = level(x, rate, 1.0, 1.5, 500.0)
    assert steady > 0.3
    for seam in (2.0, 4.0):
        for start in np.arange(seam - 0.05, seam + 0.05, 0.005):
            window = x[round(start * rate) : round((start + 0.005) * rate)]
            assert np.sqrt(np.mean(window**2)) > 0.5 * steady / np.sqrt(2), (seam, start)


def test_a_clip_plays_the_sound_flagged_as_its_default(lesson, tmp_path, cache_dir, serial):
    """A clip with two soundtracks (two languages) plays the one flagged as the default, as
    players do, even when it is not the first (the first was always played)."""
    from fractions import Fraction

    path = lesson / "clips" / "two.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        sounds = [out.add_stream("aac", rate=48_000, layout="mono") for _ in range(2)]
        sounds[0].disposition = 0
        sounds[1].disposition = av.stream.Disposition.default
        for _ in range(25):
            out.mux(
                video.encode(av.VideoFrame.from_ndarray(np.zeros((96, 160, 3), np.uint8), format="rgb24"))
            )
        out.mux(video.encode(None))
        n = np.arange(48_000)
        for stream, freq in zip(sounds, (CLIP, NARRATION), strict=True):
            tone = (0.3 * np.sin(2 * np.pi * freq * n / 48_000)).astype(np.float32)
            for s in range(0, len(n), 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, s : s + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 48_000, s, Fraction(1, 48_000)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    with av.open(str(path)) as check:
        assert [bool(s.disposition & av.stream.Disposition.default) for s in check.streams.audio] == [
            False,
            True,
        ]
    out = tmp_path / "default.mp4"
    render_lesson(
        write_lesson(lesson, [{"video": "clips/two.mp4"}], loudness=None),
        out,
        cache_dir=cache_dir,
        settings=serial,
    )
    x, rate = decoded(out)
    assert level(x[0], rate, 0.2, 0.8, NARRATION) > 0.2  # the default soundtrack
    assert level(x[0], rate, 0.2, 0.8, CLIP) < 0.01
