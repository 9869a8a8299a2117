"""Webhooks: the JSON API (documented) and the page course staff use (not an API)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from flask import Blueprint as PageBlueprint
from flask import (
    abort,
    current_app,
    flash,
    get_template_attribute,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from ..services import access, webhooks
from ..services.errors import RenderRequestError
from . import forms, reveal
from . import schemas as s
from .errors import error_response
from .rest import Blueprint

api_bp = Blueprint("webhooks", __name__, description="Signed webhooks")
NO_STORE = {"Cache-Control": "no-store"}  # secrets, and URLs that may carry their own
pages_bp = PageBlueprint("webhook_pages", __name__)

_ERRORS = {
    400: "The body is malformed, or a field is missing or of the wrong type",
    401: "No credentials, or credentials that are not valid",
    404: "No such webhook within your courses",
    413: "The request body is too large",
    415: "The body is not JSON",
    409: "An attempt of this message is being sent right now",
    422: "The rules refuse it (the message says why: URL, events, course)",
    429: "The course's tests and redeliveries are used up for now (wait as Retry-After says)",
    503: "The queue is unavailable; nothing was sent",
}


def errors(*codes: int):
    def decorate(view):
        for code in sorted({*codes, 401}):
            view = api_bp.alt_response(code, schema=s.ErrorSchema, description=_ERRORS[code])(view)
        return view

    return decorate


@api_bp.errorhandler(RenderRequestError)
def _refused(exc: RenderRequestError):
    response = error_response(exc.status, exc.message)
    if isinstance(exc, webhooks.TooManySends):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _webhook_or_404(webhook_id: int):
    webhook = webhooks.get(webhook_id, current_user)
    if webhook is None:
        abort(404, description="No such webhook.")
    return webhook


@api_bp.route("/api/webhooks", methods=["POST"])
@login_required
@api_bp.arguments(s.WebhookRequest)
@api_bp.response(201, s.WebhookCreated)
@api_bp.doc(operationId="createWebhook")
@errors(400, 413, 415, 422)
def create_webhook(body: dict):
    """Register an endpoint for a course's events; the answer shows its signing secret, once."""
    course = access.choose_course(current_user, body["courseId"])
    return webhooks.create(current_user, course, body["url"], body["events"]), 201, NO_STORE


@api_bp.route("/api/webhooks", methods=["GET"])
@login_required
@api_bp.response(200, s.WebhookSchema(many=True))
@api_bp.doc(operationId="listWebhooks")
@errors()
def list_webhooks():
    """The endpoints of your courses (without their signing secrets; a URL may hold its own)."""
    return webhooks.visible(current_user), 200, NO_STORE


@api_bp.route("/api/webhooks/<id:webhook_id>", methods=["DELETE"])
@login_required
@api_bp.response(204)
@api_bp.doc(operationId="deleteWebhook")
@errors(404)
def delete_webhook(webhook_id: int):
    """Stop sending to an endpoint."""
    webhooks.delete(_webhook_or_404(webhook_id))
    return current_app.response_class(status=204)


@api_bp.route("/api/webhooks/<id:webhook_id>/deliveries", methods=["GET"])
@login_required
@api_bp.response(200, s.DeliverySchema(many=True))
@api_bp.doc(operationId="listDeliveries")
@errors(404)
def list_deliveries(webhook_id: int):
    """The latest delivery attempts to an endpoint, newest first."""
    return webhooks.deliveries(_webhook_or_404(webhook_id))


@api_bp.route("/api/webhooks/<id:webhook_id>/test", methods=["POST"])
@login_required
@api_bp.response(202, s.QueuedSendSchema)
@api_bp.doc(operationId="testWebhook")
@errors(404, 429, 503)
def test_webhook(webhook_id: int):
    """Send a webhook.test message (delivered by a worker, logged like any other).

    Tests and redeliveries count against the course's limit (WEBHOOK_SEND_LIMIT): 429 with
    Retry-After beyond it."""
    return webhooks.send_test(_webhook_or_404(webhook_id))


@api_bp.route("/api/webhooks/deliveries/<id:delivery_id>/redeliver", methods=["POST"])
@login_required
@api_bp.response(202, s.QueuedSendSchema)
@api_bp.doc(operationId="redeliverWebhook")
@errors(404, 409, 429, 503)
def redeliver(delivery_id: int):
    """Send a logged message again, with the same webhook-id (counted like a test), as its next
    attempt. Its retries still waiting are replaced by this one and its own; 409 while an
    attempt of the message is being sent."""
    delivery = webhooks.get_delivery(delivery_id, current_user)
    if delivery is None:
        abort(404, description="No such delivery.")
    return webhooks.redeliver(delivery)


# --- the page ------------------------------------------------------------------------------


WATCH_SECONDS = 60  # how long the page waits for a send it queued before saying it is late
WATCHING = ("waiting", "retrying")  # the page asks again every 2 s
_SENT = "webhook_sends"  # the session's [[webhook id, message id, event, attempt, since], ...]


def _remember(webhook_id: int, sent: webhooks.QueuedSend) -> None:
    """Note a test or redelivery sent from the page, so the page can watch for its delivery."""
    kept = [e for e in session.get(_SENT, []) if e[0] != webhook_id][-3:]
    session[_SENT] = [*kept, [webhook_id, sent.message_id, sent.event, sent.attempt, time.time()]]


