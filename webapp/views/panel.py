"""The job's status panel as htmx polls it (templates/_status.html), made once per status
version and shared by everyone polling that job in this process.

The panel differs between askers only by their CSRF token, so it is rendered with a marker in
the token's place and the asker's token is put in on the way out. It is kept while the job's
status version stays the same and for at most `SECONDS`, because some of what it shows moves
without a new version (times left, places in the queue).
"""

from __future__ import annotations

import secrets
import time
import uuid

from flask import render_template
from flask_wtf.csrf import generate_csrf

from ..models import VideoJob
from ..services import summary

SECONDS = 1.0
_MOST = 1_000  # jobs kept; past it the memory starts again
_MARKER = "csrf" + secrets.token_hex(16)  # letters and digits only: escaping leaves it as it is
_kept: dict[uuid.UUID, tuple[int, float, str]] = {}


def render(job: VideoJob, **context) -> str:
    """The panel, freshly computed."""
    return render_template("_status.html", state=summary.status(job), job=job, **context)


def polled(job_id: uuid.UUID, version: int | None, load_job) -> str:
    """The panel for a poll: the one kept for this version while fresh, else made (from
    `load_job()`) and kept. `version` None (no status version known) makes it every time."""
    kept = _kept.get(job_id)
    now = time.monotonic()
    if version is not None and kept is not None and kept[0] == version and now - kept[1] < SECONDS:
        html = kept[2]
    else:
        html = render(load_job(), csrf_token=lambda: _MARKER)
        if version is not None:
            if len(_kept) >= _MOST:
                _kept.clear()
            _kept[job_id] = (version, now, html)
    return html.replace(_MARKER, generate_csrf())
