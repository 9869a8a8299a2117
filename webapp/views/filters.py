"""Jinja filters for times, durations and sizes as people read them."""

from __future__ import annotations

import math
import re
from datetime import datetime

from flask import Flask

from ..services.messages import plural
from ..services.summary import iso
from . import markdown
from .serializers import sidecar_url, video_url


def when(moment: datetime | None, seconds: bool = False) -> str:
    """A moment in UTC, to the minute (to the second for logs whose rows come seconds apart)."""
    return moment.strftime(f"%Y-%m-%d %H:%M{':%S' if seconds else ''} UTC") if moment else "—"


def duration(seconds: float | None) -> str:
    """Whole seconds, cut as video players cut them (a 29.6 s video plays as 0:29, not 0:30),
    so the lessons table and the player beside it agree. Rounded to the millisecond first:
    a lesson stored as 29.9999999 s is the 30 s lesson the player shows as 0:30."""
    if seconds is None:
        return "—"
    seconds = max(0, math.floor(round(seconds, 3)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st…"""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number:,}{suffix}"


def filesize(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


_SEGMENT_FIELD = re.compile(r"\bsegments\[(\d+)\](?:\.([\w\[\].]+))?")


def counted_from_one(message: str | None) -> str:
    """A renderer message as staff read it: `segments[3].video: …` names the 4th segment, as the
    chapters under the player count them ("segment 4, video: …"); the API keeps the JSON path."""

    def readable(match: re.Match) -> str:
        where = f"segment {int(match.group(1)) + 1}"
        return f"{where}, {match.group(2)}" if match.group(2) else where

    return _SEGMENT_FIELD.sub(readable, message or "")


def lesson_problem(problem: str | None) -> str:
    """What is wrong with a lesson, as its row and pages say it: a segment's problem by its segment
    ("segment 2, audio: not a readable audio file": the file may be at fault, not lesson.json), any
    other named as lesson.json's ("lesson.json: title: required")."""
    said = counted_from_one(problem)
    return said if said.startswith(("lesson.json", "segment ")) else f"lesson.json: {said}"


def init_app(app: Flask) -> None:
    app.add_template_filter(counted_from_one, "counted_from_one")
    app.add_template_filter(lesson_problem, "lesson_problem")
    app.add_template_filter(iso, "iso")
    app.add_template_filter(when, "when")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(filesize, "filesize")
    app.add_template_filter(ordinal, "ordinal")
    app.add_template_filter(plural, "plural")
    app.add_template_filter(markdown.inline, "markdown_inline")
    app.add_template_global(video_url, "video_url")
    app.add_template_global(sidecar_url, "sidecar_url")
