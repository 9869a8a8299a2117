"""Loudness: the final mix is normalised to the lesson's target (default -16 LUFS, ±1 LU) with a
true peak at or below -1.5 dBTP, measured on the output by FFmpeg's own EBU R128 meter (ebur128);
`"loudness": null` leaves the sound alone; a silent lesson is left silent."""

from __future__ import annotations

import array
import json
import math
import re
import wave
from pathlib import Path

import av
import av.logging
import pytest

from webapp.render import ManifestError, load_manifest, render_lesson


def measure(path: Path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) of a file's audio, by ebur128=peak=true."""
    level = av.logging.get_level()
    with av.open(str(path)) as container, av.logging.Capture(local=False) as logs:
        av.logging.set_level(av.logging.INFO)
        stream = container.streams.audio[0]
        graph = av.filter.Graph()
        source = graph.add_abuffer(template=stream)
        meter = graph.add("ebur128", "peak=true")
        sink = graph.add("abuffersink")
        source.link_to(meter)
        meter.link_to(sink)
        graph.configure()
        for frame in container.decode(stream):
            graph.push(frame)
            _drain(graph)
        graph.push(None)
        _drain(graph)
        del graph, source, meter, sink
        import gc

        gc.collect()
        av.logging.set_level(level)
    text = "".join(str(m) for _l, _n, m in logs if m)
    summary = text[text.rfind("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def _drain(graph) -> None:
    while True:
        try:
            graph.pull()
        except (BlockingIOError, EOFError, av.error.BlockingIOError, av.error.EOFError):
            return


def _scale_wavs(lesson: Path, factor: float) -> None:
    """Make the lesson's narration quieter or louder (16-bit WAVs, clipped)."""
    for path in lesson.rglob("*.wav"):
        with wave.open(str(path)) as w:
            params, data = w.getparams(), w.readframes(w.getnframes())
        assert params.sampwidth == 2
        samples = array.array("h", data)
        for i, s in enumerate(samples):
            samples[i] = max(-32768, min(32767, round(s * factor)))
        with wave.open(str(path), "wb") as w:
            w.setparams(params)
            w.writeframes(samples.tobytes())


def _set(lesson: Path, **keys) -> None:
    path = lesson / "lesson.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(keys)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("factor", [0.05, 1.0, 4.0], ids=["quiet", "as-is", "loud-clipped"])
def test_the_mix_is_normalised_to_minus_16_lufs(make_lesson, tmp_path, cache_dir, serial, factor):
    lesson = make_lesson(segments=3, seconds=2.0)
    _scale_wavs(lesson, factor)
    out = tmp_path / "out.mp4"
    result = render_lesson(lesson, out, cache_dir=cache_dir, settings=serial)
    integrated, peak = measure(out)
    assert abs(integrated - -16.0) <= 1.0, integrated
    assert peak <= -1.5, peak
    # Exactly as long as before: the audio still ends with the picture.
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert abs(float(audio.duration * audio.time_base) - result.duration) < 0.03


def _peaky_wavs(lesson: Path) -> None:
    """Quiet narration with sharp clicks: one gain to -16 LUFS would put the clicks far above
    0 dBFS, so the ceiling must hold them down."""
    for path in lesson.rglob("*.wav"):
        with wave.open(str(path)) as w:
            params = w.getparams()
        samples = array.array("h", [0]) * params.nframes * params.nchannels
        for i in range(len(samples)):
            samples[i] = round(600 * math.sin(i * 2 * math.pi * 220 / params.framerate))
        for i in range(0, len(samples), params.framerate // 4):
            samples[i] = 30000
        with wave.open(str(path), "wb") as w:
            w.setparams(params)
            w.writeframes(samples.tobytes())


def test_the_true_peak_ceiling_holds_for_peaky_sound(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=2, seconds=3.0)
    _peaky_wavs(lesson)
    render_lesson(lesson, tmp_path / "peaky.mp4", cache_dir=cache_dir, settings=serial)
    integrated, peak = measure(tmp_path / "peaky.mp4")
    assert abs(integrated - -16.0) <= 1.0 and peak <= -1.5, (integrated, peak)


def test_another_target_and_off(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=3, seconds=2.0)
    _scale_wavs(lesson, 0.05)
    _set(lesson, loudness=-23)
    render_lesson(lesson, tmp_path / "ebu.mp4", cache_dir=cache_dir, settings=serial)
    assert abs(measure(tmp_path / "ebu.mp4")[0] - -23.0) <= 1.0
    _set(lesson, loudness=None)
    result = render_lesson(lesson, tmp_path / "off.mp4", cache_dir=cache_dir, settings=serial)
    assert not result.audio_cached and result.pieces_encoded == 0  # only the audio is new
    assert measure(tmp_path / "off.mp4")[0] < -30  # the quiet narration stays quiet


def test_a_silent_lesson_stays_silent(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=2, seconds=1.0, audio=False)
    render_lesson(lesson, tmp_path / "silent.mp4", cache_dir=cache_dir, settings=serial)
    with av.open(str(tmp_path / "silent.mp4")) as container:
        stream = container.streams.audio[0]
        loudest = max(
            max(abs(v) for v in array.array("f", bytes(frame.planes[0])))
            for frame in container.decode(stream)
        )
    assert loudest < 1e-4


@pytest.mark.parametrize("value", ["loud", 0, -60, True, [-16]])
def test_bad_loudness_is_refused(make_lesson, value):
    lesson = make_lesson(segments=1)
    _set(lesson, loudness=value)
    with pytest.raises(ManifestError) as caught:
        load_manifest(lesson)
    assert caught.value.field == "loudness"


def test_default_and_null(make_lesson):
    lesson = make_lesson(segments=1)
    assert load_manifest(lesson).loudness == -16.0
    _set(lesson, loudness=None)
    assert load_manifest(lesson).loudness is None
    _set(lesson, loudness=-14)
    assert load_manifest(lesson).loudness == -14.0
