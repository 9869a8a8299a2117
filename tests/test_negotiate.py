"""One rule decides between an htmx fragment, JSON and a page (webapp/views/negotiate.py)."""

from __future__ import annotations

import pytest

from webapp.views.negotiate import Reply, reply

STATUS = "/video-transform/00000000-0000-0000-0000-000000000000/video-generation-status"
HTML, JSON, FRAGMENT = Reply.PAGE, Reply.JSON, Reply.FRAGMENT


@pytest.mark.parametrize(
    ("path", "headers", "offers_html", "expected"),
    [
        # htmx gets a fragment wherever it asks.
        ("/jobs", {"HX-Request": "true"}, False, FRAGMENT),
        (STATUS, {"HX-Request": "true", "Accept": "application/json"}, True, FRAGMENT),
        ("/api/jobs", {"HX-Request": "true"}, False, FRAGMENT),
        # Only htmx's own value counts.
        ("/jobs", {"HX-Request": "false"}, False, HTML),
        # Pages: HTML unless JSON is preferred.
        ("/jobs", {}, False, HTML),
        ("/jobs", {"Accept": "*/*"}, False, HTML),
        ("/jobs", {"Accept": "application/json"}, False, JSON),
        ("/jobs", {"Accept": "text/html;q=0.5, application/json"}, False, JSON),
        ("/jobs", {"Accept": "text/html, application/json"}, False, HTML),
        # API paths: JSON whatever the Accept header says ...
        ("/api/jobs", {"Accept": "text/html"}, False, JSON),
        ("/auth/token", {"Accept": "text/html"}, False, JSON),
        # ... except where the view offers HTML too: there HTML only when preferred.
        (STATUS, {}, True, JSON),
        (STATUS, {"Accept": "*/*"}, True, JSON),
        (STATUS, {"Accept": "text/html, application/json"}, True, JSON),
        (STATUS, {"Accept": "text/html"}, True, HTML),
        (STATUS, {"Accept": "application/json;q=0.5, text/html"}, True, HTML),
    ],
)
def test_reply(app, path, headers, offers_html, expected):
    with app.test_request_context(path, headers=headers):
        assert reply(offers_html=offers_html) is expected


def test_expired_session_htmx_poll_is_sent_to_the_login_page(client, factory):
    job = factory.job("A", lessons=1)
    url = f"/video-transform/{job.id}/video-generation-status"
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")
    assert client.get("/jobs", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/jobs").status_code == 302


def test_csrf_refusal_is_json_for_htmx_and_a_page_for_a_form(client, auth, factory):
    auth.login(factory.user(courses=["A"]).email)
    job = factory.job("A", lessons=1)
    htmx = client.post(f"/jobs/{job.id}/generate-all", headers={"HX-Request": "true"})
    assert htmx.status_code == 400 and htmx.json["statusCode"] == 400
    form = client.post(f"/jobs/{job.id}/generate-all")
    assert form.status_code == 400 and form.mimetype == "text/html"


def test_the_server_s_own_errors_speak_plainly_on_pages(client, auth, factory):
    """A typed /logout (it takes a post) and an unknown address showed werkzeug's sentences."""
    html = {"Accept": "text/html"}
    auth.login(factory.user(courses=["Course A"]).email)
    missing = client.get("/no-such-page", headers=html)
    assert missing.status_code == 404 and "There is no page at this address" in missing.text
    typed = client.get("/logout", headers=html)
    assert typed.status_code == 405 and "use the page&#39;s button" in typed.text
    api = client.get("/api/no-such-thing", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json["message"].startswith("The requested URL was not found")
