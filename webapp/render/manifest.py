"""Read and fully validate a lesson folder's lesson.json into typed objects.

Every problem raises ManifestError with the field at fault, e.g.
`segments[3].audio: file not found`; nothing here lets a stack trace reach a user. The checks of
segments, transitions and glyphs go on past a problem and report up to five together.

Rules (the lesson.json format; also in webapp/render/README.md):
- `title` (non-empty string) and `segments` (non-empty list) are required.
- `width`/`height`: even integers 16..3840 (default 1920x1080); `fps`: integer 1..60 (30).
- Each segment has `audio` or a positive `duration` (or both: then `duration` wins and the
  audio is cut or padded with silence). Without `duration` a segment lasts its audio.
- Asset paths are relative, inside the lesson folder or its video folder (assets.py).
- Clips (`video`), `motion`, `transition` and the lesson's `music` bed: effects.py.
- `background` is a colour ("#1a1a2e", "#fff", "rgb(10,20,30)", "navy").
- Captions (captions.py): a segment's `captions` cues or `caption` text, the lesson's
  `captions` settings ({"language": "th", "burnIn": false}; `burnIn: true` also draws them
  into the picture, burn.py, so then their characters need glyphs like titles do).
- Unknown keys are ignored (earlier pipeline steps may add their own) and listed in
  `Manifest.warnings`, so a typo such as "imgae" is visible in the CLI and logs.
- Limits, so a hostile lesson cannot tie up a worker or a web request (limits.py): lesson.json
  at most 1 MB (and itself inside the lesson folder, lesson_json.py), at most 2,000 segments,
  200,000 characters of titles and texts, `max_duration` seconds in all (default 4 h) and fewer
  than 2**31 frames. Validating a lesson at these limits takes milliseconds: each file is
  probed once, each character's font coverage is looked up once.

The field checks that shape a picture (text clean-up, colours, `font_chain`) stay in this
file: compose.py hashes it into the key of its picture memo.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import ImageColor

from . import captions as cap
from . import effects, limits
from .assets import Assets, av_reason
from .assets import wav_header as wav_header  # importable from here, as before
from .errors import ManifestError, Problems, RenderError
from .fonts import FontChain, FontFileError, bundled_faces, load_face, uncovered
from .lesson_json import MANIFEST_NAME, lesson_root, parse_json, read_manifest
from .limits import DEFAULT_MAX_DURATION, Totals
from .loudness import DEFAULT_TARGET as DEFAULT_LOUDNESS

__all__ = ["DEFAULT_MAX_DURATION", "MANIFEST_NAME", "Manifest", "ManifestError", "Segment", "load_manifest"]

DEFAULT_BACKGROUND = "#000000"
TOP_KEYS = {"title", "width", "height", "fps", "font", "segments", "captions", "loudness", "music"}
SEGMENT_KEYS = {
    "image", "background", "audio", "duration", "title", "text", "captions", "caption",
    "video", "videoStart", "videoEnd", "videoVolume", "motion", "transition",
}  # fmt: skip


@dataclass(frozen=True)
class Segment:
    """One picture shown while its narration plays."""

    duration: float  # seconds this segment lasts (its `duration`, else its audio's length)
    image: Path | None = None  # resolved path inside the lesson folder
    background: str | None = None  # as written in lesson.json
    audio: Path | None = None  # resolved path inside the lesson folder
    title: str = ""
    text: str = ""
    index: int = 0
    color: tuple[int, int, int] = (0, 0, 0)  # parsed `background` (default black)
    audio_duration: float | None = None  # the audio file's own length, if any
    audio_channels: int = 0
    captions: tuple[cap.Cue, ...] = ()  # times in seconds from the segment's start (captions.py)
    video: effects.Clip | None = None  # a clip shown instead of an image (effects.py)
    motion: effects.Motion | None = None  # the image moves (effects.py)
    transition: effects.Transition | None = None  # from the previous segment, in this one's start

    @property
    def still(self) -> bool:
        """One picture for the whole segment (no clip, motion or transition)."""
        return self.video is None and self.motion is None and self.transition is None

    @property
    def field(self) -> str:
        return f"segments[{self.index}]"


@dataclass(frozen=True)
class Manifest:
    lesson_dir: Path
    title: str
    width: int
    height: int
    fps: int
    segments: tuple[Segment, ...]
    font: Path | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    caption_settings: cap.CaptionSettings = field(default_factory=cap.CaptionSettings)
    # Integrated loudness (LUFS) the audio is normalised to; None: left as it is.
    loudness: float | None = DEFAULT_LOUDNESS
    music: effects.Music | None = None  # a bed under the whole lesson (effects.py)

    @property
    def duration(self) -> float:
        """Sum of the segment durations, in seconds."""
        return math.fsum(s.duration for s in self.segments)

    @property
    def frame_starts(self) -> tuple[int, ...]:
        """First frame of each segment, then the total: segment k is [starts[k], starts[k+1])."""
        starts, t = [0], 0.0
        for s in self.segments:
            t = math.fsum((t, s.duration))
            starts.append(round(t * self.fps))
        return tuple(starts)

    @property
    def total_frames(self) -> int:
        """The exact number of frames the output video has."""
        return self.frame_starts[-1]

    def segment_frames(self) -> list[tuple[int, int]]:
        """(first frame, frame count) of each segment."""
        st = self.frame_starts
        return [(st[i], st[i + 1] - st[i]) for i in range(len(self.segments))]

    def segment_times(self) -> list[tuple[float, float]]:
        """(start, end) of each segment in seconds, from the frame plan (what the picture shows)."""
        st = self.frame_starts
        return [(st[i] / self.fps, st[i + 1] / self.fps) for i in range(len(self.segments))]

    def caption_cues(self) -> list[cap.Cue]:
        """Every segment's captions in lesson time, placed by the frame plan like the pictures."""
        cues = []
        for seg, (start, end) in zip(self.segments, self.segment_times(), strict=True):
            cues.extend(cues_in_lesson_time(seg, start, end))
        return cues


