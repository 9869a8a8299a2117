"""The segment cache: reuse, one-segment re-encodes, LRU bound, concurrent use."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from webapp.render import RenderSettings, TransientRenderError, render_lesson
from webapp.render.cache import SegmentCache
from webapp.render.pipeline import chunk_lengths
from webapp.render.sample import segment_color, tone_frequency, write_tone

from .media import audio_samples, close, rms, video_frames


def _set_title(lesson: Path, index: int, title: str) -> None:
    manifest = json.loads((lesson / "lesson.json").read_text())
    manifest["segments"][index]["title"] = title
    (lesson / "lesson.json").write_text(json.dumps(manifest, ensure_ascii=False))


def test_second_render_encodes_nothing(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=4)
    first = render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=serial)
    second = render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=serial)
    assert (first.segments_encoded, first.segments_cached, first.audio_cached) == (4, 0, False)
    assert (second.segments_encoded, second.segments_cached, second.audio_cached) == (0, 4, True)
    assert second.pieces_encoded == 0
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_one_changed_segment_reencodes_one(make_lesson, tmp_path, cache_dir, request, mode):
    settings = request.getfixturevalue(mode)
    lesson = make_lesson(segments=5)
    render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=settings)
    _set_title(lesson, 2, "Fixed title — แก้แล้ว")
    result = render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=settings)
    assert (result.segments_encoded, result.segments_cached) == (1, 4)
    assert result.audio_cached  # the narration did not change
    pixels = video_frames(tmp_path / "b.mp4", {15, 45, 75, 105, 135})
    for i, f in enumerate([15, 45, 75, 105, 135]):
        assert close(pixels[f], segment_color(i))


def test_changed_narration_reencodes_audio_not_video(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=3, seconds=1.0)
    render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=serial)
    write_tone(lesson / "audio" / "2.wav", 1.0, tone_frequency(7), amplitude=0.05)  # much quieter
    result = render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=serial)
    assert result.segments_encoded == 0 and not result.audio_cached
    samples, rate = audio_samples(tmp_path / "b.mp4")
    assert rms(samples, 1.1, 1.9, rate) < rms(samples, 0.1, 0.9, rate) / 5


def test_settings_are_part_of_the_key(make_lesson, tmp_path, cache_dir):
    lesson = make_lesson(segments=2)
    render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=RenderSettings(processes=1))
    other = render_lesson(
        lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=RenderSettings(processes=1, crf=30)
    )
    assert other.segments_encoded == 2 and other.audio_cached  # audio settings did not change


def test_cache_is_bounded_lru(tmp_path):
    cache = SegmentCache(tmp_path / "c", max_bytes=10_000)
    private = cache.new_private_dir()
    for i in range(6):
        src = private / f"piece{i}"
        src.write_bytes(b"x" * 3000)
        cache.publish(src, f"{i:02d}" + "k" * 62, ".mp4")
        os.utime(cache.path_for(f"{i:02d}" + "k" * 62, ".mp4"), (1000 + i, 1000 + i))
    # Using entry 0 makes it recent; the oldest unused ones go first.
    assert cache.claim("00" + "k" * 62, ".mp4", private) is not None
    cache.prune()
    left = sorted(p.name[:2] for p in cache.entries.glob("*/*.mp4"))
    assert left == ["00", "04", "05"]
    assert cache.total_bytes() <= 10_000
    # A pinned (hard-linked) piece survives pruning of its entry.
    pinned = private / ("00" + "k" * 62 + ".mp4")
    cache.prune(max_bytes=0)
    assert pinned.read_bytes() == b"x" * 3000
    assert cache.total_bytes() == 0


def test_render_prunes_to_the_bound(make_lesson, tmp_path, cache_dir):
    lesson = make_lesson(segments=3)
    settings = RenderSettings(processes=1, cache_max_bytes=1)
    render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=settings)
    assert SegmentCache(cache_dir, 1).total_bytes() <= 1 or not list((cache_dir / "v1").glob("*/*.mp4"))
    assert list((cache_dir / "tmp").iterdir()) == []  # the render's private folder is gone


def test_publish_is_atomic_and_first_writer_wins(tmp_path):
    cache = SegmentCache(tmp_path / "c", max_bytes=10**9)
    private = cache.new_private_dir()
    a, b = private / "a", private / "b"
    a.write_bytes(b"A" * 1000)
    b.write_bytes(b"B" * 1000)
    key = "ab" * 32
    cache.publish(a, key, ".mp4")
    cache.publish(b, key, ".mp4")
    assert cache.path_for(key, ".mp4").read_bytes() == b"A" * 1000
    assert [p.name for p in cache.path_for(key, ".mp4").parent.iterdir()] == [f"{key}.mp4"]


def test_two_renders_share_one_cache_at_once(make_lesson, tmp_path, cache_dir):
    """Two workers (here threads, each with its own encoder processes) on one cache."""
    lessons = [make_lesson("one", segments=3), make_lesson("two", segments=3)]
    _set_title(lessons[1], 0, "Only this segment differs")
    settings = RenderSettings(processes=2, parallel_min_work=0)
    results, errors = {}, []

    def run(i):
        try:
            results[i] = render_lesson(
                lessons[i], tmp_path / f"{i}.mp4", cache_dir=cache_dir, settings=settings
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for i in range(2):
        pixels = video_frames(tmp_path / f"{i}.mp4", {15, 45, 75})
        assert all(close(pixels[f], segment_color(k)) for k, f in enumerate([15, 45, 75]))
    # Everything is cached now: a third render encodes nothing.
    again = render_lesson(lessons[1], tmp_path / "3.mp4", cache_dir=cache_dir, settings=settings)
    assert again.segments_encoded == 0


def test_stale_private_folders_are_removed(tmp_path):
    cache = SegmentCache(tmp_path / "c", max_bytes=10**9)
    stale = cache.new_private_dir()
    (stale / "junk.rgb").write_bytes(b"x")
    old = time.time() - 7 * 3600
    os.utime(stale, (old, old))
    fresh = cache.new_private_dir()
    cache.prune()
    assert not stale.exists() and fresh.exists()


def test_chunk_lengths_are_equal_and_bounded():
    assert chunk_lengths(100, 250) == [100]
    assert chunk_lengths(500, 250) == [250, 250]
    assert chunk_lengths(501, 250) == [167, 167, 167]
    assert chunk_lengths(502, 250) == [168, 167, 167]
    for n in range(1, 2000, 37):
        parts = chunk_lengths(n, 250)
        assert sum(parts) == n and max(parts) <= 250 and max(parts) - min(parts) <= 1


def test_private_folders_of_dead_local_renders_are_removed_at_once(tmp_path):
    cache = SegmentCache(tmp_path / "c", max_bytes=10**9)
    mine = cache.new_private_dir()
    dead = mine.with_name(mine.name.replace(f"-{os.getpid()}-", "-999999999-"))
    dead.mkdir()
    foreign = cache.tmp / "render-otherhost_1-12-abcd"
    foreign.mkdir()
    old = time.time() - 60
    for d in (mine, dead, foreign):
        os.utime(d, (old, old))
    cache.prune()
    assert mine.exists() and foreign.exists() and not dead.exists()


def test_a_damaged_cache_entry_fails_once_then_heals(make_lesson, tmp_path, cache_dir, serial):
    lesson = make_lesson(segments=2)
    render_lesson(lesson, tmp_path / "a.mp4", cache_dir=cache_dir, settings=serial)
    for piece in (cache_dir / "v1").glob("*/*.mp4"):
        data = piece.read_bytes()
        piece.unlink()
        piece.write_bytes(data[: len(data) // 3])  # truncated, as by a failing disk
    with pytest.raises(TransientRenderError, match="failed its check"):
        render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=serial)
    assert not (tmp_path / "b.mp4").exists()
    again = render_lesson(lesson, tmp_path / "b.mp4", cache_dir=cache_dir, settings=serial)
    assert again.segments_encoded == 2
    pixels = video_frames(tmp_path / "b.mp4", {15, 45})
    assert close(pixels[15], segment_color(0)) and close(pixels[45], segment_color(1))
