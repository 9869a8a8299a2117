"""Clips and sound are read only as media files, never as lists of other files.

FFmpeg can read a file that lists other files (an HLS or DASH playlist) and open what it names,
wherever the process may read (its concat lists are refused by its own `safe` mode): a lesson's
`../clip.m3u8` naming another course's finished video would render that video into the lesson
(an attacker's review did just that). The path checks confine the file a lesson names; these
tests confine what FFmpeg opens through it, at validation and in the decoders a render uses.

Plain functions on temporary folders: no app, database or Redis.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import av
import pytest

from webapp.render import ManifestError, load_manifest
from webapp.render.sample import write_clip, write_tone


@pytest.fixture
def secret(tmp_path) -> dict[str, Path]:
    """Another course's finished video (picture and sound), outside the lesson's video folder."""
    elsewhere = tmp_path / "videos" / "TheirVideo" / "lesson_1"
    elsewhere.mkdir(parents=True)
    return {"clip": write_clip(elsewhere / "final_video.mp4", 1.0, size=(64, 36))}


def _video_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "lessons" / "MyVideo"
    (folder / "lesson_1").mkdir(parents=True)
    return folder


def _write_lesson(lesson: Path, segment: dict, **top) -> Path:
    manifest = {"title": "Mine", "width": 64, "height": 36, "fps": 30, "segments": [segment], **top}
    (lesson / "lesson.json").write_text(json.dumps(manifest), encoding="utf-8")
    return lesson


def _playlist(path: Path, target: Path) -> Path:
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{target}\n#EXT-X-ENDLIST\n")
    return path


def _refused(lesson: Path) -> str:
    with pytest.raises(ManifestError) as info:
        load_manifest(lesson)
    return str(info.value)


def test_the_lists_really_do_reach_outside(secret, tmp_path):
    """The premise: FFmpeg, left to itself, opens what such a file names (so the tests below
    test the guard, not FFmpeg's own refusal)."""
    listed = _playlist(tmp_path / "clip.m3u8", secret["clip"])
    with av.open(str(listed)) as container:
        assert container.format.name == "hls" and container.streams.video
    sound = _playlist(tmp_path / "sound.m3u8", secret["clip"])  # its sound: a finished video's
    with av.open(str(sound)) as container:
        assert container.format.name == "hls" and container.streams.audio


@pytest.mark.parametrize("name", ["clip.m3u8", "clip.mp4"])  # the name does not matter, the content does
def test_a_playlist_as_a_clip_is_refused(secret, tmp_path, name):
    folder = _video_folder(tmp_path)
    _playlist(folder / name, secret["clip"])
    lesson = _write_lesson(folder / "lesson_1", {"video": f"../{name}", "duration": 1})
    message = _refused(lesson)
    assert message.startswith("segments[0].video: ") and str(tmp_path) not in message
    if name.endswith(".m3u8"):  # FFmpeg recognises a playlist by its name as much as its content
        assert "playlist" in message


@pytest.mark.parametrize("key", ["audio", "music"])
def test_a_playlist_as_sound_is_refused(secret, tmp_path, key):
    folder = _video_folder(tmp_path)
    _playlist(folder / "sound.m3u8", secret["clip"])
    if key == "audio":
        lesson = _write_lesson(folder / "lesson_1", {"audio": "../sound.m3u8"})
    else:
        lesson = _write_lesson(folder / "lesson_1", {"duration": 1}, music={"src": "../sound.m3u8"})
    message = _refused(lesson)
    assert message.startswith(("segments[0].audio: ", "music.src: ")) and "playlist" in message


def test_the_decoders_refuse_a_file_swapped_after_validation(secret, tmp_path):
    """A shared file replaced between the check and the render (uploads replace a video's shared
    files): the clip decoder and the audio decoder open only media formats themselves."""
    from webapp.render import clips, mix
    from webapp.render.effects import Clip

    listed = _playlist(tmp_path / "clip.m3u8", secret["clip"])
    clip = Clip(path=listed, start=0.0, end=1.0, volume=0.0, info=None)
    with pytest.raises(ManifestError, match="playlist"):
        clips._Source(clip, "segments[0].video", lambda _n: None)
    with pytest.raises(ManifestError, match="playlist"):
        next(mix._decoded(str(listed), "segments[0].audio", "mono", 48000))


def test_media_files_still_open(tmp_path):
    """What lessons use stays readable: MP4 clips, WAV and other audio."""
    folder = _video_folder(tmp_path)
    write_clip(folder / "source.mp4", 1.0, size=(64, 36))
    lesson = folder / "lesson_1"
    write_tone(lesson / "a.ogg", 1.0, 440.0, fmt="ogg")
    write_tone(lesson / "b.mp3", 1.0, 440.0, fmt="mp3")
    _write_lesson(lesson, {"video": "../source.mp4", "audio": "a.ogg"}, music={"src": "b.mp3"})
    manifest = load_manifest(lesson)
    assert manifest.segments[0].video is not None and manifest.music is not None
    with wave.open(str(write_tone(lesson / "c.wav", 0.5, 440.0))) as wav:
        assert wav.getnframes() > 0


def test_only_plain_raster_images_are_read(tmp_path):
    """Pillow opens EPS too, by running Ghostscript on it (a long history of escapes from its
    sandbox); a lesson's pictures are read as PNG, JPEG, WebP, GIF, BMP, TIFF, HEIC or AVIF only."""
    folder = _video_folder(tmp_path)
    lesson = folder / "lesson_1"
    (lesson / "slide.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 36\nshowpage\n")
    _write_lesson(lesson, {"image": "slide.eps", "duration": 1})
    message = _refused(lesson)
    assert message.startswith("segments[0].image: ") and "PNG, JPEG" in message


def test_a_broken_phone_photo_is_refused_naming_what_is_read(tmp_path):
    """HEIC and AVIF photos are read (tests/render/test_pictures.py); a file that only starts like
    one (here the 'ftyp' box of a real HEIC photo, then nothing) is refused before any render,
    saying which formats a picture may be in."""
    folder = _video_folder(tmp_path)
    lesson = folder / "lesson_1"
    (lesson / "IMG_0042.HEIC").write_bytes(
        b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf" + bytes(200)
    )
    _write_lesson(lesson, {"image": "IMG_0042.HEIC", "duration": 1})
    assert _refused(lesson) == "segments[0].image: not a PNG, JPEG, WebP, GIF, BMP, TIFF, HEIC or AVIF image"
