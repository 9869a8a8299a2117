"""A lesson's words edited in the browser: its title, each segment's title, text and captions,
and the captions' language and burn-in (a typo in a caption fixed, captions added to a segment,
without downloading lesson.json). They are written back into lesson.json through the same
checked, locked swap as any file of the lesson (lesson_files.rewrite_manifest): a lesson that
works is never left broken, and nothing changes while the lesson renders.

Only what was edited is written. The page carries a digest of each field as it showed it (as a
browser sends an untouched field back: line ends, a one-line field's line breaks, characters no
page can hold) and the lesson's shape (its segments, their pictures and cues). A field whose
digest is unchanged was not edited and is left as lesson.json has it now, so a save merges
into changes made meanwhile elsewhere in lesson.json. A field changed both here and meanwhile
is refused (409, the fields named) and the page comes back with lesson.json as it is now and
these edits filled in, to save again over the other change if meant. A lesson whose segments
changed meanwhile is refused (its fields no longer name the same things) and the edits are shown
as text to copy. Nothing typed is lost. An emptied segment title, text or caption takes its key
out; an emptied cue is taken out of its segment's cues. lesson.json is written as indented JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..models import Lesson, VideoJob
from ..render.errors import ManifestError
from ..render.lesson_json import parse_json
from ..render.limits import MAX_MANIFEST_BYTES, MAX_SEGMENT_SECONDS, MAX_TEXT_CHARS
from . import lesson_files
from .packages import PackageError
from .word_fields import EDITABLE, field_of, label, segment_of

MAX_SEGMENTS = 300  # a longer lesson is edited as a file (the form would be thousands of fields)
MAX_CUES = 2000
MAX_FIELDS = 8 + 3 * MAX_SEGMENTS + MAX_CUES  # parts a save may send (bodies.LARGE_FORMS)
AS_A_FILE = "mend it as a file, on a computer: download it from the lesson's files page, fix it, replace it."
ONE_LINE = {"title", "language"}  # <input>s: a browser drops line breaks from their values
_SURROGATE = re.compile("[\ud800-\udfff]")


class WordsRefused(PackageError):
    """A save refused for the words themselves: `fields` (form names) are marked on the page;
    with `keep`, the page shows lesson.json as it is now with these edits filled in, else it
    lists them as text to copy."""

    def __init__(self, status: int, message: str, fields: tuple[str, ...] = (), keep: bool = True):
        super().__init__(status, message)
        self.fields, self.keep = fields, keep


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
    shape: str  # of the lesson.json they were read from
    originals: str  # {field: digest of it as shown}, as JSON
    title: str
    language: str
    burn_in: bool
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Saved:
    changed: lesson_files.Changed | None  # None: nothing to write
    fields: tuple[str, ...]  # the fields written, in the page's order
    merged: bool  # lesson.json had changed meanwhile elsewhere; those changes were kept

    @property
    def first_segment(self) -> int | None:
        """The first segment a written field belongs to (the page returns there)."""
        return next((n for n in map(segment_of, self.fields) if n is not None), None)


def read(lesson: Lesson, lessons_root) -> Words:
    """The lesson's words as lesson.json has them now, as the page shows them. Raises
    PackageError when lesson.json cannot be read as a lesson (it is then mended as a file)."""
    if lesson.missing:
        raise PackageError(409, "The lesson folder is gone: upload the lesson again from the job page.")
    manifest = _parsed(lesson_files.manifest_bytes(lesson, lessons_root))
    fields = _fields(manifest)
    settings = manifest.get("captions") if isinstance(manifest.get("captions"), dict) else {}
    return Words(
        shape=_shape(manifest),
        originals=json.dumps({name: _digest(_as_sent(name, v)) for name, v in fields.items()}),
        title=_shown(_text(manifest.get("title"))),
        language=_shown(_text(settings.get("language"))),
        burn_in=settings.get("burnIn") is True,
        segments=tuple(_segment(n, seg) for n, seg in enumerate(manifest["segments"], start=1)),
    )


def _parsed(raw: bytes | None) -> dict:
    """lesson.json as an object with a list of segment objects, within what this page edits."""
    if raw is None:
        raise PackageError(409, "The lesson has no lesson.json that can be read; add one on its files page.")
    try:
        manifest = parse_json(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ManifestError) as exc:
        reason = exc.message if isinstance(exc, ManifestError) else "lesson.json is not UTF-8 text"
        raise PackageError(409, f"{reason}; {AS_A_FILE}") from None
    segments = manifest.get("segments")
    if not isinstance(segments, list) or not all(isinstance(seg, dict) for seg in segments):
        raise PackageError(409, f"lesson.json has no list of segments; {AS_A_FILE}")
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


def _shown(text: str) -> str:
    """Text as a page can hold it: a lone surrogate (no character at all) and NUL as U+FFFD."""
    return _SURROGATE.sub("\ufffd", text).replace("\x00", "\ufffd")


def _lines(text: str) -> str:
    """LF line ends and no blank edges."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _as_sent(name: str, text: str) -> str:
    """`text` shown in field `name` as a browser sends it back untouched (line ends as _lines)."""
    text = _lines(_shown(text))
    return text.replace("\n", "").strip() if name in ONE_LINE else text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _fields(manifest: dict) -> dict[str, str]:
    """Every field of the page: its form name and its text in lesson.json."""
    settings = manifest.get("captions") if isinstance(manifest.get("captions"), dict) else {}
    fields = {
        "title": _text(manifest.get("title")),
        "language": _text(settings.get("language")),
        "burn_in": "on" if settings.get("burnIn") is True else "",
    }
    for n, seg in enumerate(manifest["segments"], start=1):
        fields[f"s{n}-title"], fields[f"s{n}-text"] = _text(seg.get("title")), _text(seg.get("text"))
        cues = seg.get("captions")
        if isinstance(cues, list):
            fields.update(
                {f"s{n}-cue{j}": _text(c.get("text")) for j, c in enumerate(cues) if isinstance(c, dict)}
            )
        else:
            fields[f"s{n}-caption"] = _text(seg.get("caption"))
    return fields


