"""The job's status panel as htmx polls it (templates/_status.html), made once per status
version and shared by everyone polling that job in this process.

The panel differs between askers only by their CSRF token, so it is rendered with a marker in
the token's place and the asker's token is put in on the way out. It is kept while the job's
status version stays the same and for at most `SECONDS`, because some of what it shows moves
without a new version (times left, places in the queue).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

from flask import current_app, render_template
from flask_wtf.csrf import generate_csrf

from ..models import VideoJob
from ..services import summary

SECONDS = 1.0
_MOST = 1_000  # jobs kept; past it the memory starts again
_MARKER = "csrf" + secrets.token_hex(16)  # letters and digits only: escaping leaves it as it is


class _Panels:
    """This app's kept panels: per job (version, made at, html), and the lock of whoever makes one."""

    def __init__(self):
        self.kept: dict[uuid.UUID, tuple[int, float, str]] = {}
        self.locks: dict[uuid.UUID, threading.Lock] = {}


def _panels() -> _Panels:
    panels = current_app.extensions.get("lvt_panels")
    if panels is None:
        panels = current_app.extensions.setdefault("lvt_panels", _Panels())
    return panels


def render(job: VideoJob, **context) -> str:
    """The panel, freshly computed."""
    return render_template("_status.html", state=summary.status(job), job=job, **context)


def polled(job_id: uuid.UUID, version: int | None, load_job) -> str:
    """The panel for a poll: the one kept for this version while fresh, else made (from
    `load_job()`) and kept. `version` None (no status version known) makes it every time.

    One request makes it at a time (per job and process); polls arriving meanwhile wait for it, or
    get the panel kept for the same version if it only aged out, instead of all making it at
    once (under gevent a query lets every waiting poll in: 200 rendering one panel is a stampede)."""
    if version is None:
        return _with_token(render(load_job(), csrf_token=lambda: _MARKER))
    panels = _panels()
    kept = panels.kept.get(job_id)
    if _fresh(kept, version):
        return _with_token(kept[2])
    lock = panels.locks.setdefault(job_id, threading.Lock())
    # Only a panel of this very version that merely aged out is served while another poll makes
    # the new one: an older version would leave the page behind (its last poll must show the last
    # change, as nothing may poll after it).
    if not lock.acquire(blocking=kept is None or kept[0] != version):
        return _with_token(kept[2])
    try:
        kept = panels.kept.get(job_id)
        if not _fresh(kept, version):  # not made by the poll this one waited for
            if len(panels.kept) >= _MOST:
                panels.kept.clear()
                panels.locks.clear()
            html = render(load_job(), csrf_token=lambda: _MARKER, status_version=version)
            kept = panels.kept[job_id] = (version, time.monotonic(), html)
    finally:
        lock.release()
    return _with_token(kept[2])


def _fresh(kept: tuple[int, float, str] | None, version: int) -> bool:
    return kept is not None and kept[0] == version and time.monotonic() - kept[1] < SECONDS


def _with_token(html: str) -> str:
    return html.replace(_MARKER, generate_csrf())