def cues_in_lesson_time(seg: Segment, start: float, end: float) -> list[cap.Cue]:
    """The segment's captions in lesson time, given its (start, end) in seconds from the frame plan."""
    cues = []
    for c in seg.captions:
        # A cue ending at its segment's end ends where the next picture starts.
        last = c.end >= seg.duration - cap.EPSILON
        cues.append(cap.Cue(start + c.start, end if last else min(end, start + c.end), c.text))
    return [c for c in cues if c.end > c.start]


def _fail(field_name: str, reason: str) -> ManifestError:
    return ManifestError(field_name, reason)


def _int_field(raw: dict, key: str, default: int, lo: int, hi: int, even: bool = False) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, f"must be an integer, got {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _fail(key, f"must be an integer, got {value}")
        value = int(value)
    if not lo <= value <= hi:
        raise _fail(key, f"must be between {lo} and {hi}, got {_shown(value)}")
    if even and value % 2:
        raise _fail(key, f"must be even (H.264 4:2:0 needs even sizes), got {value}")
    return value


def _text_field(raw: dict, key: str, where: str, required: bool = False) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise _fail(where, "required")
        return ""
    if not isinstance(value, str):
        raise _fail(where, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _fail(where, "must not be empty")
    if len(value) > limits.MAX_TEXT_CHARS:
        raise _fail(where, f"too long ({len(value)} characters, at most {limits.MAX_TEXT_CHARS})")
    # Drop control characters other than newline/tab; they have no glyphs.
    return _CONTROL.sub("", value).replace("\t", " ")


# Unicode's control characters (category Cc) except tab and newline; a regex runs in C.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _parse_color(value, where: str) -> tuple[int, int, int]:
    if not isinstance(value, str):
        raise _fail(where, f'must be a colour string like "#1a1a2e", got {type(value).__name__}')
    try:
        rgb = ImageColor.getrgb(value.strip())
    except ValueError as exc:
        raise _fail(where, f'not a colour: {value!r} (use e.g. "#1a1a2e")') from exc
    return tuple(rgb[:3])


def _duration_field(seg: dict, where: str) -> float | None:
    value = seg.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"must be a number of seconds, got {type(value).__name__}")
    # Compared before any float conversion: a 4,000-digit integer does not fit a float.
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        raise _fail(where, f"must be a positive number of seconds, got {_shown(value)}")
    if value > limits.MAX_SEGMENT_SECONDS:
        raise _fail(where, f"too long (more than {limits.MAX_SEGMENT_SECONDS} s, the limit for one segment)")
    return float(value)


