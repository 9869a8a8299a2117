"""Transitions between segments, decoded from real renders, and what they cost the cache.

Two pictures of plain colours, each with a bar (white on the first at x = W/4, black on the
second at x = 3W/4), so a frame's columns show where each picture is.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from webapp.render import load_manifest, render_lesson
from webapp.render.sample import write_background

W, H, FPS = 320, 180, 30
T = 15  # transition frames (0.5 s)
A, B = (200, 60, 40), (40, 90, 200)  # the two pictures' colours
BAR_A, BAR_B = W // 4, 3 * W // 4  # each bar's left edge; bars are 8 px wide


def write_bar_picture(path: Path, color, bar_x: int, bar_color) -> None:
    img = Image.new("RGB", (W, H), color)
    ImageDraw.Draw(img).rectangle((bar_x, 0, bar_x + 7, H - 1), fill=bar_color)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def write_lesson(folder: Path, segments: list[dict]) -> Path:
    manifest = {"title": "Transitions", "width": W, "height": H, "fps": FPS, "segments": segments}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(c.streams.video[0])]


def two_pictures(folder: Path, kind: str) -> Path:
    write_bar_picture(folder / "images" / "a.png", A, BAR_A, (255, 255, 255))
    write_bar_picture(folder / "images" / "b.png", B, BAR_B, (0, 0, 0))
    return write_lesson(
        folder,
        [
            {"image": "images/a.png", "duration": 1.0},
            {"image": "images/b.png", "duration": 1.0, "transition": {"type": kind, "duration": T / FPS}},
        ],
    )


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict[str, list[np.ndarray]]:
    """Each kind of transition rendered once (serial), decoded."""
    found = {}
    for kind in ("crossfade", "fade", "slide-left", "wipe-left"):
        folder = two_pictures(tmp_path_factory.mktemp(kind), kind)
        result = render_lesson(folder, folder / "out.mp4", cache_dir=folder / "cache")
        assert result.frames == load_manifest(folder).total_frames == 60  # the sum of the segments
        found[kind] = decoded(folder / "out.mp4")
    return found


def progress(k: int) -> float:
    return (k + 1) / (T + 1)


def plain(frame: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """The mean colour of columns [x0, x1), rows clear of nothing in particular."""
    return frame[20:-20, x0:x1].reshape(-1, 3).mean(axis=0)


def column_colors(frame: np.ndarray) -> np.ndarray:
    return frame[20:-20].mean(axis=0)  # W x 3


def test_frame_count_and_untouched_frames(renders):
    for frames in renders.values():
        assert len(frames) == 60
        assert np.abs(plain(frames[29], 0, 60) - A).max() < 6  # the first segment, to its end
        assert np.abs(plain(frames[30 + T], 0, 60) - B).max() < 6  # after the transition


def test_crossfade_blends_linearly(renders):
    frames = renders["crossfade"]
    seen = []
    for k in range(T):
        got = plain(frames[30 + k], 0, 60)
        p = progress(k)
        assert np.abs(got - (np.array(A) * (1 - p) + np.array(B) * p)).max() < 5
        seen.append(got)
    middle = plain(frames[30 + T // 2], 0, 60)
    assert np.abs(middle - (np.array(A) + B) / 2).max() < 5  # half way: the mean of the two
    reds = [c[0] for c in [A, *seen, B]]
    assert all(x > y + 3 for x, y in itertools.pairwise(reds))  # each frame a new step


def test_fade_passes_through_black(renders):
    frames = renders["fade"]
    levels = [plain(frames[30 + k], 0, 60).max() for k in range(T)]
    assert levels[T // 2] < 20  # the middle frame is (near) black
    assert all(x > y for x, y in itertools.pairwise(levels[: T // 2 + 1]))
    assert all(x < y for x, y in itertools.pairwise(levels[T // 2 :]))
    first, last = plain(frames[30], 0, 60), plain(frames[30 + T - 1], 0, 60)
    assert np.abs(first - np.array(A) * (1 - 2 * progress(0))).max() < 5  # A, slightly darker
    assert np.abs(last - np.array(B) * (2 * progress(T - 1) - 1)).max() < 5  # B, nearly full


def _edge(columns: np.ndarray) -> int:
    """Where the first picture ends: after its last column of A's colour (A's bar is inside it)."""
    found = np.argwhere(np.linalg.norm(columns - A, axis=1) < 40)
    return int(found[-1][0]) + 1 if len(found) else 0


def _bar(columns: np.ndarray, white: bool) -> int | None:
    """Left edge of the white (or black) bar, if one shows."""
    level = columns.mean(axis=1)
    hits = np.argwhere(level > 230) if white else np.argwhere(level < 25)
    return int(hits[0][0]) if len(hits) else None


def _offset(k: int) -> int:
    return 2 * round(progress(k) * W / 2)


@pytest.mark.parametrize("kind", ["slide-left", "wipe-left"])
def test_slide_and_wipe_put_the_boundary_where_expected(renders, kind):
    frames = renders[kind]
    for k in range(T):
        columns = column_colors(frames[30 + k])
        x = _offset(k)
        boundary = W - x
        assert abs(_edge(columns) - boundary) <= 2, k
        white, black = _bar(columns, True), _bar(columns, False)
        if kind == "slide-left":  # both pictures move: A's bar left by x, B's from the right edge
            want_white = BAR_A - x if BAR_A - x >= 0 else None
            want_black = boundary + BAR_B if boundary + BAR_B < W else None
        else:  # nothing moves: A is covered from the right, B uncovered in place
            want_white = BAR_A if boundary >= BAR_A + 8 else None
            want_black = BAR_B if boundary <= BAR_B else None
        for got, want in ((white, want_white), (black, want_black)):
            if want is None or want + 8 > W:
                continue
            assert got is not None and abs(got - want) <= 2, (k, got, want)


# --------------------------------------------------------------------------------------------
# The cache


@pytest.fixture
def four_segments(tmp_path) -> Path:
    """Still, moving (crossfade in), still (no transition), moving (wipe in); 1 s each."""
    (tmp_path / "lesson" / "images").mkdir(parents=True)
    for i in range(4):
        write_background(
            tmp_path / "lesson" / "images" / f"{i}.png", 2 * W, 2 * H, (60 * i, 80, 120), i, True
        )
    cross = {"type": "crossfade", "duration": 0.3}
    wipe = {"type": "wipe-left", "duration": 0.3}
    return write_lesson(
        tmp_path / "lesson",
        [
            {"image": "images/0.png", "duration": 1.0},
            {"image": "images/1.png", "duration": 1.0, "motion": "pan-left", "transition": cross},
            {"image": "images/2.png", "duration": 1.0},
            {"image": "images/3.png", "duration": 1.0, "motion": "zoom-in", "transition": wipe},
        ],
    )


def _repaint(lesson: Path, i: int) -> None:
    write_background(lesson / "images" / f"{i}.png", 2 * W, 2 * H, (250, 250, 0), 7, True)


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_unchanged_lessons_reuse_every_piece(four_segments, tmp_path, request, mode):
    settings = request.getfixturevalue(mode)
    cache = tmp_path / "cache"
    first = render_lesson(four_segments, tmp_path / "a.mp4", cache_dir=cache, settings=settings)
    # still 1 + (transition 1 + moving 1) + still 1 + (transition 1 + moving 1)
    assert (first.pieces_encoded, first.segments_encoded) == (6, 4)
    second = render_lesson(four_segments, tmp_path / "b.mp4", cache_dir=cache, settings=settings)
    assert (second.pieces_encoded, second.pieces_cached) == (0, 6)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_a_changed_picture_reencodes_itself_and_the_transition_out_of_it(four_segments, tmp_path, serial):
    cache = tmp_path / "cache"
    render_lesson(four_segments, tmp_path / "a.mp4", cache_dir=cache, settings=serial)
    _repaint(four_segments, 0)
    result = render_lesson(four_segments, tmp_path / "b.mp4", cache_dir=cache, settings=serial)
    # segment 0's piece and segment 1's transition; not segment 1's moving frames after it
    assert (result.pieces_encoded, result.segments_encoded) == (2, 2)
    _repaint(four_segments, 2)  # after segment 1, which runs into it with no transition
    result = render_lesson(four_segments, tmp_path / "c.mp4", cache_dir=cache, settings=serial)
    assert (result.pieces_encoded, result.segments_encoded) == (2, 2)  # segment 2, segment 3's wipe
    frames = decoded(tmp_path / "c.mp4")
    assert len(frames) == 120
    assert np.abs(plain(frames[70], 0, W) - (250, 250, 0)).max() < 40  # segment 2's new picture


def test_a_changed_moving_segment_leaves_earlier_ones_alone(four_segments, tmp_path, serial):
    cache = tmp_path / "cache"
    render_lesson(four_segments, tmp_path / "a.mp4", cache_dir=cache, settings=serial)
    manifest = json.loads((four_segments / "lesson.json").read_text())
    manifest["segments"][3]["motion"] = "zoom-out"
    (four_segments / "lesson.json").write_text(json.dumps(manifest))
    result = render_lesson(four_segments, tmp_path / "b.mp4", cache_dir=cache, settings=serial)
    assert (result.pieces_encoded, result.segments_encoded) == (2, 1)  # segment 3's two pieces


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_a_transition_may_last_its_whole_segment(tmp_path, request, mode):
    folder = tmp_path / "whole"
    write_bar_picture(folder / "images" / "a.png", A, BAR_A, (255, 255, 255))
    write_bar_picture(folder / "images" / "b.png", B, BAR_B, (0, 0, 0))
    whole = {"type": "crossfade", "duration": 0.5}
    lesson = write_lesson(
        folder,
        [
            {"image": "images/a.png", "duration": 1.0},
            {"image": "images/b.png", "duration": 0.5, "transition": whole},  # 15 frames, all blended
            {"image": "images/a.png", "duration": 0.5, "transition": {"type": "wipe-left", "duration": 0.5}},
        ],
    )
    result = render_lesson(
        lesson, tmp_path / "out.mp4", cache_dir=tmp_path / "cache", settings=request.getfixturevalue(mode)
    )
    frames = decoded(tmp_path / "out.mp4")
    assert result.frames == len(frames) == 60
    # Segment 1 never shows B alone; segment 2 wipes from segment 1 as shown (still blending).
    assert np.abs(plain(frames[44], 0, 60) - (np.array(A) + 15 * np.array(B)) / 16).max() < 6
    assert np.abs(plain(frames[45], 0, 60) - plain(frames[30], 0, 60)).max() < 6
