"""Security headers on every response of ours; our pages run no inline script and no eval."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Course


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
