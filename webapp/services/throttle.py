"""The failed-login limit: every password check is counted before it runs, atomically.

Counting up front (an atomic INCR in Redis, through the `limits` package) means that
parallel attempts cannot all pass a check made before any of them was counted; a
successful login gives its count back, so only failures use up the allowance.
Limits are per account and address together, e.g. "5 per minute; 30 per hour".
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

from .. import queue

log = logging.getLogger(__name__)

NAMESPACE = "login"


class Throttled(Exception):
    """Too many failed attempts; `retry_after` is how many seconds to wait."""

    message = "Too many failed attempts for this account from your address. Wait a minute and try again."

    def __init__(self, retry_after: int):
        super().__init__(self.message)
        self.retry_after = retry_after


class LoginThrottle:
    """Fixed windows in Redis, one counter per limit and per (address, account)."""

    def __init__(self, storage_uri: str, limits_text: str):
        self.items: list[RateLimitItem] = parse_many(limits_text)
        self.storage = storage_from_string(storage_uri, socket_connect_timeout=2, socket_timeout=2)
        self.strategy = FixedWindowRateLimiter(self.storage)

    def acquire(self, key: str) -> None:
        """Count one attempt; Throttled (and nothing counted) when a limit is used up."""
        taken: list[RateLimitItem] = []
        try:
            for item in self.items:
                if not self.strategy.hit(item, NAMESPACE, key):
                    # This window is full until it ends; the longer windows keep their allowance.
                    self._give_back(taken, key)
                    reset = self.strategy.get_window_stats(item, NAMESPACE, key).reset_time
                    raise Throttled(max(1, math.ceil(reset - time.time())))
                taken.append(item)
        except (RedisError, ConnectionError, OSError) as exc:
            # With Redis down, logging in still works, only without the slow-down.
            log.warning("login throttle unavailable error=%s", exc)

    def release(self, key: str) -> None:
        """Give back the attempt counted by acquire (the password was right)."""
        try:
            self._give_back(self.items, key)
        except (RedisError, ConnectionError, OSError) as exc:
            log.warning("login throttle unavailable error=%s", exc)

    def _give_back(self, items: list[RateLimitItem], key: str) -> None:
        for item in items:
            self.storage.incr(item.key_for(NAMESPACE, key), item.get_expiry(), amount=-1)


def login_throttle(app: Flask | None = None) -> LoginThrottle:
    """The app's throttle, built on first use on the app's Redis."""
    app = app or current_app
    state = app.extensions.setdefault("lvt_redis", {})
    if "login_throttle" not in state:
        queue.redis_url(app)  # starts the embedded Redis if that is the one in use
        state["login_throttle"] = LoginThrottle(queue.limits_storage_uri(app), app.config["LOGIN_RATE_LIMIT"])
    return state["login_throttle"]
