"""Helpers that find the renderer's encoder processes (Linux /proc)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def worker_pids(parent_pid: int) -> list[int]:
    """Encoder processes started by `parent_pid` that are still alive (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ")[-1].split()[0]
        except OSError:
            continue
        if b"webapp.render._worker" in argv and str(parent_pid).encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


requires_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