def _shape(manifest: dict) -> str:
    """What the fields' names point at: the segments, what each shows, how many cues it has."""
    shape = [
        [seg.get(key) if isinstance(seg.get(key), str) else None for key in ("image", "video")]
        + [len(seg["captions"]) if isinstance(seg.get("captions"), list) else None]
        for seg in manifest["segments"]
    ]
    return _digest(json.dumps(shape))


def _segment(number: int, seg: dict) -> Segment:
    cues = seg.get("captions") if isinstance(seg.get("captions"), list) else None
    shown = [
        Cue(
            f"s{number}-cue{j}",
            _seconds(c.get("start")),
            _seconds(c.get("end")),
            _shown(_text(c.get("text"))),
        )
        for j, c in enumerate(cues or [])
        if isinstance(c, dict)
    ]
    shows = next((seg[key] for key in ("image", "video") if isinstance(seg.get(key), str)), None)
    return Segment(
        number=number,
        title=_shown(_text(seg.get("title"))),
        text=_shown(_text(seg.get("text"))),
        caption=None if cues is not None else _shown(_text(seg.get("caption"))),
        cues=tuple(shown),
        shows=_shown(shows) if shows is not None else None,
        seconds=_seconds(seg.get("duration")),
    )


def _seconds(value) -> float | None:
    """A time lesson.json gives, when it is one a lesson can have (the lesson's check says the rest)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and abs(seconds) <= MAX_SEGMENT_SECONDS else None


def _originals(form: Mapping[str, str]) -> dict:
    """{field: digest} of the fields as the page showed them ({} when the form lacks them)."""
    try:
        originals = json.loads(form.get("originals") or "{}")
    except ValueError:
        return {}
    return originals if isinstance(originals, dict) else {}


def edits(form: Mapping[str, str], check: bool = True) -> dict[str, str]:
    """The fields the form sends changed from how the page showed them: {name: text}, with LF
    line ends and no blank edges. Raises WordsRefused (422) for one over its limit (`check`)."""
    originals = _originals(form)
    sent = {name: form.get(name) or "" for name in form if EDITABLE.match(name)}
    if "language" in sent:  # the lesson's settings were on the page: an unticked box is not sent
        sent["burn_in"] = "on" if sent.get("burn_in") else ""
    changed = {}
    for name, value in sent.items():
        typed = _lines(value).replace("\n", "").strip() if name in ONE_LINE else _lines(value)
        if originals.get(name) == _digest(typed):
            continue
        if check and len(typed) > MAX_TEXT_CHARS:
            raise WordsRefused(
                422, f"{label(name)} has {len(typed):,} characters; at most {MAX_TEXT_CHARS:,}.", (name,)
            )
        changed[name] = typed
    return changed


@dataclass(frozen=True)
class AfterRefusal:
    """What the page shows after a refused save, beside lesson.json as it is now."""

    typed: dict[str, str]  # the edits, filled in over the fields they were made in
    to_copy: list[tuple[str, str]]  # or, when the segments changed meanwhile, listed: (label, text)
    marked: frozenset[str]  # the fields at fault


def after_refusal(refusal: PackageError | None, form: Mapping[str, str]) -> AfterRefusal:
    if refusal is None:  # the page as lesson.json has it
        return AfterRefusal({}, [], frozenset())
    edited = edits(form, check=False)
    marked = frozenset(getattr(refusal, "fields", ())) or frozenset({field_of(refusal.message)} - {None})
    if getattr(refusal, "keep", True):
        return AfterRefusal(edited, [], marked)
    return AfterRefusal({}, [(label(name), text) for name, text in edited.items()], marked)


def save(job: VideoJob, lesson: Lesson, lessons_root, form: Mapping[str, str]) -> Saved:
    """Write the words edited in `form` (the page's fields) into lesson.json as it is now.
    Raises PackageError (nothing changed): WordsRefused for the words (422: over a limit or no
    title; 409: changed meanwhile too), or the lesson's own check."""
    changes = edits(form)
    if not changes:
        return Saved(None, (), False)
    if changes.get("title") == "":
        raise WordsRefused(422, "The lesson needs a title.", ("title",))
    originals = _originals(form)
    outcome = Saved(None, (), False)

    def edit(raw: bytes | None) -> bytes | None:
        nonlocal outcome
        manifest = _parsed(raw)
        if form.get("shape") != _shape(manifest):
            raise WordsRefused(409, RESHAPED, tuple(changes), keep=False)
        current = _fields(manifest)
        meanwhile = {n for n, v in current.items() if originals.get(n) not in (None, _digest(_as_sent(n, v)))}
        clash = tuple(n for n in changes if n in meanwhile and _as_sent(n, current[n]) != changes[n])
        if clash:
            raise WordsRefused(409, CLASH.format(", ".join(label(n) for n in clash)), clash)
        written = _apply(manifest, changes)
        outcome = Saved(None, written, bool(written) and bool(meanwhile - set(changes)))
        new = _dumped(manifest) if written else None
        if new is not None and len(new) > MAX_MANIFEST_BYTES:  # written as JSON escapes, words grow
            raise WordsRefused(
                422,
                f"With these words lesson.json would be larger than {MAX_MANIFEST_BYTES // 2**20} MB.",
                written,
            )
        return new

    changed = lesson_files.rewrite_manifest(job, lesson, lessons_root, edit)
    return Saved(changed, outcome.fields, outcome.merged)


RESHAPED = (
    "The lesson's segments changed since this page was opened (one added, taken out or moved, a "
    "picture or the captions' cues changed), so nothing was saved. The page now shows the lesson as "
    "it is; your edits are listed above it to copy in again."
)
CLASH = (
    "{} changed meanwhile here and elsewhere (saved from another page, or lesson.json replaced), so "
    "nothing was saved. The page now shows lesson.json as it is, with your edits filled in (marked): "
    "Save again to keep yours."
)


def _dumped(manifest: dict) -> bytes:
    # A lone surrogate lesson.json had in a key the page leaves alone stays the escape it was.
    return (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8", "backslashreplace")


def _put(holder: dict, key: str, typed: str) -> bool:
    """Set holder[key] to what was typed (an empty field takes the key out); whether it changed."""
    if typed == _lines(_text(holder.get(key))):
        return False
    if typed:
        holder[key] = typed
    else:
        holder.pop(key, None)
    return True


def _apply(manifest: dict, changes: dict[str, str]) -> tuple[str, ...]:
    """The edits put into `manifest`; the fields that changed it."""
    written = []

    def put(holder: dict, key: str, name: str) -> None:
        if name in changes and _put(holder, key, changes[name]):
            written.append(name)

    put(manifest, "title", "title")
    _apply_settings(manifest, changes, written)
    for n, seg in enumerate(manifest["segments"], start=1):
        put(seg, "title", f"s{n}-title")
        put(seg, "text", f"s{n}-text")
        cues = seg.get("captions")
        if not isinstance(cues, list):
            put(seg, "caption", f"s{n}-caption")
            continue
        for j, cue in enumerate(cues):
            if isinstance(cue, dict):
                put(cue, "text", f"s{n}-cue{j}")
        kept = [
            c for j, c in enumerate(cues) if not (isinstance(c, dict) and changes.get(f"s{n}-cue{j}") == "")
        ]
        if len(kept) != len(cues):  # emptied cues go; with none left, the key (an empty list is no lesson)
            seg["captions"] = kept
            if not kept:
                seg.pop("captions")
    return tuple(written)


def _apply_settings(manifest: dict, changes: dict[str, str], written: list) -> None:
    """The captions' language and burn-in; a lesson without a `captions` object gets one only
    when either is set."""
    if "language" not in changes and "burn_in" not in changes:
        return
    settings = manifest.get("captions")
    if not isinstance(settings, dict):
        if not changes.get("language") and not changes.get("burn_in"):
            return
        settings = manifest["captions"] = {}
    if "language" in changes and _put(settings, "language", changes["language"]):
        written.append("language")
    if "burn_in" in changes and (changes["burn_in"] == "on") != (settings.get("burnIn") is True):
        settings["burnIn"] = changes["burn_in"] == "on"
        written.append("burn_in")
