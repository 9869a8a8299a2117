"""The segment cache: encoded pieces keyed by a hash of everything that shapes them.

Layout under the cache directory (shared by every worker, possibly over network storage):

    v1/<k[:2]>/<key>.mp4     a video piece (one closed GOP of one picture)
    v1/<k[:2]>/<key>.m4a     a lesson's audio track
    tmp/render-<id>/         one render's private working folder (deleted when it ends)

Concurrency rules, so two workers (or machines) can share it:
- Entries are immutable and published atomically: written completely elsewhere, then
  hard-linked (or copied to a temp name and renamed) into place. A reader never sees a
  partial entry; two writers of the same key write the same bytes, either wins.
- A render hard-links every entry it will use into its private folder before relying on
  it, so pruning by another worker cannot pull a piece from under it.
- LRU: using an entry bumps its mtime; pruning removes the least recently used entries until
  the total is under the bound (best effort; races only cost a re-encode). Private folders
  left by killed workers are removed once stale.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import time
from pathlib import Path

FORMAT = "v1"
STALE_PRIVATE_SECONDS = 6 * 3600
STALE_TEMP_SECONDS = 3600


class SegmentCache:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.entries = self.root / FORMAT
        self.tmp = self.root / "tmp"
        self.max_bytes = max_bytes
        self.entries.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str, suffix: str) -> Path:
        return self.entries / key[:2] / f"{key}{suffix}"

    def new_private_dir(self) -> Path:
        path = self.tmp / f"render-{_host_id()}-{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir(parents=True)
        return path

    def claim(self, key: str, suffix: str, private_dir: Path) -> Path | None:
        """If the entry exists, pin it into `private_dir` (hard link) and return that path."""
        entry = self.path_for(key, suffix)
        target = private_dir / f"{key}{suffix}"
        if target.exists():
            return target
        try:
            os.link(entry, target)
        except FileNotFoundError:
            return None
        except OSError:  # no hard links on this filesystem: use the entry directly
            if not entry.exists():
                return None
            target = entry
        with contextlib.suppress(OSError):
            os.utime(entry)  # LRU: recently used
        return target

    def read_memo(self, key: str) -> str | None:
        """A small text value stored under `key` (e.g. segment inputs -> picture hash)."""
        try:
            value = self.path_for(key, ".memo").read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value or None

    def write_memo(self, key: str, value: str) -> None:
        entry = self.path_for(key, ".memo")
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.parent / f".{entry.name}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_text(value)
            os.replace(tmp, entry)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def publish(self, src: Path, key: str, suffix: str) -> None:
        """Make the complete file `src` the entry for `key` (atomically; first writer wins)."""
        entry = self.path_for(key, suffix)
        entry.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, entry)
            return
        except FileExistsError:
            with contextlib.suppress(OSError):
                os.utime(entry)
            return
        except OSError:
            pass  # no hard links here: copy to a temp name, then rename into place
        tmp = entry.parent / f".{entry.name}.{secrets.token_hex(4)}.tmp"
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, entry)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self._scan())

    def _scan(self) -> list[tuple[float, int, Path]]:
        found = []
        try:
            shards = list(os.scandir(self.entries))
        except OSError:
            return found
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            try:
                items = list(os.scandir(shard.path))
            except OSError:
                continue
            for item in items:
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if item.name.startswith(".") and item.name.endswith(".tmp"):
                    if time.time() - st.st_mtime > STALE_TEMP_SECONDS:
                        with contextlib.suppress(OSError):
                            os.unlink(item.path)
                    continue
                found.append((st.st_mtime, st.st_size, Path(item.path)))
        return found

    def prune(self, max_bytes: int | None = None) -> int:
        """Delete least recently used entries until the cache fits; return bytes freed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries = sorted(self._scan())
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _mtime, size, path in entries:
            if total <= limit:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                freed += size
        self._remove_stale_private_dirs()
        return freed

    def _remove_stale_private_dirs(self) -> None:
        """Remove private folders of renders that are gone: at once for dead processes of
        this machine (same host and pid namespace), after 6 h of silence for any other."""
        now = time.time()
        me = f"render-{_host_id()}-"
        try:
            items = list(os.scandir(self.tmp))
        except OSError:
            return
        for item in items:
            try:
                age = now - item.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            dead = False
            if item.name.startswith(me) and age > 10:
                pid = item.name[len(me) :].split("-")[0]
                dead = pid.isdigit() and not _alive(int(pid))
            if dead or age > STALE_PRIVATE_SECONDS:
                shutil.rmtree(item.path, ignore_errors=True)


_HOST_ID: str | None = None


def _host_id() -> str:
    """This machine and pid namespace, so a pid in a folder name can be checked safely."""
    global _HOST_ID
    if _HOST_ID is None:
        host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
        try:
            ns = os.stat("/proc/self/ns/pid").st_ino
        except OSError:
            ns = 0
        _HOST_ID = f"{host}_{ns}" if ns else f"{host}_x{secrets.token_hex(3)}"
    return _HOST_ID


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True
