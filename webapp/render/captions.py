"""Captions in lesson.json: a segment's `captions` cues or its `caption` text, the lesson's settings.

- Segment `"captions": [{"start": 0.0, "end": 2.4, "text": "…"}, …]`: times in seconds from
  the segment's start, 0 <= start < end <= the segment's duration, text not empty.
- Segment `"caption": "…"`: the whole segment's text, split into cues of at most two lines
  of at most `LINE_CHARS` characters (marks do not count), timed in proportion to their length
  across the segment. A segment has one or the other, not both.
- Lesson `"captions": {"language": "th", "burnIn": false}`: the language tag of the WebVTT file
  (default "und"); `burnIn: true` also draws each cue into the picture (burn.py).

Captions that are not burned in shape no picture, so they are part of no picture's key:
changing one re-encodes no video. Burned-in ones key the pictures of their spans (burn.py).
Every problem raises ManifestError naming the field.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from . import limits
from .errors import ManifestError
from .linebreak import head_length

LINE_CHARS = 42  # one caption line, in characters (combining marks do not count)
CUE_LINES = 2
LESSON_KEYS = {"language", "burnIn"}
CUE_KEYS = {"start", "end", "text"}
EPSILON = 1e-6  # seconds: a cue may end at the segment's end as written in lesson.json

_LANGUAGE = re.compile(r"\A(?:[A-Za-z]{2,3}|und)(?:-[A-Za-z0-9]{1,8})*\Z")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Cue:
    """One caption: `start`/`end` in seconds (from the segment's start, or in the lesson)."""

    start: float
    end: float
    text: str  # one or more non-empty lines joined by "\n"
    where: str = field(default="", compare=False, repr=False)  # its lesson.json field, e.g. for glyph errors


@dataclass(frozen=True)
class CaptionSettings:
    language: str = "und"
    burn_in: bool = False


class CueCounter:
    """Running totals of cues and caption characters over a lesson, checked against the limits."""

    def __init__(self):
        self.cues = 0
        self.chars = 0

    def add(self, cues: int, chars: int, where: str) -> None:
        self.cues += cues
        self.chars += chars
        if self.cues > limits.MAX_CUES:
            raise ManifestError(
                where, f"too many caption cues in the lesson (the limit is {limits.MAX_CUES})"
            )
        if self.chars > limits.MAX_TOTAL_CAPTION_CHARS:
            raise ManifestError(
                where,
                f"captions total more than {limits.MAX_TOTAL_CAPTION_CHARS} characters "
                f"(the limit is {limits.MAX_TOTAL_CAPTION_CHARS})",
            )


def lesson_settings(raw: dict, warnings: list[str]) -> CaptionSettings:
    """The lesson's `captions` object (defaults when absent)."""
    value = raw.get("captions")
    if value is None:
        return CaptionSettings()
    if not isinstance(value, dict):
        raise ManifestError(
            "captions", f'must be an object like {{"language": "th"}}, got {type(value).__name__}'
        )
    warnings.extend(f"captions.{k}: unknown key, ignored" for k in value if k not in LESSON_KEYS)
    language = value.get("language", "und")
    if not isinstance(language, str) or not _LANGUAGE.match(language) or len(language) > 35:
        shown = language if isinstance(language, str) else type(language).__name__
        raise ManifestError(
            "captions.language", f'must be a language tag such as "th" or "en-GB", got {shown!r:.40}'
        )
    burn_in = value.get("burnIn", False)
    if not isinstance(burn_in, bool):
        raise ManifestError("captions.burnIn", f"must be true or false, got {type(burn_in).__name__}")
    return CaptionSettings(language=language, burn_in=burn_in)


def segment_cues(
    seg: dict, where: str, duration: float, counter: CueCounter, warnings: list[str]
) -> tuple[Cue, ...]:
    """The segment's cues, times from its start; () when it has neither `captions` nor `caption`."""
    cues, caption = seg.get("captions"), seg.get("caption")
    if cues is not None and caption is not None:
        raise ManifestError(f"{where}.captions", 'use either "captions" or "caption", not both')
    if caption is not None:
        text = clean_text(caption, f"{where}.caption")
        result = split_caption(text, duration, where=f"{where}.caption")
    elif cues is not None:
        result = _explicit_cues(cues, f"{where}.captions", duration, warnings)
    else:
        return ()
    named = f"{where}.caption" if caption is not None else f"{where}.captions"
    counter.add(len(result), sum(len(c.text) for c in result), named)
    return result


def clean_text(value, where: str) -> str:
    """A caption text: a non-empty string within the limit, control characters dropped, no blank lines."""
    if not isinstance(value, str):
        raise ManifestError(where, f"must be a string, got {type(value).__name__}")
    if len(value) > limits.MAX_TEXT_CHARS:
        raise ManifestError(where, f"too long ({len(value)} characters, at most {limits.MAX_TEXT_CHARS})")
    value = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).replace("\t", " ")
    lines = [" ".join(line.split()) for line in value.split("\n")]
    text = "\n".join(line for line in lines if line)
    if not text:
        raise ManifestError(where, "must not be empty")
    return text


