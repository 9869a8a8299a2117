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
    # where an eased motion starts or comes to rest and the view moves less than a quarter of a
    # pixel anywhere in the frame (x264 may code such a frame as a copy of the last);
    # tests/render/test_motion.py follows the view itself, frame by frame.
    at_rest = set()
    for (first, n), seg in zip(m.segment_frames(), m.segments, strict=True):
        if seg.motion:
            views = [seg.motion.at(k / (n - 1)) for k in range(n)]
            at_rest |= {
                first + k for k in range(1, n) if _moved(views[k - 1], views[k], m.width, m.height) < 0.25
            }
    repeats = [i for i in range(1, len(frames)) if np.array_equal(frames[i], frames[i - 1])]
    assert set(repeats) <= at_rest, (repeats, sorted(at_rest))

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


def _moved(a, b, width: int, height: int) -> float:
    """How far (output pixels) the picture moves at the frame's edges from view `a` to view `b`:
    the point of the picture shown at x is a.cx + (x / width - 0.5) / a.zoom (likewise y)."""
    moves = []
    for centre, size in (("cx", width), ("cy", height)):
        for edge in (-0.5, 0.5):
            shift = (getattr(b, centre) + edge / b.zoom) - (getattr(a, centre) + edge / a.zoom)
            moves.append(abs(shift) * size * b.zoom)
    return max(moves)
