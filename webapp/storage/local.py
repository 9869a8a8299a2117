"""The local disk: LESSONS_ROOT holds ``lessons/…`` and VIDEOS_ROOT ``videos/…`` (the default)."""

from __future__ import annotations

import contextlib
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .base import (
    AREAS,
    CHUNK,
    KeyRefused,
    ObjectInfo,
    ObjectMissing,
    Progress,
    RangeRefused,
    Store,
    StoreError,
    check_key,
    check_prefix,
    copy_stream,
    crc32_of,
    temporary_key,
    utc,
)


class _Window(io.RawIOBase):
    """Reads at most `length` bytes of an open file from where it stands."""

    def __init__(self, fh: BinaryIO, length: int):
        self._fh, self._left = fh, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: self._left]
        count = self._fh.readinto(view)
        self._left -= count
        return count

    def close(self) -> None:
        self._fh.close()
        super().close()


def confined(root: Path | str, area: str, relative: str, what: str = "key") -> Path:
    """root/relative, refusing a key part that leaves `root` ("..", absolute, NUL, empty, or a
    symbolic link leading out) or names `root` itself."""
    try:
        check_key(f"{area}/{relative}")
    except KeyRefused:
        raise KeyRefused(f"{what} {relative!r} leaves its folder") from None
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise KeyRefused(f"{what} {relative!r} leaves its folder")
    return target


class LocalStore(Store):
    def __init__(self, lessons_root: Path | str, videos_root: Path | str):
        self.roots = {"lessons": Path(lessons_root), "videos": Path(videos_root)}

    def __repr__(self) -> str:
        return f"LocalStore(lessons={self.roots['lessons']}, videos={self.roots['videos']})"

    def _resolve(self, area: str, relative: str, what: str) -> Path:
        return confined(self.roots[area], area, relative, what)

    def path(self, key: str) -> Path:
        """The file of a key, refusing one that leaves its root (symbolic links included)."""
        area, relative = check_key(key).split("/", 1)
        return self._resolve(area, relative, "key")

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def _info(self, key: str, path: Path) -> ObjectInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}", utc(st.st_mtime))

    def stat(self, key: str) -> ObjectInfo | None:
        return self._info(key, self.path(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        area, _, rest = check_prefix(prefix).partition("/")
        root = self.roots[area].resolve()
        folder = rest.rsplit("/", 1)[0] if "/" in rest else ""
        start = self._resolve(area, folder, "prefix") if folder else root
        found = []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                path = Path(dirpath) / name
                key = f"{area}/{path.relative_to(root).as_posix()}"
                if key.startswith(prefix):
                    found.append((key, path))
        for key, path in sorted(found):
            info = self._info(key, path)
            if info is not None:
                yield info

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        path = self.path(key)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectMissing(f"no object at {key!r}") from exc
        if start == 0 and end is None:
            return fh
        size = os.fstat(fh.fileno()).st_size
        if start < 0 or start >= size or (end is not None and end < start):
            fh.close()
            raise RangeRefused(f"bytes {start}-{end} are not in {key!r} ({size} bytes)")
        fh.seek(start)
        last = size - 1 if end is None else min(end, size - 1)
        return io.BufferedReader(_Window(fh, last - start + 1), CHUNK)

    def download(self, key: str, dest: Path) -> ObjectInfo:
        info = self.stat(key)
        if info is None:
            raise ObjectMissing(f"no object at {key!r}")
        with self.open(key) as reader:
            copy_stream(reader, Path(dest))
        return info

    def upload(self, source: Path, key: str, progress: Progress | None = None) -> ObjectInfo:
        target = self.path(key)
        temporary = self.path(temporary_key(key))
        temporary.parent.mkdir(parents=True, exist_ok=True)
        size, crc = Path(source).stat().st_size, crc32_of(Path(source))
        try:
            written = 0
            with open(source, "rb") as src, open(temporary, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    written = zlib.crc32(chunk, written)
                    if progress:
                        progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            stored = temporary.stat().st_size
            if stored != size or written != crc:
                raise StoreError(f"{key!r}: the file changed while it was stored; the upload was not kept")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return self.stat(key)

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        removed = super().delete_prefix(prefix)
        area, _, rest = prefix.partition("/")
        folder = rest.rsplit("/", 1)[0] if "/" in rest else ""
        if folder and area in AREAS:
            top = self._resolve(area, folder, "prefix")
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
                if Path(dirpath) != top or rest.endswith("/"):
                    with contextlib.suppress(OSError):
                        Path(dirpath).rmdir()  # only empty folders go
        return removed
