"""Security headers on every response of ours; our pages run no inline script and no eval."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Course

from ..helpers import csrf_token


def policy(response) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in response.headers["Content-Security-Policy"].split(";"))
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts if part}


def assert_secure_headers(response, where: str):
    csp = policy(response)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"], where
    assert csp["frame-ancestors"] == "'none'", where
    assert csp["object-src"] == "'none'", where
    assert response.headers["X-Frame-Options"] == "DENY", where
    assert response.headers["X-Content-Type-Options"] == "nosniff", where
    assert response.headers["Referrer-Policy"] == "same-origin", where


@pytest.fixture
def pages(app, client, auth, factory):
    user = factory.user(role="admin", courses=["Course A"])
    job = factory.job("Course A", lessons=1)
    with app.app_context():
        course_id = db.session.scalars(sa.select(Course.id).where(Course.name == "Course A")).one()
    auth.login(user.email)
    return [
        "/jobs",
        "/jobs/new",
        f"/jobs/{job.id}",
        "/account",
        "/account/tokens",
        "/webhooks",
        "/admin/users",
        f"/admin/users/{user.id}",
        "/admin/courses",
        f"/admin/courses/{course_id}",
        "/docs",
        "/openapi.json",
        "/health",
        f"/video-transform/{job.id}/video-generation-status",
        f"/api/jobs/{job.id}",
        "/static/app.css",
        "/static/app.js",
        "/fonts/NotoSansThai-Regular.ttf",
        "/jobs/00000000-0000-0000-0000-000000000000",  # 404 page
        "/no-such-page",
    ]


def test_every_response_carries_the_security_headers(client, pages):
    for path in pages:
        assert_secure_headers(client.get(path), path)
    client.post("/logout", data={})  # a refused post (no CSRF token) too
    assert_secure_headers(client.get("/login"), "/login")


def test_our_pages_have_no_inline_script_style_or_handlers(client, pages):
    html_pages = [p for p in pages if not p.startswith(("/static", "/fonts", "/openapi", "/health", "/api"))]
    for path in html_pages:
        response = client.get(path)
        if response.mimetype != "text/html":
            continue
        text = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"<style", text), path
        assert not re.search(r"\s(on[a-z]+|style|hx-on[:\w-]*)=", text), path
        assert "js:" not in text and "[document" not in text, path  # htmx eval forms


def test_hsts_only_when_cookies_are_secure(app, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    app.config["SESSION_COOKIE_SECURE"] = True
    assert client.get("/login").headers["Strict-Transport-Security"].startswith("max-age=")


def test_policy_is_strict():
    from webapp.headers import APP_POLICY

    assert "script-src 'self';" in APP_POLICY and "'unsafe" not in APP_POLICY


def test_what_a_signed_in_user_is_shown_stays_out_of_shared_caches(app, client, auth, factory, pages):
    """A proxy or CDN between users must not keep one user's pages for the next: every answer
    to a signed-in user is private (or not stored at all); public files stay cacheable."""
    job_id = next(p for p in pages if p.startswith("/api/jobs/")).rsplit("/", 1)[1]
    private = [p for p in pages if not p.startswith(("/static", "/fonts", "/openapi", "/health", "/docs"))]
    private += [f"/api/jobs/{job_id}/lessons/package", "/api/jobs", "/api/webhooks"]
    for path in private:
        response = client.get(path)
        cache = response.cache_control
        assert cache.private or cache.no_store, (path, response.headers.get("Cache-Control"))
        assert not cache.public, path
    # Webhook URLs may carry their own secrets (a token in the query string): like their page.
    assert client.get("/api/webhooks").cache_control.no_store
    created = client.post(
        "/api/webhooks",
        json={"url": "https://1.1.1.1/hooks"},
        headers={"X-CSRFToken": csrf_token(client, "/jobs")},
    )
    assert created.status_code == 201 and created.cache_control.no_store
    assert not client.get("/static/app.css").cache_control.private
