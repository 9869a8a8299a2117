"""Webhooks: endpoints a course registers, the events they hear, and signed deliveries.

Deliveries follow the Standard Webhooks specification (`standardwebhooks` signs them): headers
webhook-id (the same on every attempt of one message), webhook-timestamp, webhook-signature;
body {"type", "timestamp", "data"}. They are sent by workers, never in a request, retried with
backoff by RQ, and every attempt is logged. An endpoint must be http(s) and, unless
WEBHOOK_ALLOW_PRIVATE, resolve only to public addresses (checked again before each attempt, so
a name that later points inside the network is refused then).
"""

from __future__ import annotations

import base64
import functools
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

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
from . import access, messages, summary, throttle
from .errors import RenderRequestError, Unprocessable

log = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
URL_MAX = 2000
MAX_PER_COURSE = 20


class DeliveryFailed(Exception):
    """An attempt that did not get a 2xx; RQ retries the job."""


# --- endpoints -----------------------------------------------------------------------------


_NOT_PUBLIC = "Webhook URLs must resolve to public addresses only (not loopback, link-local or private)."


def _addresses(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unprocessable(_NOT_PUBLIC) from exc  # as for an inner name: nothing to tell them apart
    return {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def check_url(url: str) -> str:
    """An http(s) URL whose host resolves only to public addresses (unless WEBHOOK_ALLOW_PRIVATE)."""
    return _checked(url)[0]


def _checked(url: str) -> tuple[str, str | None]:
    """(the URL, the address checked to connect to: None when WEBHOOK_ALLOW_PRIVATE)."""
    url = (url or "").strip()
    if len(url) > URL_MAX:
        raise Unprocessable(f"Webhook URLs have at most {URL_MAX} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Unprocessable("The webhook URL is not a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable("Webhook URLs must be http:// or https:// URLs with a host.")
    if parts.username or parts.password:
        raise Unprocessable("Webhook URLs must not carry a user name or password.")
    if current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        return url, None
    addresses = _addresses(parts.hostname, port)
    if not all(_public(address) for address in addresses):
        raise Unprocessable(_NOT_PUBLIC)
    return url, str(min(addresses, key=lambda a: (a.version, int(a))))  # IPv4 first, then stable


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: DNS64 answers for IPv4 hosts
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public unicast address; an IPv6 one that carries an IPv4 address (mapped, NAT64, 6to4,
    IPv4-compatible) only when that IPv4 address is public too. Teredo and local-use NAT64
    addresses never (their IPv4 address may be hidden or inside the network)."""
    if not address.is_global or address.is_multicast:
        return False
    if address.version == 4:
        return True
    if address.teredo or address in _LOCAL_NAT64:
        return False
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded is None or _public(embedded)


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
    webhook = Webhook(
        course=course,
        url=check_url(url),
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


def _send(hooks: list[Webhook], event: str, data: dict) -> None:
    """Record one message per endpoint and queue it. A Redis that does not answer leaves it
    recorded but unsent (logged)."""
    messages = [_message(hook, event, data) for hook in hooks]
    db.session.commit()
    for message in messages:
        try:
            queue.enqueue_webhook(message.id)
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
        status = summary.status(job).as_json()
        _send(hooks, event, {**status, "render": _render_data(render)})
        _send(finished, "job.completed", status)
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
    message = _message(webhook, TEST_EVENT, {"webhookId": webhook.id})
    db.session.commit()
    queue.enqueue_webhook(message.id)
    return QueuedSend(message.id, TEST_EVENT, 1)


def redeliver(delivery: WebhookDelivery) -> QueuedSend:
    """Send a logged message again, with its id, as the message's next attempt."""
    _count_send(delivery.message.webhook)
    attempts = sa.select(sa.func.max(WebhookDelivery.attempt)).where(
        WebhookDelivery.message_id == delivery.message_id
    )
    attempt = (db.session.scalar(attempts) or 0) + 1
    queue.enqueue_webhook(delivery.message_id, first_attempt=attempt)
    return QueuedSend(delivery.message_id, delivery.message.event, attempt)


def get_delivery(delivery_id: int, user: User) -> WebhookDelivery | None:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or get(delivery.message.webhook_id, user) is None:
        return None
    return delivery


# --- the worker's side ---------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect could lead inside the network
        return None


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, not to what the name resolves to by then
    (DNS rebinding); the name still goes in the Host header."""

    def __init__(self, *args, address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout, self.source_address)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As _PinnedHTTP, over TLS: the certificate is checked against the name (SNI), as usual."""

    def __init__(self, *args, address: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout, self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    def __init__(self, address: str):
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self)
        self.address = address

    def http_open(self, req):
        return self.do_open(functools.partial(_PinnedHTTP, address=self.address), req)

    def https_open(self, req):
        return self.do_open(functools.partial(_PinnedHTTPS, address=self.address), req, context=self._context)


def _opener(address: str | None) -> urllib.request.OpenerDirector:
    """No redirects, no proxies from the environment; connected to `address` when given."""
    handlers = [_NoRedirects, urllib.request.ProxyHandler({})]
    return urllib.request.build_opener(*handlers, *([_PinnedHandler(address)] if address else []))


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
        _, address = _checked(webhook.url)
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
        with _opener(address).open(request, timeout=current_app.config["WEBHOOK_TIMEOUT"]) as response:
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
