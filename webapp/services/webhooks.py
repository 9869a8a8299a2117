"""Webhooks: endpoints a course registers, the events they hear, and signed deliveries.

Deliveries follow the Standard Webhooks specification (`standardwebhooks` signs them): headers
webhook-id (the same on every attempt of one message), webhook-timestamp, webhook-signature;
body {"type", "timestamp", "data"}. They are sent by workers, never in a request, retried with
backoff by RQ, and every attempt is logged. Where an endpoint may be, and how it is reached:
endpoints.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import contains_eager
from standardwebhooks.webhooks import Webhook as Signer

from .. import metrics, queue
from ..extensions import db
from ..models import (
    WEBHOOK_EVENTS,
    Course,
    Render,
    User,
    VideoJob,
    Webhook,
    WebhookDelivery,
    WebhookMessage,
    utcnow,
)
from . import access, endpoints, messages, summary, throttle
from .errors import RenderRequestError, Unprocessable

log = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
MAX_PER_COURSE = 20


class DeliveryFailed(Exception):
    """An attempt that did not get a 2xx; RQ retries the job."""


# --- endpoints -----------------------------------------------------------------------------


def _check_events(events: list[str] | None) -> list[str]:
    if events is None:
        return list(WEBHOOK_EVENTS)
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown or not events:
        raise Unprocessable(f"events must be some of: {', '.join(WEBHOOK_EVENTS)}.")
    return [event for event in WEBHOOK_EVENTS if event in events]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create(user: User, course: Course, url: str, events: list[str] | None) -> Webhook:
    """Register an endpoint for a course the user belongs to; its secret is on the returned row."""
    if not access.can_use_course(user, course):
        raise Unprocessable("courseId is not one of your courses.")
    held = db.session.scalar(sa.select(sa.func.count()).where(Webhook.course_id == course.id))
    if held >= MAX_PER_COURSE:
        raise Unprocessable(f"A course has at most {MAX_PER_COURSE} webhooks; delete one first.")
    url = endpoints.check_url(url)
    if db.session.scalar(sa.select(Webhook.id).where(Webhook.course_id == course.id, Webhook.url == url)):
        raise Unprocessable("This course already has a webhook for that URL: each event would go twice.")
    webhook = Webhook(
        course=course,
        url=url,
        events=_check_events(events),
        secret=new_secret(),
        created_by_id=user.id,
    )
    db.session.add(webhook)
    db.session.commit()
    return webhook


def visible(user: User) -> list[Webhook]:
    query = sa.select(Webhook).order_by(Webhook.course_id, Webhook.created_at)
    allowed = access.course_ids(user)
    if allowed is not None:
        query = query.where(Webhook.course_id.in_(allowed))
    return list(db.session.scalars(query))


def get(webhook_id: int, user: User) -> Webhook | None:
    """The endpoint if it belongs to one of the user's courses."""
    return next((hook for hook in visible(user) if hook.id == webhook_id), None)


def delete(webhook: Webhook) -> None:
    db.session.delete(webhook)
    db.session.commit()


def deliveries(webhook: Webhook, limit: int = 50) -> list[WebhookDelivery]:
    """The latest attempts to an endpoint, newest first."""
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery)
            .join(WebhookMessage)
            .where(WebhookMessage.webhook_id == webhook.id)
            .options(contains_eager(WebhookDelivery.message))
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


# --- events --------------------------------------------------------------------------------


def _render_data(render: Render) -> dict:
    return {
        "renderId": str(render.id),
        "lessonPath": render.lesson.path,
        "state": render.state.value,
        "attempt": render.attempt,
        "outputFileName": render.output_file_name,
        "outputPath": render.output_path,
        "error": render.error,
        "finishedAt": summary.iso(render.finished_at),
    }


def _hooks(course_id: int, event: str) -> list[Webhook]:
    found = db.session.scalars(sa.select(Webhook).where(Webhook.course_id == course_id))
    return [hook for hook in found if event in hook.events]


def _message(hook: Webhook, event: str, data: dict) -> WebhookMessage:
    payload = {"type": event, "timestamp": summary.iso(utcnow()), "data": data}
    message = WebhookMessage(id=f"msg_{uuid.uuid4().hex}", webhook_id=hook.id, event=event, payload=payload)
    db.session.add(message)
    return message


def slow_course(course_id: int) -> bool:
    """Whether the course's endpoints are not keeping up: a message of theirs from the last
    retry window is not delivered yet (waiting for its first attempt, or failed and waiting for
    a retry). Its deliveries then go in the slow lane, after everyone else's (queue.py): endpoints
    that never answer (each attempt waits WEBHOOK_TIMEOUT) hold up only their own course."""
    since = utcnow() - timedelta(seconds=sum(current_app.config["WEBHOOK_RETRY_INTERVALS"]) + 300)
    delivered = sa.select(WebhookDelivery.id).where(
        WebhookDelivery.message_id == WebhookMessage.id, WebhookDelivery.status_code.between(200, 299)
    )
    waiting = (
        sa.select(WebhookMessage.id)
        .join(Webhook, Webhook.id == WebhookMessage.webhook_id)
        .where(Webhook.course_id == course_id, WebhookMessage.created_at >= since)
        .where(~sa.exists(delivered))
        .limit(1)
    )
    return db.session.scalar(waiting) is not None


