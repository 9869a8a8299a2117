"""The keys web processes share in Redis, beside RQ's: logins logged out, requests in flight
per user, secrets shown once. On queue.py's connection; every function raises
queue.Unavailable when Redis does not answer."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from .queue import Unavailable, connection

# --- logins logged out ----------------------------------------------------------------------

_LOGIN_ENDED = "lvt:login-ended:{}"


def end_login(session_id: str, seconds: int) -> None:
    """Remember for `seconds` that this login was logged out; raises Unavailable."""
    try:
        connection().set(_LOGIN_ENDED.format(session_id), 1, ex=seconds)
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


def login_ended(session_id: str) -> bool:
    """Whether end_login was called for this login (and has not expired); raises Unavailable."""
    try:
        return bool(connection().exists(_LOGIN_ENDED.format(session_id)))
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


# --- requests in flight per user (uploads, event streams) ------------------------------------

_SLOTS = "lvt:{}-slots:{}"  # kind ("upload", "stream"), owner
# Drop slots not touched for `idle` seconds (a server that died mid-request never gave them back);
# take one if fewer than the limit are left. Atomic, so parallel requests cannot all pass.
_TAKE_SLOT = """
local key, now, idle, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - idle)
if redis.call('ZCARD', key) >= limit then return 0 end
redis.call('ZADD', key, now, ARGV[4])
redis.call('EXPIRE', key, idle)
return 1
"""


def take_slot(kind: str, owner: str, slot: str, limit: int, idle: int) -> bool:
    """Count one request of `kind` by `owner` in flight unless `limit` already are (slots not
    touched for `idle` seconds no longer count); raises Unavailable."""
    try:
        taken = connection().eval(_TAKE_SLOT, 1, _SLOTS.format(kind, owner), time.time(), idle, limit, slot)
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc
    return bool(taken)


def touch_slot(kind: str, owner: str, slot: str, idle: int) -> None:
    """The request is still going: its slot counts `idle` seconds from now; raises Unavailable."""
    try:
        key = _SLOTS.format(kind, owner)
        with connection().pipeline(transaction=True) as pipe:
            pipe.zadd(key, {slot: time.time()}, xx=True).expire(key, idle).execute()
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


def give_slot(kind: str, owner: str, slot: str) -> None:
    """The request ended (however it ended); raises Unavailable."""
    try:
        connection().zrem(_SLOTS.format(kind, owner), slot)
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


# --- secrets shown once, after a redirect -----------------------------------------------------

_REVEAL = "lvt:reveal:{}"


def keep_reveal(key: str, payload: str, seconds: int) -> None:
    """Keep `payload` for one take_reveal within `seconds`; raises Unavailable."""
    try:
        connection().set(_REVEAL.format(key), payload, ex=seconds)
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc


def take_reveal(key: str) -> str | None:
    """The payload kept under `key`, forgotten as it is read; None when gone or unknown."""
    try:
        with connection().pipeline(transaction=True) as pipe:
            value, _ = pipe.get(_REVEAL.format(key)).delete(_REVEAL.format(key)).execute()
    except RedisError as exc:
        raise Unavailable(str(exc)) from exc
    return value.decode() if value is not None else None
