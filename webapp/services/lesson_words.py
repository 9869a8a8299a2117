"""A lesson's words edited in the browser: its title, each segment's title, text and captions,
and the captions' language (a typo in a caption fixed, captions added to a segment, without
downloading lesson.json). They are written back into lesson.json through the same checked,
locked swap as any file of the lesson (lesson_files.rewrite_manifest): a lesson that works is
never left broken, and nothing changes while the lesson renders.

Only what was edited changes: every other key of lesson.json and every word left as it was stay
as they were (the file is written again as indented UTF-8 JSON). An emptied segment title, text
or caption takes its key out; an emptied cue is taken out of its segment's cues. The page
carries the version of lesson.json it was made from (a hash of its bytes): a save over a
lesson.json that changed since is refused (409) and the page shows the words as they were typed,
so nothing typed is lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..models import Lesson, VideoJob
from ..render.limits import MAX_TEXT_CHARS
from . import lesson_files
from .packages import PackageError

MAX_SEGMENTS = 300  # a longer lesson is edited as a file (the form would be thousands of fields)
MAX_CUES = 2000
MAX_FIELDS = 8 + 3 * MAX_SEGMENTS + MAX_CUES  # parts a save may send (bodies.FORM_ENDPOINTS)
AS_A_FILE = "mend it as a file on the lesson's files page (download it, edit it, replace it)."
STALE = (
    "lesson.json changed since this page was opened (saved from another page, or replaced), so "
    "nothing was saved. Your words are below as you typed them: copy what you need, then open the "
    "page again to edit the lesson as it is now."
)


@dataclass(frozen=True)
class Cue:
    name: str  # its form field: "s2-cue0"
    start: float | None
    end: float | None
    text: str


@dataclass(frozen=True)
class Segment:
    number: int  # counted from 1, as the page says it
    title: str
    text: str
    caption: str | None  # its "caption" text; None when it has cues instead
    cues: tuple[Cue, ...]
    shows: str | None  # the picture or clip it shows, to tell segments apart
    seconds: float | None  # its "duration", when lesson.json gives one


@dataclass(frozen=True)
class Words:
    version: str  # of the lesson.json they were read from
    title: str
    language: str
    burn_in: bool
    segments: tuple[Segment, ...]


def version_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def read(lesson: Lesson, lessons_root: Path) -> Words:
    """The lesson's words as lesson.json has them now. Raises PackageError when lesson.json cannot
    be read as a lesson (it is then mended as a file)."""
    if lesson.missing:
        raise PackageError(409, "The lesson folder is gone: upload the lesson again from the job page.")
    raw = lesson_files.manifest_bytes(lesson, lessons_root)
    manifest = _parsed(raw)
    segments = manifest["segments"]
    settings = manifest.get("captions") if isinstance(manifest.get("captions"), dict) else {}
    return Words(
        version=version_of(raw),
        title=_text(manifest.get("title")),
        language=_text(settings.get("language")),
        burn_in=settings.get("burnIn") is True,
        segments=tuple(_segment(number, seg) for number, seg in enumerate(segments, start=1)),
    )


def _parsed(raw: bytes | None) -> dict:
    """lesson.json as an object with a list of segment objects, within what this page edits."""
    if raw is None:
        raise PackageError(409, "The lesson has no lesson.json that can be read; add one on its files page.")
    try:
        manifest = json.loads(raw.decode("utf-8-sig"))
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise PackageError(
            409, "lesson.json is not a JSON object; mend it as a file on the lesson's files page."
        )
    segments = manifest.get("segments")
    if not isinstance(segments, list) or not all(isinstance(seg, dict) for seg in segments):
        raise PackageError(
            409, "lesson.json has no list of segments; mend it as a file on the lesson's files page."
        )
    cues = sum(len(seg["captions"]) for seg in segments if isinstance(seg.get("captions"), list))
    if len(segments) > MAX_SEGMENTS or cues > MAX_CUES:
        raise PackageError(
            409,
            f"This lesson is too long to edit here (at most {MAX_SEGMENTS} segments and {MAX_CUES} "
            "caption cues): download lesson.json from its files page, edit it and replace it.",
        )
    return manifest


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _segment(number: int, seg: dict) -> Segment:
    cues = seg.get("captions") if isinstance(seg.get("captions"), list) else None
    shown = [
        Cue(f"s{number}-cue{j}", _seconds(cue.get("start")), _seconds(cue.get("end")), _text(cue.get("text")))
        for j, cue in enumerate(cues or [])
        if isinstance(cue, dict)
    ]
    shows = next((seg[key] for key in ("image", "video") if isinstance(seg.get(key), str)), None)
    return Segment(
        number=number,
        title=_text(seg.get("title")),
        text=_text(seg.get("text")),
        caption=None if cues is not None else _text(seg.get("caption")),
        cues=tuple(shown),
        shows=shows,
        seconds=_seconds(seg.get("duration")),
    )


def _seconds(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def save(
    job: VideoJob, lesson: Lesson, lessons_root: Path, form: Mapping[str, str]
) -> lesson_files.Changed | None:
    """Write the words in `form` (the page's fields) into lesson.json; None when none changed.
    Raises PackageError (nothing changed): lesson.json changed since `form["version"]` (409), a
    field over its limit or the lesson left without a title (422), or the lesson's own check."""

    def edit(raw: bytes | None) -> bytes | None:
        manifest = _parsed(raw)
        if form.get("version") != version_of(raw):
            raise PackageError(409, STALE)
        if not _apply(manifest, form):
            return None
        return (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()

    return lesson_files.rewrite_manifest(job, lesson, lessons_root, edit)


def _typed(form: Mapping[str, str], name: str, where: str) -> str | None:
    """A field as typed (browsers send CRLF line ends), None when the form does not have it."""
    value = form.get(name)
    if value is None:
        return None
    value = _lines(value)
    if len(value) > MAX_TEXT_CHARS:
        raise PackageError(
            422, f"{where} has {len(value):,} characters; at most {MAX_TEXT_CHARS:,}.", field=name
        )
    return value


def _lines(text: str) -> str:
    """Text with LF line ends and no blank edges: a field as sent and as lesson.json has it compare
    equal when nobody edited it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _put(holder: dict, key: str, typed: str | None) -> bool:
    """Set holder[key] to what was typed (an empty field takes the key out); whether it changed."""
    if typed is None or typed == _lines(_text(holder.get(key))):
        return False
    if typed:
        holder[key] = typed
    else:
        holder.pop(key, None)
    return True


def _apply(manifest: dict, form: Mapping[str, str]) -> bool:
    """The form's words put into `manifest`; whether anything changed."""
    title = _typed(form, "title", "The lesson's title")
    if title == "":
        raise PackageError(422, "The lesson needs a title.", field="title")
    changed = _put(manifest, "title", title)
    changed |= _apply_settings(manifest, form)
    for number, seg in enumerate(manifest["segments"], start=1):
        where = f"Segment {number}'s"
        changed |= _put(seg, "title", _typed(form, f"s{number}-title", f"{where} title"))
        changed |= _put(seg, "text", _typed(form, f"s{number}-text", f"{where} text"))
        cues = seg.get("captions")
        if isinstance(cues, list):
            changed |= _apply_cues(seg, cues, number, form)
        else:
            changed |= _put(seg, "caption", _typed(form, f"s{number}-caption", f"{where} caption"))
    return changed


def _apply_settings(manifest: dict, form: Mapping[str, str]) -> bool:
    """The captions' language and burn-in, when the form has them; a lesson without a `captions`
    object gets one only when either is set."""
    language = _typed(form, "language", "The captions' language")
    if language is None:
        return False
    burn_in = form.get("burn_in") is not None
    settings = manifest.get("captions")
    if not isinstance(settings, dict):
        if not language and not burn_in:
            return False
        settings = manifest["captions"] = {}
    changed = _put(settings, "language", language)
    if burn_in != (settings.get("burnIn") is True):
        settings["burnIn"] = burn_in
        changed = True
    return changed


def _apply_cues(seg: dict, cues: list, number: int, form: Mapping[str, str]) -> bool:
    changed, kept = False, []
    for j, cue in enumerate(cues):
        typed = _typed(form, f"s{number}-cue{j}", f"Segment {number}'s caption {j + 1}")
        if isinstance(cue, dict) and _put(cue, "text", typed):
            changed = True
            if "text" not in cue:  # emptied: the cue goes
                continue
        kept.append(cue)
    if kept:
        seg["captions"] = kept
    else:
        seg.pop("captions")
    return changed
