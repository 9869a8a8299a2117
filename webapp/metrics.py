"""Metrics for operators, in Prometheus' text format (prometheus-client).

Renders run on worker machines and requests on several web processes, so events are added up
in Redis hashes shared by every process and machine (one HINCRBYFLOAT per event; status answers
in batches, at most a second late), and the database and RQ (through queue.py) are read
at scrape time. A Redis that does not answer loses a count, never a request or a render.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

import sqlalchemy as sa
from flask import current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError

from . import queue
from .extensions import db
from .models import Render, RenderState

log = logging.getLogger(__name__)

PREFIX = "lvt:metrics:"
RENDER_SECONDS_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 3600)
RENDER_FPS_BUCKETS = (10, 25, 50, 100, 200, 400, 800, 1600)
FINAL_STATES = (RenderState.COMPLETED, RenderState.FAILED, RenderState.CANCELLED)


def _hincr(key: str, field: str, amount: float = 1) -> None:
    try:
        queue.connection().hincrbyfloat(PREFIX + key, field, amount)
    except RedisError as exc:
        log.debug("metric not counted key=%s error=%s", key, exc)


def _observe(key: str, buckets: tuple, value: float) -> None:
    """One observation of a histogram kept in a Redis hash: cumulative buckets, sum, count."""
    try:
        pipe = queue.connection().pipeline(transaction=False)
        for bound in buckets:
            if value <= bound:
                pipe.hincrbyfloat(PREFIX + key, f"le:{bound}", 1)
        pipe.hincrbyfloat(PREFIX + key, "sum", value)
        pipe.hincrbyfloat(PREFIX + key, "count", 1)
        pipe.execute()
    except RedisError as exc:
        log.debug("metric not observed key=%s error=%s", key, exc)


# --- events --------------------------------------------------------------------------------


def render_finished(seconds: float | None, frames: int | None) -> None:
    """A render completed: its wall time and its frames per second."""
    if not seconds or seconds <= 0:
        return
    _observe("render_seconds", RENDER_SECONDS_BUCKETS, seconds)
    if frames:
        _observe("render_fps", RENDER_FPS_BUCKETS, frames / seconds)


# Status answers are the hottest path there is (every poll of every client): each process counts
# them in memory and adds them to Redis in one round trip at most once a second (at its next
# answer after that second, at a scrape, and when a gunicorn worker exits), not one per poll.
_STATUS_FLUSH_SECONDS = 1.0


def _status_counts() -> dict:
    return current_app.extensions.setdefault("lvt_status_counts", {"counts": Counter(), "flushed": 0.0})


def status_request(face: str, code: int) -> None:
    state = _status_counts()
    state["counts"][f"{face}:{code}"] += 1
    if time.monotonic() - state["flushed"] >= _STATUS_FLUSH_SECONDS:
        flush_status_counts()


def flush_status_counts() -> None:
    """Add the status answers this process counted since its last flush to the shared counts."""
    state = _status_counts()
    state["flushed"] = time.monotonic()
    counts = dict(state["counts"])
    if not counts:
        return
    state["counts"].subtract(counts)  # what arrives meanwhile stays counted for the next flush
    state["counts"] = +state["counts"]
    try:
        pipe = queue.connection().pipeline(transaction=False)
        for field, amount in counts.items():
            pipe.hincrbyfloat(PREFIX + "status_requests", field, amount)
        pipe.execute()
    except RedisError as exc:
        log.debug("status answers not counted error=%s", exc)


def webhook_delivery(result: str) -> None:
    _hincr("webhook_deliveries", result)


# --- scrape --------------------------------------------------------------------------------


def _hash(key: str) -> dict[str, float]:
    raw = queue.connection().hgetall(PREFIX + key)
    return {k.decode(): float(v) for k, v in raw.items()}


def _histogram(name: str, doc: str, key: str, buckets: tuple) -> HistogramMetricFamily:
    data = _hash(key)
    family = HistogramMetricFamily(name, doc)
    count = data.get("count", 0.0)
    points = [(str(float(bound)), data.get(f"le:{bound}", 0.0)) for bound in buckets]
    family.add_metric([], [*points, ("+Inf", count)], sum_value=data.get("sum", 0.0))
    return family


class Collector:
    """Everything /metrics shows, read when it is scraped."""

    def collect(self) -> Iterator:
        renders = CounterMetricFamily("lvt_renders", "Renders that ended, by final state", labels=["state"])
        counts = dict(
            db.session.execute(
                sa.select(Render.state, sa.func.count())
                .where(Render.state.in_(FINAL_STATES))
                .group_by(Render.state)
            ).all()
        )
        db.session.rollback()
        for state in FINAL_STATES:
            renders.add_metric([state.value], counts.get(state, 0))
        yield renders
        yield from self._from_redis()

    def _from_redis(self) -> Iterator:
        yield _histogram(
            "lvt_render_seconds", "Wall time of completed renders", "render_seconds", RENDER_SECONDS_BUCKETS
        )
        yield _histogram(
            "lvt_render_fps", "Frames per second of completed renders", "render_fps", RENDER_FPS_BUCKETS
        )
        depth = GaugeMetricFamily("lvt_queue_depth", "Jobs waiting in each RQ queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "lvt_queue_oldest_seconds", "Age of the oldest waiting job", labels=["queue"]
        )
        for name, (waiting, age) in queue.depths().items():
            depth.add_metric([name], waiting)
            oldest.add_metric([name], age)
        yield depth
        yield oldest
        workers = GaugeMetricFamily("lvt_workers", "RQ workers alive")
        workers.add_metric([], queue.workers_alive())
        yield workers
        flush_status_counts()
        status = CounterMetricFamily(
            "lvt_status_requests", "Status endpoint answers, by face and code", labels=["face", "code"]
        )
        for field, value in sorted(_hash("status_requests").items()):
            face, _, code = field.partition(":")
            status.add_metric([face, code], value)
        yield status
        webhooks = CounterMetricFamily(
            "lvt_webhook_deliveries", "Webhook deliveries, by result", labels=["result"]
        )
        for result, value in sorted(_hash("webhook_deliveries").items()):
            webhooks.add_metric([result], value)
        yield webhooks


def exposition() -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)
