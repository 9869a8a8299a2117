"""Status documents kept in Redis and pushed to subscribers: each job's newest status document
(version + JSON) is stored under one key and published on a channel of the same name, so
event streams and status polls in every web process answer from it (services/events.py).
Uses queue.py's connection; every call here tolerates Redis being away except the two a
stream needs to start (current_status, status_updates).
"""

from __future__ import annotations

import logging
import time
import uuid

from redis.exceptions import RedisError

from .queue import connection

log = logging.getLogger(__name__)

_STATUS = "lvt:status:{}"
_VERSION = "lvt:status-version:{}"
_STATUS_SECONDS = 24 * 3600  # a job nobody changed for a day is computed again on its next read


def next_status_version(job_id: uuid.UUID) -> int | None:
    """Reserve the job's next status version. Taken while the job's row is locked, so versions
    follow the order of the commits; None (logged) when Redis does not answer."""
    try:
        return connection().incr(_VERSION.format(job_id))
    except RedisError as exc:
        log.warning("status version not taken job_id=%s error=%s", job_id, exc)
        return None


# Store and announce a document unless a newer version is stored already: two writers that commit
# one after the other may publish the other way round, and the older must not stay as the last word.
# A document kept by a read has version 0 (keep_status): any writer's replaces it.
_PUBLISH_IF_NEWER = r"""
local kept = redis.call('GET', KEYS[1])
if kept and tonumber(string.match(kept, '^(%d+)')) >= tonumber(ARGV[1]) then return 0 end
local payload = ARGV[1] .. '\n' .. ARGV[2]
redis.call('SET', KEYS[1], payload, 'EX', ARGV[3])
redis.call('PUBLISH', KEYS[1], payload)
return 1
"""


def publish_status(job_id: uuid.UUID, document: str, version: int | None = None) -> int | None:
    """Store a job's new status document under `version` (else the next one) and tell its
    subscribers, unless a newer one is stored. Returns the version; None (logged) when Redis
    does not answer."""
    try:
        conn = connection()
        if version is None:
            version = conn.incr(_VERSION.format(job_id))
        conn.eval(_PUBLISH_IF_NEWER, 1, _STATUS.format(job_id), version, document, _STATUS_SECONDS)
        return version
    except RedisError as exc:
        log.warning("status not published job_id=%s error=%s", job_id, exc)
        return None


def _parse(payload: bytes | str | None) -> tuple[int, str] | None:
    if payload is None:
        return None
    text = payload.decode() if isinstance(payload, bytes) else payload
    version, _, document = text.partition("\n")
    return int(version), document


def current_status(job_id: uuid.UUID) -> tuple[int, str] | None:
    """The newest (version, document) published for a job, if any."""
    return _parse(connection().get(_STATUS.format(job_id)))


def cached_status(job_id: uuid.UUID) -> tuple[int, str] | None:
    """The newest (version, status document) kept for a job; None when there is none or Redis
    does not answer (the caller computes it: status pages keep answering without Redis)."""
    try:
        return current_status(job_id)
    except RedisError as exc:
        log.warning("status document not read job_id=%s error=%s", job_id, exc)
        return None


def forget_status(job_id: uuid.UUID) -> None:
    """Drop a deleted job's kept status document (its version stays: versions never go back)."""
    try:
        connection().delete(_STATUS.format(job_id))
    except RedisError as exc:
        log.warning("status document not dropped job_id=%s error=%s", job_id, exc)


def keep_status(job_id: uuid.UUID, document: str) -> None:
    """Keep a status document computed on a read, unless one is kept already, as version 0: a
    writer may have taken the next version before this read computed its document (without what
    the writer had not committed yet), and its document must replace this one when it publishes."""
    try:
        connection().set(_STATUS.format(job_id), f"0\n{document}", ex=_STATUS_SECONDS, nx=True)
    except RedisError as exc:
        log.warning("status document not kept job_id=%s error=%s", job_id, exc)


def status_updates(job_id: uuid.UUID, wait: float):
    """Subscribe to a job's status documents: a generator of (version, document), or None each
    time `wait` seconds pass without one. Subscribed before it returns, so nothing published
    after the call is missed."""
    pubsub = connection().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(_STATUS.format(job_id))

    def updates():
        try:
            quiet_since = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=wait)
                if message:
                    quiet_since = time.monotonic()
                    yield _parse(message["data"])
                elif time.monotonic() - quiet_since >= wait:  # not just a subscription's ack
                    quiet_since = time.monotonic()
                    yield None
        finally:
            pubsub.close()

    return updates()
