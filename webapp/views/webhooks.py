"""Webhooks: the JSON API (documented) and the page course staff use (not an API)."""

from __future__ import annotations

from flask import Blueprint as PageBlueprint
from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from ..models import WEBHOOK_EVENTS
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
@errors(404, 429, 503)
def redeliver(delivery_id: int):
    """Send a logged message again, with the same webhook-id (counted like a test)."""
    delivery = webhooks.get_delivery(delivery_id, current_user)
    if delivery is None:
        abort(404, description="No such delivery.")
    return webhooks.redeliver(delivery)


# --- the page ------------------------------------------------------------------------------


def _page(form=None, created=None, status=200):
    courses = access.visible_courses(current_user)
    form = form or forms.WebhookForm(courses)
    hooks = webhooks.visible(current_user)
    logs = {hook.id: webhooks.deliveries(hook, limit=10) for hook in hooks}
    page = render_template(
        "webhooks.html", form=form, hooks=hooks, logs=logs, created=created, events=WEBHOOK_EVENTS
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


def _mine(webhook_id: int):
    hook = webhooks.get(webhook_id, current_user)
    if hook is None:
        abort(404, description="No such webhook.")
    return hook


@pages_bp.post("/webhooks/<id:webhook_id>/delete")
@login_required
def delete(webhook_id: int):
    webhooks.delete(_mine(webhook_id))
    flash("Webhook deleted: nothing more is sent to it.", "info")
    return redirect(url_for("webhook_pages.page"))


@pages_bp.post("/webhooks/<id:webhook_id>/test")
@login_required
def test(webhook_id: int):
    try:
        webhooks.send_test(_mine(webhook_id))
        flash("Test message queued: reload this page in a few seconds to see its delivery.", "info")
    except RenderRequestError as exc:
        flash(exc.message, "error")
    return redirect(url_for("webhook_pages.page"))


@pages_bp.post("/webhooks/deliveries/<id:delivery_id>/redeliver")
@login_required
def redeliver_page(delivery_id: int):
    delivery = webhooks.get_delivery(delivery_id, current_user)
    if delivery is None:
        abort(404, description="No such delivery.")
    try:
        webhooks.redeliver(delivery)
        flash("Message queued again, with the same webhook-id: reload in a few seconds to see it.", "info")
    except RenderRequestError as exc:
        flash(exc.message, "error")
    return redirect(url_for("webhook_pages.page"))
