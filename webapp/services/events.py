"""Push: every committed change of a job's status document is published to Redis (pub/sub),
with a per-job increasing version, for the server-sent events stream to forward.

The document is computed just before the commit, inside the transaction, so it shows exactly
what is being committed; it is published just after. Writers are the web process and the
workers alike (state changes, progress); readers never poll the database. The status endpoint
serves the same kept document (`cached_document`), so a poll costs a Redis read, not the
queries that build the document.
"""

from __future__ import annotations

import json
import logging
import uuid

import sqlalchemy as sa

from .. import status_channel
from ..extensions import db
from ..models import VideoJob
from . import summary

log = logging.getLogger(__name__)

_READY = "lvt_status_documents"


def document(job: VideoJob) -> str:
    """The job's status document, as the status endpoint's JSON."""
    return json.dumps(summary.status(job).as_json(), separators=(",", ":"))


def kept_document(job_id: uuid.UUID) -> tuple[int, str] | None:
    """The job's status document as last published, with its version; None when none is kept
    or Redis does not answer."""
    return status_channel.cached_status(job_id)


def cached_document(job: VideoJob) -> str:
    """The job's status document as last published; computed (and kept) when none is kept."""
    kept = status_channel.cached_status(job.id)
    text = kept[1] if kept else None
    if text is None:
        text = document(job)
        status_channel.keep_status(job.id, text)
    return text


@sa.event.listens_for(db.session, "before_commit")
def _prepare(session) -> None:
    changed = session.info.pop(summary.CHANGED, None)
    if not changed:
        return
    ready = session.info.setdefault(_READY, {})
    for job_id in changed:
        job = session.get(VideoJob, job_id)
        if job is not None:  # the version is taken under the job's lock: in commit order
            ready[job_id] = (document(job), status_channel.next_status_version(job_id))


@sa.event.listens_for(db.session, "after_commit")
def _publish(session) -> None:
    for job_id, (text, version) in session.info.pop(_READY, {}).items():
        if version is not None:
            status_channel.publish_status(job_id, text, version)


@sa.event.listens_for(db.session, "after_rollback")
def _forget(session) -> None:
    session.info.pop(summary.CHANGED, None)
    session.info.pop(_READY, None)