def _shown(value) -> str:
    """A number as written, cut short: JSON integers may have thousands of digits."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:20]}…"


def font_chain(manifest: Manifest | None, bold: bool = False, system_fallback: bool = True) -> FontChain:
    """The lesson's font (if any) followed by the bundled Noto faces."""
    faces = []
    if manifest is not None and manifest.font is not None:
        faces.append(load_face(str(manifest.font)))
    faces.extend(bundled_faces(bold))
    return FontChain(faces, system_fallback=system_fallback)


def load_manifest(lesson_dir: Path | str, *, max_duration: float = DEFAULT_MAX_DURATION) -> Manifest:
    """Parse and validate LESSON_DIR/lesson.json; raise ManifestError naming the field at fault.

    `max_duration`: the longest lesson accepted, in seconds (default 4 h).
    """
    if not max_duration > 0:
        raise ValueError(f"max_duration must be a positive number of seconds, got {max_duration}")
    root = lesson_root(lesson_dir)
    raw = parse_json(read_manifest(root))
    warnings = [f"{k}: unknown key, ignored" for k in raw if k not in TOP_KEYS]
    title = _text_field(raw, "title", "title", required=True).strip()
    width = _int_field(raw, "width", 1920, 16, 3840, even=True)
    height = _int_field(raw, "height", 1080, 16, 3840, even=True)
    fps = _int_field(raw, "fps", 30, 1, 60)
    assets = Assets(root)
    font = _lesson_font(raw, assets)
    items = _segment_items(raw)
    caption_settings = cap.lesson_settings(raw, warnings)
    totals = Totals(fps, max_duration)
    counter = cap.CueCounter()
    problems, segments = Problems(), []
    for i, seg in enumerate(items):
        try:
            segments.append(_segment(i, seg, assets, totals, counter, warnings))
        except ManifestError as exc:
            problems.add(exc)
            if exc.field == "segments":  # a whole-lesson limit: the rest is not looked at
                break
    problems.check()
    manifest = Manifest(
        lesson_dir=root,
        title=title,
        width=width,
        height=height,
        fps=fps,
        segments=tuple(segments),
        font=font,
        warnings=tuple(warnings),
        caption_settings=caption_settings,
        loudness=effects.loudness(raw),
        music=effects.music(raw, assets),
    )
    for exc in effects.transition_problems(manifest.segments, [n for _, n in manifest.segment_frames()], fps):
        problems.add(exc)
    for exc in _glyph_problems(manifest):
        problems.add(exc)
    problems.check()
    return manifest


def _lesson_font(raw: dict, assets: Assets) -> Path | None:
    """The lesson's own font file, if it names one; ManifestError unless it is usable."""
    if raw.get("font") is None:
        return None
    font = assets.resolve(raw["font"], "font")
    try:
        load_face(str(font))
    except FontFileError as exc:
        raise _fail("font", f"not a usable font file: {exc}") from exc
    return font


def _segment_items(raw: dict) -> list:
    """The raw `segments` list: present, not empty, within the limit (counted before any is read)."""
    items = raw.get("segments")
    if items is None:
        raise _fail("segments", "required (a list of at least one segment)")
    if not isinstance(items, list):
        raise _fail("segments", f"must be a list, got {type(items).__name__}")
    if not items:
        raise _fail("segments", "at least one segment is required")
    if len(items) > limits.MAX_SEGMENTS:
        raise _fail("segments", f"too many segments ({len(items)}; the limit is {limits.MAX_SEGMENTS})")
    return items


