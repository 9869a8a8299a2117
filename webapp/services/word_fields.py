"""The words page's field names ("title", "s2-caption", "s2-cue0"), as the page says them and as
the lesson's check names the same places in lesson.json ("segments[1].captions[0].text")."""

from __future__ import annotations

import re

EDITABLE = re.compile(r"\A(?:title|language|burn_in|s[1-9]\d{0,3}-(?:title|text|caption|cue\d{1,5}))\Z")
_FIELD_IN_CHECK = re.compile(
    r"\b(?:segments\[(\d+)\]\.(?:(title|text|caption)\b|captions\[(\d+)\])|captions\.(language|burnIn)\b)"
)


def label(name: str) -> str:
    """A field's name as the page says it: "Segment 2's caption 3"."""
    fixed = {"title": "The lesson's title", "language": "The captions' language", "burn_in": "Burn-in"}
    if name in fixed:
        return fixed[name]
    number, what = name[1:].split("-", 1)
    if what.startswith("cue"):
        return f"Segment {number}'s caption {int(what[3:]) + 1}"
    return f"Segment {number}'s {what}"


def segment_of(name: str) -> int | None:
    """The segment a field belongs to ("s3-caption" -> 3); None for the lesson's own."""
    return int(name[1:].split("-")[0]) if name.startswith("s") else None


def field_of(message: str) -> str | None:
    """The form field a lesson check's message is about ("segments[2].caption: …" -> "s3-caption")."""
    found = _FIELD_IN_CHECK.search(message or "")
    if found is None:
        return None
    segment, key, cue, setting = found.groups()
    if setting:
        return "language" if setting == "language" else "burn_in"
    return f"s{int(segment) + 1}-{key}" if key else f"s{int(segment) + 1}-cue{cue}"


def in_words(message: str) -> str:
    """A lesson check's message about a field of the page, said with the page's name for it:
    "lesson_1: captions.language: must be …" -> "The captions' language: must be …"."""
    message = re.sub(r"\Alesson_\d+: ", "", message)
    name = field_of(message)
    where, colon, reason = message.partition(": ")
    if name is None or not colon or field_of(where) != name or " " in where:
        return message
    return f"{label(name)}: {reason}"
