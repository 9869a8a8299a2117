"""A lesson using every lesson.json key at once (sample.write_showcase_lesson): moving images,
clips of the video folder's source, every transition, burned-in and sidecar captions, the
mov_text track, a music bed and loudness. Decoded and measured as a viewer would notice."""

from __future__ import annotations

import av
import numpy as np

from webapp.render import load_manifest, render_lesson
from webapp.render.sample import write_showcase_lesson

from .test_caption_track import _subtitle_samples
from .test_loudness import measure
from .test_sidecars import _vtt_times


def test_a_lesson_using_every_key_renders_and_checks_out(tmp_path, cache_dir, parallel):
    lesson = tmp_path / "video" / "lesson_1"
    write_showcase_lesson(lesson, width=320, height=180, seconds=2.0, burn_in=True)
    m = load_manifest(lesson)
    assert m.warnings == ()  # every key is known
    out = tmp_path / "out" / "every.mp4"
    result = render_lesson(lesson, out, cache_dir=cache_dir, settings=parallel)

    with av.open(str(out)) as container:
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video)]
    assert len(frames) == m.total_frames == 5 * 2 * 30 and result.duration == 10.0
    # Something moves in every segment: no two neighbouring frames are the same picture, except
    # at the very end of a moving image, where the eased motion comes to rest within a fraction
    # of a pixel (tests/render/test_motion.py follows the view itself, frame by frame).
    ends = {
        first + n - 1 for (first, n), seg in zip(m.segment_frames(), m.segments, strict=True) if seg.motion
    }
    repeats = [i for i in range(1, len(frames)) if np.array_equal(frames[i], frames[i - 1])]
    assert set(repeats) <= ends, repeats

    # Captions: the sidecar parses, its cues follow the manifest within a frame, the track is tagged.
    cues = _vtt_times(result.captions)
    assert len(cues) == len(m.caption_cues())
    for (start, end, _), cue in zip(cues, m.caption_cues(), strict=True):
        assert abs(start - cue.start) <= 1 / 30 and abs(end - cue.end) <= 1 / 30
    info, samples = _subtitle_samples(out)
    assert info["codec"] == "mov_text" and info["language"] == "tha" and len(samples) == len(cues)

    # The mix (narration, a clip's own sound, the music bed) at the lesson's loudness.
    integrated, peak = measure(out)
    assert abs(integrated - -16.0) <= 1.0 and peak <= -1.5, (integrated, peak)
    assert result.poster.is_file() and result.chapters.is_file()