def _segment(
    i: int, seg, assets: Assets, totals: Totals, counter: cap.CueCounter, warnings: list[str]
) -> Segment:
    """Validate segment `i` and add it to the totals; its unknown keys are added to `warnings`."""
    where = f"segments[{i}]"
    if not isinstance(seg, dict):
        raise _fail(where, f"must be an object, got {type(seg).__name__}")
    warnings.extend(f"{where}.{k}: unknown key, ignored" for k in seg if k not in SEGMENT_KEYS)
    image = None
    if seg.get("image") is not None:
        image = assets.image(seg["image"], f"{where}.image")
    background = seg.get("background")
    color = _parse_color(background, f"{where}.background") if background is not None else (0, 0, 0)
    duration = _duration_field(seg, f"{where}.duration")
    audio = audio_duration = None
    channels = 0
    if seg.get("audio") is not None:
        audio, audio_duration, channels = assets.probe(seg["audio"], f"{where}.audio")
    video = effects.clip(seg, where, assets, has_audio=audio is not None)
    clip_length = video.end - video.start if video else None
    effective = _effective_duration(where, duration, audio_duration, clip_length, totals.fps)
    totals.add_seconds(effective)
    seg_title = _text_field(seg, "title", f"{where}.title").strip()
    seg_text = _text_field(seg, "text", f"{where}.text").strip()
    totals.add_text(len(seg_title) + len(seg_text))
    cues = cap.segment_cues(seg, where, effective, counter, warnings)
    return Segment(
        duration=effective,
        image=image,
        background=background,
        audio=audio,
        title=seg_title,
        text=seg_text,
        index=i,
        color=color,
        audio_duration=audio_duration,
        audio_channels=channels,
        captions=cues,
        video=video,
        motion=effects.motion(seg, where),
        transition=effects.transition(seg, where, i),
    )


def _effective_duration(
    where: str, duration: float | None, audio_duration: float | None, clip_length: float | None, fps: int
) -> float:
    """How long the segment lasts: its `duration`, else its audio's, else its clip's (videoStart to
    videoEnd); at least one frame, within the limit."""
    if duration is None and audio_duration is None and clip_length is None:
        raise _fail(f"{where}.duration", 'required when the segment has no "audio" or "video"')
    if duration is not None:
        effective, culprit = duration, f"{where}.duration"
    elif audio_duration is not None:
        effective, culprit = audio_duration, f"{where}.audio"
    else:
        effective, culprit = clip_length, f"{where}.video"
    if effective * fps < 1 - 1e-9:
        raise _fail(culprit, f"lasts {effective:.3f} s, shorter than one frame at {fps} fps")
    if effective * fps >= limits.FRAME_LIMIT - 0.5:
        raise _fail(
            culprit, f"lasts {effective:.0f} s, too many frames (the limit is {limits.FRAME_LIMIT - 1})"
        )
    return effective


def _drawn_texts(manifest: Manifest):
    """(field, "title" or "text" style, text) of everything drawn into a picture."""
    burn_in = manifest.caption_settings.burn_in
    for seg in manifest.segments:
        yield f"{seg.field}.title", "title", seg.title
        yield f"{seg.field}.text", "text", seg.text
        if burn_in:  # burned-in captions are drawn in the body text's style (burn.py)
            for cue in seg.captions:
                yield cue.where, "text", cue.text


def _glyph_problems(manifest: Manifest) -> Iterator[ManifestError]:
    """Every character of every title/text (and burned-in caption) must be covered by some font."""
    chains = {"title": font_chain(manifest, bold=True), "text": font_chain(manifest, bold=False)}
    for where, missing in uncovered(_drawn_texts(manifest), chains):
        chars = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing)
        hint = 'add a font file that does to the lesson folder and name it in "font"'
        yield _fail(where, f"no font covers {chars}; {hint}")


def segment_error(seg: Segment, key: str, exc: Exception) -> RenderError:
    """A ManifestError for an asset that validated but failed while rendering."""
    return ManifestError(f"{seg.field}.{key}", av_reason(exc))
