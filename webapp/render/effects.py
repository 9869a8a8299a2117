"""What a lesson asks beyond still pictures: clips, motion, transitions, a music bed, loudness.

lesson.json keys read here (each problem raises ManifestError naming the field):
- Segment `"video": "clips/intro.mp4"`: a clip shown like `image` (scaled to cover, centre
  crop), from `"videoStart"` (s, default 0) to `"videoEnd"` (s, default the clip's end); when
  the segment lasts longer, the clip's last frame holds. `"videoVolume"` 0-1 is the clip's own
  sound (default 1 without `audio`, 0 with it). A segment has `image` or `video`, not both.
- Segment `"motion"` on an image: a preset ("zoom-in", "zoom-out", "pan-left", "pan-right",
  "pan-up", "pan-down") or `{"from": [cx, cy, zoom], "to": [cx, cy, zoom]}`: the view's centre
  as fractions of the picture and its zoom (1 = the whole picture, at most MAX_ZOOM), eased in
  and out. A centre too near an edge for its zoom is moved in, so the view stays on the picture.
  "pan-left" moves the view towards the picture's left edge (the picture slides right).
- Segment `"transition": {"type": "fade" | "crossfade" | "slide-left" | "wipe-left",
  "duration": 0.5}`: into this segment from the previous one, during the first `duration`
  seconds of this segment (so the lesson lasts the sum of its segments). "fade" passes through
  black; "crossfade" blends; "slide-left" pushes the previous picture out to the left;
  "wipe-left" uncovers this picture from right to left.
- Lesson `"loudness": -16`: the integrated loudness (LUFS) the final mix is normalised to;
  null leaves the sound as it is (loudness.py).
- Lesson `"music": {"src": "audio/bed.mp3", "volume": 0.2, "duck": 0.3, "fade": 1.0}`: a bed
  looped or cut to the lesson, faded in and out over `fade` seconds, and lowered to
  `duck` x `volume` while narration plays.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .assets import Assets, ClipInfo
from .errors import ManifestError
from .loudness import DEFAULT_TARGET

MAX_ZOOM = 8.0
TRANSITION_TYPES = ("fade", "crossfade", "slide-left", "wipe-left")
DEFAULT_TRANSITION_SECONDS = 0.5
MUSIC_KEYS = {"src", "volume", "duck", "fade"}
MAX_MUSIC_FADE = 30.0
LOUDNESS_RANGE = (-40.0, -5.0)  # LUFS a lesson may ask for


@dataclass(frozen=True)
class Clip:
    path: Path  # resolved, inside the lesson folder or its video folder
    start: float  # seconds into the clip (videoStart)
    end: float  # seconds into the clip where it stops (videoEnd, default its end)
    volume: float  # the clip's own sound, 0-1
    info: ClipInfo


@dataclass(frozen=True)
class View:
    """Where the camera looks: centre as fractions of the picture, zoom >= 1."""

    cx: float
    cy: float
    zoom: float

    def clamped(self) -> View:
        half = 0.5 / self.zoom
        return View(min(max(self.cx, half), 1 - half), min(max(self.cy, half), 1 - half), self.zoom)


def ease(t: float) -> float:
    """Ease in and out (a half cosine): 0 at 0, 1 at 1, no jump in speed at either end."""
    t = min(max(t, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * t)


@dataclass(frozen=True)
class Motion:
    start: View
    end: View

    def at(self, t: float) -> View:
        """The view at `t` (0: the segment's first frame, 1: its last), eased; zoom moves
        geometrically, so a zoom feels even."""
        e = ease(t)
        a, b = self.start, self.end
        zoom = a.zoom * (b.zoom / a.zoom) ** e
        return View(a.cx + (b.cx - a.cx) * e, a.cy + (b.cy - a.cy) * e, zoom).clamped()


_PAN_ZOOM, _PAN_REACH = 1.2, 0.08
PRESETS = {
    "zoom-in": Motion(View(0.5, 0.5, 1.0), View(0.5, 0.5, 1.25)),
    "zoom-out": Motion(View(0.5, 0.5, 1.25), View(0.5, 0.5, 1.0)),
    "pan-left": Motion(View(0.5 + _PAN_REACH, 0.5, _PAN_ZOOM), View(0.5 - _PAN_REACH, 0.5, _PAN_ZOOM)),
    "pan-right": Motion(View(0.5 - _PAN_REACH, 0.5, _PAN_ZOOM), View(0.5 + _PAN_REACH, 0.5, _PAN_ZOOM)),
    "pan-up": Motion(View(0.5, 0.5 + _PAN_REACH, _PAN_ZOOM), View(0.5, 0.5 - _PAN_REACH, _PAN_ZOOM)),
    "pan-down": Motion(View(0.5, 0.5 - _PAN_REACH, _PAN_ZOOM), View(0.5, 0.5 + _PAN_REACH, _PAN_ZOOM)),
}


@dataclass(frozen=True)
class Transition:
    type: str
    duration: float  # seconds, inside the start of its segment

    def frames(self, fps: int) -> int:
        return max(1, round(self.duration * fps))


@dataclass(frozen=True)
class Music:
    path: Path
    volume: float
    duck: float  # the bed plays at duck x volume while narration plays
    fade: float  # seconds of fade in at the start and out at the end
    duration: float  # the file's own length
    channels: int


def _number(value, where: str, lo: float, hi: float, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(where, f"must be {what}, got {type(value).__name__}")
    if not (math.isfinite(value) and lo <= value <= hi):
        limits = f"{lo:g} or more {what}" if hi == math.inf else f"from {lo:g} to {hi:g}"
        raise ManifestError(where, f"must be {limits}, got {str(value)[:24]}")
    return float(value)


def clip(seg: dict, where: str, assets: Assets, has_audio: bool) -> Clip | None:
    """The segment's `video` clip, or None; its other keys are refused without one."""
    if seg.get("video") is None:
        for key in ("videoStart", "videoEnd", "videoVolume"):
            if key in seg:
                raise ManifestError(f"{where}.{key}", 'only applies to a segment with a "video"')
        return None
    if seg.get("image") is not None:
        raise ManifestError(f"{where}.video", 'a segment shows an "image" or a "video", not both')
    path, info = assets.clip(seg["video"], f"{where}.video")
    start = _number(seg.get("videoStart", 0), f"{where}.videoStart", 0, math.inf, "seconds")
    if start >= info.duration:
        raise ManifestError(f"{where}.videoStart", f"is at or past the clip's end ({info.duration:.3f} s)")
    end = info.duration
    if seg.get("videoEnd") is not None:
        end = _number(seg["videoEnd"], f"{where}.videoEnd", 0, math.inf, "seconds")
        if end > info.duration:
            raise ManifestError(f"{where}.videoEnd", f"is past the clip's end ({info.duration:.3f} s)")
        if end <= start:
            raise ManifestError(f"{where}.videoEnd", "must be after videoStart")
    default_volume = 0.0 if has_audio else 1.0
    volume = _number(seg.get("videoVolume", default_volume), f"{where}.videoVolume", 0, 1)
    return Clip(path, start, end, volume, info)


def _view(value, where: str) -> View:
    if not isinstance(value, list) or len(value) != 3:
        raise ManifestError(
            where, "must be [cx, cy, zoom]: the centre as fractions of the picture, zoom >= 1"
        )
    cx = _number(value[0], f"{where}[0]", 0, 1)
    cy = _number(value[1], f"{where}[1]", 0, 1)
    zoom = _number(value[2], f"{where}[2]", 1, MAX_ZOOM)
    return View(cx, cy, zoom).clamped()


def motion(seg: dict, where: str) -> Motion | None:
    value = seg.get("motion")
    if value is None:
        return None
    where = f"{where}.motion"
    if seg.get("image") is None:
        raise ManifestError(where, 'moves an "image"; this segment has none')
    if isinstance(value, str):
        if value not in PRESETS:
            raise ManifestError(where, f"unknown motion {value[:40]!r}; use one of {', '.join(PRESETS)}")
        return PRESETS[value]
    if not isinstance(value, dict):
        raise ManifestError(where, 'must be a preset name or {"from": [cx, cy, zoom], "to": [cx, cy, zoom]}')
    unknown = set(value) - {"from", "to"}
    if unknown:
        raise ManifestError(where, f"unknown key {sorted(unknown)[0][:40]!r}; use from and to")
    for key in ("from", "to"):
        if key not in value:
            raise ManifestError(f"{where}.{key}", "required")
    return Motion(_view(value["from"], f"{where}.from"), _view(value["to"], f"{where}.to"))


def transition(seg: dict, where: str, index: int) -> Transition | None:
    value = seg.get("transition")
    if value is None:
        return None
    where = f"{where}.transition"
    if index == 0:
        raise ManifestError(where, "the first segment has no previous segment to pass from")
    if not isinstance(value, dict):
        raise ManifestError(where, 'must be an object like {"type": "crossfade", "duration": 0.5}')
    unknown = set(value) - {"type", "duration"}
    if unknown:
        raise ManifestError(where, f"unknown key {sorted(unknown)[0][:40]!r}; use type and duration")
    kind = value.get("type")
    if kind not in TRANSITION_TYPES:
        shown = kind[:40] if isinstance(kind, str) else type(kind).__name__
        raise ManifestError(f"{where}.type", f"must be one of {', '.join(TRANSITION_TYPES)}, got {shown!r}")
    seconds = _number(
        value.get("duration", DEFAULT_TRANSITION_SECONDS), f"{where}.duration", 0, 60, "seconds"
    )
    if seconds <= 0:
        raise ManifestError(f"{where}.duration", "must be more than 0 seconds")
    return Transition(kind, seconds)


def transition_problems(segments, frames: list[int], fps: int) -> Iterator[ManifestError]:
    """Each transition fits inside its segment and the previous one, and lasts at least a frame."""
    for seg, n in zip(segments, frames, strict=True):
        trans = seg.transition
        if trans is None:
            continue
        where, previous = f"{seg.field}.transition.duration", frames[seg.index - 1]
        if trans.duration * fps < 1 - 1e-9:
            yield ManifestError(where, f"shorter than one frame at {fps} fps")
        elif trans.frames(fps) > n:
            yield ManifestError(where, f"longer than its segment ({n / fps:.3f} s)")
        elif trans.frames(fps) > previous:
            yield ManifestError(where, f"longer than the previous segment ({previous / fps:.3f} s)")


def music(raw: dict, assets: Assets) -> Music | None:
    value = raw.get("music")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ManifestError("music", 'must be an object like {"src": "audio/bed.mp3", "volume": 0.2}')
    unknown = set(value) - MUSIC_KEYS
    if unknown:
        raise ManifestError(
            "music", f"unknown key {sorted(unknown)[0][:40]!r}; use {', '.join(sorted(MUSIC_KEYS))}"
        )
    if value.get("src") is None:
        raise ManifestError("music.src", "required")
    path, duration, channels = assets.probe(value["src"], "music.src")
    return Music(
        path=path,
        volume=_number(value.get("volume", 0.2), "music.volume", 0, 1),
        duck=_number(value.get("duck", 0.3), "music.duck", 0, 1),
        fade=_number(value.get("fade", 1.0), "music.fade", 0, MAX_MUSIC_FADE, "seconds"),
        duration=duration,
        channels=channels,
    )


def loudness(raw: dict) -> float | None:
    """`loudness`: the integrated loudness to normalise to, in LUFS (default -16); null: off."""
    if "loudness" not in raw:
        return DEFAULT_TARGET
    value = raw["loudness"]
    if value is None:
        return None
    lo, hi = LOUDNESS_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        reason = f"must be a number of LUFS from {lo:g} to {hi:g}, or null to leave the sound alone"
        raise ManifestError("loudness", reason)
    return float(value)
