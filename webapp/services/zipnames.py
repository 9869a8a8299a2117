"""The names in a zip archive as the archiver that wrote them meant them.

The zip format names files in code page 437 unless an entry says UTF-8 (flag bit 11), and
zipfile reads them so. Archivers do otherwise:

- macOS's Archive Utility, Linux tools and many others write UTF-8 without the flag: a name
  that is valid UTF-8 is read as UTF-8 (a legacy name with letters beyond ASCII almost never is).
- 7-Zip, WinRAR, WinZip and Bandizip may add the UTF-8 name in an "Info-ZIP Unicode Path" extra
  field (0x7075) beside a legacy one: it is used when it belongs to that legacy name (its CRC).
- Windows' own "Compressed folder" writes the code page of the system's language (874 on a Thai
  Windows) and says nothing: the code page is guessed from the package's own lesson.json files,
  the one under which the most of those names are names that a lesson.json mentions. Without
  any such evidence the names stay as the format's default reads them.
"""

from __future__ import annotations

import json
import struct
import unicodedata
import zipfile
import zlib

from webapp.render.limits import MAX_MANIFEST_BYTES

_UTF8_FLAG = 0x800
_UNICODE_PATH = 0x7075
# Windows' OEM code pages, the language of this product's courses first; a tie goes to the first.
_LEGACY = (
    "cp874", "cp850", "cp437", "cp852", "cp866", "cp737", "cp775", "cp857", "cp862", "cp864",
    "cp869", "cp932", "cp936", "cp949", "cp950", "cp1258",
)  # fmt: skip
_MANIFESTS_READ = 50  # lesson.json files read for evidence, at most


def fix_names(archive: zipfile.ZipFile) -> None:
    """Give each member of `archive` the name its archiver meant (`ZipInfo.filename`; reading a
    member checks `orig_filename`, which stays). Call after the archive's sizes were checked."""
    guessed = []
    for info in archive.infolist():
        if info.flag_bits & _UTF8_FLAG:
            continue
        raw = info.orig_filename.encode("cp437")  # the bytes as written: cp437 maps every byte
        name = _unicode_path(info, raw) or _utf8(raw)
        if name is not None:
            info.filename = name
        elif not raw.isascii():
            guessed.append((info, raw))
    if guessed:
        encoding = _code_page([raw for _, raw in guessed], _mentioned(archive))
        for info, raw in guessed:
            info.filename = raw.decode(encoding, errors="replace")


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _unicode_path(info: zipfile.ZipInfo, raw: bytes) -> str | None:
    """The UTF-8 name of an Info-ZIP Unicode Path extra field made for this very legacy name."""
    extra, at = info.extra, 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        data = extra[at + 4 : at + 4 + size]
        at += 4 + size
        ours = kind == _UNICODE_PATH and len(data) > 5 and data[0] == 1
        if ours and struct.unpack_from("<I", data, 1)[0] == zlib.crc32(raw):  # made for this name
            return _utf8(data[5:])
    return None


def _mentioned(archive: zipfile.ZipFile) -> set[str]:
    """The file names (last parts, NFC) that the package's lesson.json files mention."""
    names: set[str] = set()
    manifests = [
        info for info in archive.infolist() if info.orig_filename.rsplit("/", 1)[-1] == "lesson.json"
    ]
    for info in manifests[:_MANIFESTS_READ]:
        if info.file_size > MAX_MANIFEST_BYTES or info.flag_bits & 0x1:
            continue
        try:
            with archive.open(info) as member:
                names.update(_strings(json.loads(member.read(MAX_MANIFEST_BYTES + 1))))
        except (
            ValueError,
            RecursionError,
            zipfile.BadZipFile,
            NotImplementedError,
            RuntimeError,
            OSError,
            EOFError,
        ):
            continue  # a broken lesson.json is reported when the lesson is checked
    return {unicodedata.normalize("NFC", s.replace("\\", "/").rsplit("/", 1)[-1]) for s in names}


def _strings(document) -> set[str]:
    """Every string in a parsed JSON document (walked without recursion: any depth)."""
    found, todo = set(), [document]
    while todo:
        value = todo.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
    return found


def _code_page(raws: list[bytes], mentioned: set[str]) -> str:
    """The legacy code page under which the most of `raws` are mentioned; cp437 for none."""
    best, best_score = "cp437", 0
    for encoding in _LEGACY:
        score = 0
        for raw in raws:
            try:
                last = raw.decode(encoding).rsplit("/", 1)[-1]
            except UnicodeDecodeError:
                continue
            score += unicodedata.normalize("NFC", last) in mentioned
        if score > best_score:
            best, best_score = encoding, score
    return best