def _send(hooks: list[Webhook], event: str, data: dict, slow: bool) -> None:
    """Record one message per endpoint and queue it. A Redis that does not answer leaves it
    recorded but unsent (logged)."""
    messages = [_message(hook, event, data) for hook in hooks]
    db.session.commit()
    for message in messages:
        try:
            queue.enqueue_webhook(message.id, slow=slow)
        except queue.Unavailable as exc:
            log.warning("webhook not queued message_id=%s event=%s error=%s", message.id, event, exc)


def render_finished(render: Render, job: VideoJob, job_completed: bool) -> None:
    """After a render reached a final state (committed): tell the course's endpoints. Never
    raises: the render's own outcome is already recorded and must not depend on this."""
    try:
        event = f"render.{render.state.value}"
        hooks = _hooks(job.course_id, event)
        finished = _hooks(job.course_id, "job.completed") if job_completed else []
        if not hooks and not finished:
            return
        status, slow = summary.status(job).as_json(), slow_course(job.course_id)
        _send(hooks, event, {**status, "render": _render_data(render)}, slow)
        _send(finished, "job.completed", status, slow)
    except Exception:  # logged: webhooks must never fail a render
        log.exception("webhooks not queued render_id=%s", render.id)


SEND_LIMITED = "Too many test and repeated deliveries for this course; wait {} s and try again."


class TooManySends(RenderRequestError):
    status = 429

    def __init__(self, retry_after: int):
        super().__init__(SEND_LIMITED.format(retry_after))
        self.retry_after = retry_after


def _count_send(webhook: Webhook) -> None:
    """Count one test or redelivery against its course's WEBHOOK_SEND_LIMIT (TooManySends)."""
    try:
        throttle.webhook_sends().acquire(str(webhook.course_id))
    except throttle.Throttled as exc:
        raise TooManySends(exc.retry_after) from None


@dataclass(frozen=True)
class QueuedSend:
    """A message handed to the workers: its webhook-id, event, and the attempt it goes out as."""

    message_id: str
    event: str
    attempt: int


def send_test(webhook: Webhook) -> QueuedSend:
    _count_send(webhook)
    slow = slow_course(webhook.course_id)
    message = _message(webhook, TEST_EVENT, {"webhookId": webhook.id})
    db.session.commit()
    queue.enqueue_webhook(message.id, slow=slow)
    return QueuedSend(message.id, TEST_EVENT, 1)


class SendInFlight(RenderRequestError):
    status = 409

    def __init__(self):
        super().__init__(
            "This message is being sent right now; see how that attempt ends before sending it again."
        )


def redeliver(delivery: WebhookDelivery) -> QueuedSend:
    """Send a logged message again, with its id, as the message's next attempt; its retries
    still waiting are replaced (queue.enqueue_webhook). Refused while an attempt is on its way."""
    if queue.webhook_in_flight(delivery.message_id):
        raise SendInFlight()
    _count_send(delivery.message.webhook)
    attempts = sa.select(sa.func.max(WebhookDelivery.attempt)).where(
        WebhookDelivery.message_id == delivery.message_id
    )
    attempt = (db.session.scalar(attempts) or 0) + 1
    slow = slow_course(delivery.message.webhook.course_id)
    try:
        queue.enqueue_webhook(delivery.message_id, first_attempt=attempt, slow=slow)
    except queue.SendInFlight:  # an attempt started since the check above
        raise SendInFlight() from None
    return QueuedSend(delivery.message_id, delivery.message.event, attempt)


def get_delivery(delivery_id: int, user: User) -> WebhookDelivery | None:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or get(delivery.message.webhook_id, user) is None:
        return None
    return delivery


# --- the worker's side ---------------------------------------------------------------------


def deliver(message_id: str, attempt: int) -> WebhookDelivery | None:
    """One attempt: sign, POST, log. Raises DeliveryFailed unless the endpoint answered 2xx."""
    message = db.session.get(WebhookMessage, message_id)
    if message is None:
        return None  # its webhook was deleted since: nothing to deliver
    webhook, event, payload = message.webhook, message.event, message.payload
    body = json.dumps(payload, separators=(",", ":"))
    sent_at = datetime.now(UTC)
    record = WebhookDelivery(message_id=message_id, attempt=attempt, created_at=utcnow())
    started = time.perf_counter()
    try:
        _, address = endpoints.checked(webhook.url)
        request = urllib.request.Request(
            webhook.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "lesson-videos-webhooks/1",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(sent_at.timestamp())),
                "webhook-signature": Signer(webhook.secret).sign(message_id, sent_at, body),
            },
        )
        with endpoints.opener(address).open(
            request, timeout=current_app.config["WEBHOOK_TIMEOUT"]
        ) as response:
            record.status_code = response.status
    except urllib.error.HTTPError as exc:
        record.status_code = exc.code
        record.error = f"HTTP {exc.code}"
    except Unprocessable as exc:
        record.error = exc.message[:500]
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        record.error = messages.connection_failure(exc, current_app.config["WEBHOOK_TIMEOUT"])[:500]
    record.latency_ms = round((time.perf_counter() - started) * 1000)
    db.session.add(record)
    db.session.commit()
    result = "delivered" if record.succeeded else "failed"
    metrics.webhook_delivery(result)
    log.info(
        "webhook %s webhook_id=%s message_id=%s event=%s attempt=%s status=%s latency_ms=%s",
        result,
        webhook.id,
        message_id,
        event,
        attempt,
        record.status_code,
        record.latency_ms,
    )
    if not record.succeeded:
        raise DeliveryFailed(
            f"webhook {webhook.id} message {message_id}: {record.error or record.status_code}"
        )
    return record
