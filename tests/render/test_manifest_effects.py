"""lesson.json keys for clips, motion, transitions, the music bed and the video folder."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from webapp.render import ManifestError, load_manifest
from webapp.render.effects import PRESETS, View, ease
from webapp.render.sample import write_clip, write_sample_lesson, write_tone


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    """A video folder: source.mp4 (4 s, with sound) and music beside lesson_1/."""
    root = tmp_path_factory.mktemp("video")
    write_clip(root / "source.mp4", 4.0, size=(320, 180))
    write_clip(root / "silent.mp4", 2.0, size=(320, 180), freq=None)
    write_tone(root / "bed.wav", 3.0, 220.0)
    write_sample_lesson(root / "lesson_1", segments=3, seconds=1.0, width=320, height=180)
    return root


def _load(video_dir: Path, change) -> object:
    lesson = video_dir / "lesson_1"
    original = (lesson / "lesson.json").read_text(encoding="utf-8")
    manifest = json.loads(original)
    change(manifest)
    (lesson / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    try:
        return load_manifest(lesson)
    finally:
        (lesson / "lesson.json").write_text(original, encoding="utf-8")


def _seg(i: int, **keys):
    def change(m):
        for k, v in keys.items():
            if v is None:
                m["segments"][i].pop(k, None)
            else:
                m["segments"][i][k] = v

    return change


def test_a_clip_in_the_video_folder_lasts_its_cut(video_dir):
    m = _load(
        video_dir, _seg(0, image=None, audio=None, duration=None, video="../source.mp4", videoStart=1.5)
    )
    seg = m.segments[0]
    assert seg.video.path == (video_dir / "source.mp4").resolve()
    assert (seg.video.start, seg.video.end) == (1.5, 4.0)
    assert seg.duration == pytest.approx(2.5)
    assert seg.video.volume == 1.0  # no narration: the clip's own sound
    assert not seg.still and m.segments[1].still


def test_clip_volume_defaults_to_silent_under_narration(video_dir):
    m = _load(video_dir, _seg(1, image=None, video="../source.mp4", videoEnd=2.0))
    seg = m.segments[1]
    assert seg.video.volume == 0.0 and seg.audio is not None
    assert seg.duration == pytest.approx(1.0)  # its audio decides, not the clip
    m = _load(video_dir, _seg(1, image=None, video="../source.mp4", videoVolume=0.3, duration=6))
    assert m.segments[1].video.volume == 0.3 and m.segments[1].duration == 6.0  # last frame holds


def test_motion_presets_and_views(video_dir):
    m = _load(video_dir, _seg(0, motion="zoom-in"))
    assert m.segments[0].motion == PRESETS["zoom-in"]
    custom = {"from": [0.0, 0.5, 2.0], "to": [0.5, 0.5, 1.0]}
    motion = _load(video_dir, _seg(0, motion=custom)).segments[0].motion
    assert motion.start == View(0.25, 0.5, 2.0)  # moved in so the view stays on the picture
    assert motion.at(0) == motion.start and motion.at(1) == View(0.5, 0.5, 1.0)
    xs = [motion.at(k / 10).cx for k in range(11)]
    assert all(a < b for a, b in itertools.pairwise(xs))
    assert ease(0.5) == pytest.approx(0.5) and ease(0.05) < 0.05  # eased in


def test_transitions_and_music(video_dir):
    m = _load(video_dir, _seg(1, transition={"type": "crossfade", "duration": 0.5}))
    assert m.segments[1].transition.type == "crossfade" and m.segments[1].transition.frames(m.fps) == 15
    m = _load(video_dir, lambda m: m.update(music={"src": "../bed.wav", "volume": 0.5}))
    assert m.music.path == (video_dir / "bed.wav").resolve()
    assert (m.music.volume, m.music.duck, m.music.fade) == (0.5, 0.3, 1.0)
    assert m.music.duration == pytest.approx(3.0)


BAD = [
    ("image and video", _seg(0, video="../source.mp4"), "segments[0].video", "not both"),
    ("videoStart without video", _seg(0, videoStart=1), "segments[0].videoStart", "only applies"),
    (
        "videoStart past end",
        _seg(0, image=None, video="../source.mp4", videoStart=4),
        "segments[0].videoStart",
        "past",
    ),
    (
        "videoStart far past end",  # said the clip's length, unnamed: "must be from 0 to 4, got 10"
        _seg(0, image=None, video="../source.mp4", videoStart=10),
        "segments[0].videoStart",
        "is at or past the clip's end (4.000 s)",
    ),
    (
        "videoEnd past end",
        _seg(0, image=None, video="../source.mp4", videoEnd=10),
        "segments[0].videoEnd",
        "is past the clip's end (4.000 s)",
    ),
    (
        "videoStart below 0",
        _seg(0, image=None, video="../source.mp4", videoStart=-1),
        "segments[0].videoStart",
        "must be 0 or more seconds, got -1",
    ),
    (
        "videoEnd before start",
        _seg(0, image=None, video="../source.mp4", videoStart=2, videoEnd=1),
        "segments[0].videoEnd",
        "after",
    ),
    (
        "videoVolume above 1",
        _seg(0, image=None, video="../source.mp4", videoVolume=2),
        "segments[0].videoVolume",
        "0 to 1",
    ),
    ("video not a video", _seg(0, image=None, video="../bed.wav"), "segments[0].video", "no video stream"),
    ("video outside", _seg(0, image=None, video="../../x.mp4"), "segments[0].video", "outside"),
    ("motion unknown", _seg(0, motion="spin"), "segments[0].motion", "zoom-in"),
    ("motion without image", _seg(2, motion="zoom-in", image=None), "segments[2].motion", "has none"),
    (
        "motion zoom below 1",
        _seg(0, motion={"from": [0.5, 0.5, 0.5], "to": [0.5, 0.5, 1]}),
        "segments[0].motion.from[2]",
        "from 1",
    ),
    ("motion missing to", _seg(0, motion={"from": [0.5, 0.5, 1]}), "segments[0].motion.to", "required"),
    ("transition on first", _seg(0, transition={"type": "fade"}), "segments[0].transition", "first segment"),
    ("transition type", _seg(1, transition={"type": "spiral"}), "segments[1].transition.type", "crossfade"),
    (
        "transition too long",
        _seg(1, transition={"type": "fade", "duration": 1.5}),
        "segments[1].transition.duration",
        "longer than its segment",
    ),
    (
        "transition below a frame",
        _seg(1, transition={"type": "fade", "duration": 0.01}),
        "segments[1].transition.duration",
        "one frame",
    ),
    ("music not an object", lambda m: m.update(music="bed.wav"), "music", "object"),
    ("music without src", lambda m: m.update(music={"volume": 0.2}), "music.src", "required"),
    ("music duck", lambda m: m.update(music={"src": "../bed.wav", "duck": -1}), "music.duck", "0 to 1"),
    ("music not audio", lambda m: m.update(music={"src": "../lesson_1/lesson.json"}), "music.src", "audio"),
]


@pytest.mark.parametrize("change,field,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_keys_name_the_field(video_dir, change, field, words):
    with pytest.raises(ManifestError) as info:
        _load(video_dir, change)
    assert info.value.field == field
    assert words in info.value.reason
    assert str(video_dir) not in str(info.value)


def test_symlink_into_the_video_folder_is_fine_and_beyond_it_refused(video_dir, tmp_path):
    lesson = video_dir / "lesson_1"
    os.symlink(video_dir / "source.mp4", lesson / "clip-link.mp4")
    outside = tmp_path / "elsewhere.mp4"
    write_clip(outside, 1.0, size=(320, 180), freq=None)
    os.symlink(outside, lesson / "out-link.mp4")
    try:
        m = _load(video_dir, _seg(2, image=None, video="clip-link.mp4"))
        assert m.segments[2].video.path == (video_dir / "source.mp4").resolve()
        with pytest.raises(ManifestError, match="symlink leading out"):
            _load(video_dir, _seg(2, image=None, video="out-link.mp4"))
    finally:
        (lesson / "clip-link.mp4").unlink()
        (lesson / "out-link.mp4").unlink()
