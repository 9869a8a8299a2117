"""Limits counted in Redis (fixed windows, through the `limits` package), before the thing runs.

- Failed logins (`login_throttle`): every password check is counted before it runs,
  atomically, so parallel attempts cannot all pass a check made before any of them was
  counted; a successful login gives its count back, so only failures use up the allowance.
  Per account and sender together (`sender`: an IPv6 /64 is one), e.g. "5 per minute; 30 per hour".
- Webhook tests and redeliveries (`webhook_sends`): per course, so one course cannot fill the
  workers' webhook queue and hold up everyone else's deliveries.
"""

from __future__ import annotations

import ipaddress
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

LOGIN_MESSAGE = "Too many failed attempts for this account from your address. Wait a minute and try again."


class Throttled(Exception):
    """A limit is used up; `retry_after` is how many seconds to wait."""

    def __init__(self, retry_after: int, message: str = LOGIN_MESSAGE):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Throttle:
    """Fixed windows in Redis, one counter per limit and per key, under one namespace."""

    def __init__(self, storage_uri: str, limits_text: str, namespace: str):
        self.items: list[RateLimitItem] = parse_many(limits_text)
        self.storage = storage_from_string(storage_uri, socket_connect_timeout=2, socket_timeout=2)
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.namespace = namespace

    def acquire(self, key: str, message: str = LOGIN_MESSAGE) -> None:
        """Count one attempt; Throttled (and nothing counted) when a limit is used up. With Redis
        down nothing is counted (logged): what is limited still works, only without the limit."""
        taken: list[RateLimitItem] = []
        try:
            for item in self.items:
                if not self.strategy.hit(item, self.namespace, key):
                    # This window is full until it ends; the longer windows keep their allowance.
                    self._give_back(taken, key)
                    reset = self.strategy.get_window_stats(item, self.namespace, key).reset_time
                    raise Throttled(max(1, math.ceil(reset - time.time())), message)
                taken.append(item)
        except (RedisError, ConnectionError, OSError) as exc:
            log.warning("%s throttle unavailable error=%s", self.namespace, exc)

    def release(self, key: str) -> None:
        """Give back the attempt counted by acquire (e.g. the password was right)."""
        try:
            self._give_back(self.items, key)
        except (RedisError, ConnectionError, OSError) as exc:
            log.warning("%s throttle unavailable error=%s", self.namespace, exc)

    def _give_back(self, items: list[RateLimitItem], key: str) -> None:
        for item in items:
            self.storage.incr(item.key_for(self.namespace, key), item.get_expiry(), amount=-1)


def _throttle(namespace: str, setting: str, app: Flask | None = None) -> Throttle:
    """The app's throttle for `namespace`, built on first use on the app's Redis (again when
    its setting changes)."""
    app = app or current_app
    state = app.extensions.setdefault("lvt_redis", {})
    limits_text = app.config[setting]
    found = state.get(f"throttle:{namespace}")
    if found is None or found[0] != limits_text:
        queue.redis_url(app)  # starts the embedded Redis if that is the one in use
        found = state[f"throttle:{namespace}"] = (
            limits_text,
            Throttle(queue.limits_storage_uri(app), limits_text, namespace),
        )
    return found[1]


def login_throttle(app: Flask | None = None) -> Throttle:
    return _throttle("login", "LOGIN_RATE_LIMIT", app)


def webhook_sends(app: Flask | None = None) -> Throttle:
    return _throttle("webhook-sends", "WEBHOOK_SEND_LIMIT", app)


def sender(address: str | None) -> str:
    """Who a limit counts: an IPv4 address (however written), or an IPv6 /64 (one host or one
    network has them all)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return address or "-"
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))
