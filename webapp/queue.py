"""The one place that builds Redis connections and RQ queues from the app config."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from . import embedded_redis

RENDER_QUEUE = "renders"
# Short housekeeping jobs (the lost-render reaper) run from their own queue so a
# worker kept for them is never stuck behind long renders.
MAINTENANCE_QUEUE = "maintenance"


def redis_url(app: Flask | None = None) -> str:
    """REDIS_URL, or the URL of the embedded Redis (started on first use)."""
    app = app or current_app
    url = app.config.get("REDIS_URL")
    if url:
        return url
    state = app.extensions.setdefault("lvt_redis", {})
    if "embedded_url" not in state:
        state["embedded_url"] = embedded_redis.ensure_running(app.instance_path)
    return state["embedded_url"]


def connection(app: Flask | None = None) -> Redis:
    """The app's Redis client. Its pool reconnects by itself when Redis comes back."""
    app = app or current_app
    state = app.extensions.setdefault("lvt_redis", {})
    if "client" not in state:
        state["client"] = Redis.from_url(
            redis_url(app), socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
    return state["client"]


def worker_connection(app: Flask | None = None) -> Redis:
    """A fresh client for a worker or scheduler; RQ sets the timeouts it needs."""
    return Redis.from_url(redis_url(app or current_app))


def render_queue(conn: Redis | None = None) -> Queue:
    return Queue(RENDER_QUEUE, connection=conn or connection())


def limits_storage_uri(app: Flask) -> str:
    """The same Redis for the login throttle, in the URI form the `limits` package reads."""
    url = app.config.get("REDIS_URL") or embedded_redis.url(app.instance_path)
    return "redis+unix://" + url[len("unix://") :] if url.startswith("unix://") else url