def _explicit_cues(items, where: str, duration: float, warnings: list[str]) -> tuple[Cue, ...]:
    if not isinstance(items, list):
        raise ManifestError(where, f"must be a list of cues, got {type(items).__name__}")
    if not items:
        raise ManifestError(where, "at least one cue is required (leave the key out for none)")
    if len(items) > limits.MAX_CUES:  # counted before any cue is looked at
        raise ManifestError(where, f"too many cues ({len(items)}; the limit is {limits.MAX_CUES})")
    cues = []
    for j, item in enumerate(items):
        here = f"{where}[{j}]"
        if not isinstance(item, dict):
            raise ManifestError(here, f"must be an object, got {type(item).__name__}")
        warnings.extend(f"{here}.{k}: unknown key, ignored" for k in item if k not in CUE_KEYS)
        start = _seconds(item, "start", here)
        end = _seconds(item, "end", here)
        if start < 0:
            raise ManifestError(f"{here}.start", f"must not be negative, got {start:g}")
        if end <= start:
            raise ManifestError(f"{here}.end", f"must be after start ({start:g} s), got {end:g}")
        if end > duration + EPSILON:
            raise ManifestError(
                f"{here}.end", f"{end:g} s is after the end of the segment ({duration:.3f} s)"
            )
        if "text" not in item:
            raise ManifestError(f"{here}.text", "required")
        text = clean_text(item["text"], f"{here}.text")
        cues.append(Cue(start, min(end, duration), text, where=f"{here}.text"))
    return tuple(sorted(cues, key=lambda c: (c.start, c.end)))


def _seconds(item: dict, key: str, where: str) -> float:
    value = item.get(key)
    if value is None:
        raise ManifestError(f"{where}.{key}", "required (seconds from the segment's start)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(f"{where}.{key}", f"must be a number of seconds, got {type(value).__name__}")
    if isinstance(value, int) and abs(value) > limits.MAX_SEGMENT_SECONDS:
        raise ManifestError(f"{where}.{key}", "out of range")
    value = float(value)
    if not math.isfinite(value):
        raise ManifestError(f"{where}.{key}", "must be a finite number of seconds")
    return value


def width(text: str) -> int:
    """Characters that take room on a line (combining marks such as Thai tone marks do not)."""
    return sum(1 for ch in text if not unicodedata.category(ch).startswith("M"))


def wrap(text: str, limit: int = LINE_CHARS) -> list[str]:
    """Lines of at most `limit` characters: broken at spaces, over-long words between clusters."""
    lines: list[str] = []
    for para in text.split("\n"):
        current = ""
        for word in para.split():
            left = width(word)
            while left > limit:
                head, word = _split_word(word, limit - width(current) - (1 if current else 0))
                if not head and not current:  # a cluster wider than a line: cut it anyway
                    head, word = word[:limit], word[limit:]
                elif not head:  # no room left on this line: start the next one
                    lines.append(current)
                    current = ""
                    continue
                left -= width(head)
                lines.append(f"{current} {head}" if current else head)
                current = ""
            candidate = f"{current} {word}" if current else word
            if width(candidate) <= limit:
                current = candidate
            else:
                lines.append(current)
                current = word
        if current:
            lines.append(current)
    return lines


def _split_word(word: str, room: int) -> tuple[str, str]:
    """The longest head of `word` within `room` characters that ends where a line may break
    (linebreak.head_length: between words, else between clusters); empty if none fits."""
    n = head_length(word, lambda i: width(word[:i]) <= room) if room > 0 else 0
    return (word[:n], word[n:]) if width(word[:n]) <= room else ("", word)


def split_caption(text: str, duration: float, where: str = "") -> tuple[Cue, ...]:
    """`text` as cues of at most CUE_LINES lines, covering [0, duration] in proportion to their length."""
    lines = wrap(text)
    groups = ["\n".join(lines[i : i + CUE_LINES]) for i in range(0, len(lines), CUE_LINES)]
    weights = [max(1, width(g.replace("\n", " "))) for g in groups]
    total = sum(weights)
    cues, done = [], 0
    for group, w in zip(groups, weights, strict=True):
        start = duration * done / total
        done += w
        end = duration if done == total else duration * done / total
        cues.append(Cue(start, end, group, where))
    return tuple(cues)