def _watched(webhook_id: int, log: list) -> SimpleNamespace | None:
    """The send last made from the page to this webhook, with its newest delivery (None before
    the first): waiting (none yet) or retrying (the last failed) while WATCH_SECONDS last, then
    late or failed; delivered once one succeeds. None when the page sent nothing."""
    entry = next((e for e in session.get(_SENT, []) if e[0] == webhook_id), None)
    if entry is None:
        return None
    _, message_id, event, attempt, since = entry
    delivery = next((d for d in log if d.message_id == message_id and d.attempt >= attempt), None)
    watching = time.time() - since < WATCH_SECONDS
    if delivery is None:
        state = "waiting" if watching else "late"
    elif delivery.succeeded:
        state = "delivered"
    else:
        state = "retrying" if watching else "failed"
    return SimpleNamespace(state=state, event=event, delivery=delivery, watching=state in WATCHING)


def _spoken(seconds: int) -> str:
    if seconds >= 3600 and not seconds % 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds >= 60 and not seconds % 60 else f"{seconds} s"


@pages_bp.app_template_global("webhook_retries")
def retry_words() -> str:
    """WEBHOOK_RETRY_INTERVALS as a person says them ("5 s, 30 s, 2 min, 10 min and 1 h"); "" for none."""
    words = [_spoken(n) for n in current_app.config["WEBHOOK_RETRY_INTERVALS"]]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _page(form=None, created=None, status=200):
    courses = access.visible_courses(current_user)
    form = form or forms.WebhookForm(courses)
    hooks = webhooks.visible(current_user)
    logs = {hook.id: webhooks.deliveries(hook, limit=10) for hook in hooks}
    watch = {hook.id: _watched(hook.id, logs[hook.id]) for hook in hooks}
    # A send the page has seen end is said once: the next page load forgets it.
    ended = {hook_id for hook_id, w in watch.items() if w and not w.watching}
    if ended:
        session[_SENT] = [e for e in session.get(_SENT, []) if e[0] not in ended]
    page = render_template(
        "webhooks.html",
        form=form,
        hooks=hooks,
        logs=logs,
        watch=watch,
        created=created,
    )
    return page, status, NO_STORE


@pages_bp.get("/webhooks")
@login_required
def page():
    return _page(created=reveal.take("webhook"))


@pages_bp.post("/webhooks")
@login_required
def create():
    form = forms.WebhookForm(access.visible_courses(current_user))
    if not form.validate():
        return _page(form, status=422)
    try:
        hook = webhooks.create(current_user, form.chosen_course, form.url.data, form.events.data or None)
    except RenderRequestError as exc:
        form.url.errors = [exc.message]
        return _page(form, status=exc.status)
    # The secret shows on the page the browser is sent to: reloading it registers nothing again.
    shown = {"course": hook.course.name, "secret": hook.secret}
    location = url_for("webhook_pages.page")
    return reveal.redirect_showing("webhook", shown, location) or _page(created=[shown], status=201)


@pages_bp.post("/webhooks/<id:webhook_id>/delete")
@login_required
def delete(webhook_id: int):
    webhooks.delete(_webhook_or_404(webhook_id))
    flash("Webhook deleted: nothing more is sent to it.", "info")
    return redirect(url_for("webhook_pages.page"))


@pages_bp.get("/webhooks/<id:webhook_id>/log")
@login_required
def log(webhook_id: int):
    """The page's poll while a send is on its way: 204 (htmx keeps the log) until a delivery
    newer than the one the page shows (`seen`) is in, or the page stops watching."""
    hook = _webhook_or_404(webhook_id)
    entries = webhooks.deliveries(hook, limit=10)
    watch = _watched(hook.id, entries)
    newest = watch.delivery.id if watch and watch.delivery else 0
    if watch is not None and watch.watching and newest == request.args.get("seen", 0, type=int):
        return "", 204, NO_STORE
    delivery_log = get_template_attribute("_webhook_log.html", "delivery_log")
    return delivery_log(hook, entries, watch, oob=True), 200, NO_STORE


@pages_bp.post("/webhooks/<id:webhook_id>/test")
@login_required
def test(webhook_id: int):
    hook = _webhook_or_404(webhook_id)
    try:
        _remember(hook.id, webhooks.send_test(hook))
    except RenderRequestError as exc:
        flash(exc.message, "error")
        return redirect(url_for("webhook_pages.page"))  # the message is at the top
    return redirect(url_for("webhook_pages.page", _anchor=f"webhook-{hook.id}"))


@pages_bp.post("/webhooks/deliveries/<id:delivery_id>/redeliver")
@login_required
def redeliver_page(delivery_id: int):
    delivery = webhooks.get_delivery(delivery_id, current_user)
    if delivery is None:
        abort(404, description="No such delivery.")
    webhook_id = delivery.message.webhook_id
    try:
        _remember(webhook_id, webhooks.redeliver(delivery))
    except RenderRequestError as exc:
        flash(exc.message, "error")
        return redirect(url_for("webhook_pages.page"))  # the message is at the top
    return redirect(url_for("webhook_pages.page", _anchor=f"webhook-{webhook_id}"))
