"""After logging in, `next` leads only to a path on this site."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ..helpers import PASSWORD, csrf_token

HOSTILE = [
    "/\t/evil.example",  # browsers drop the tab: //evil.example
    "\n//evil.example",
    "/\r\n/evil.example",
    "\r\nSet-Cookie: x=1",
    " //evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "HTTPS:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/jobs\x0bx",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_login_never_redirects_off_site(client, factory, target):
    user = factory.user()
    form = {"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client), "next": target}
    response = client.post("/login", data=form)
    assert response.status_code == 302
    assert response.headers["Location"] == "/jobs"


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0d%0a/evil.example", "%0d%0aX-Test:%201"])
def test_next_in_the_query_string_never_leads_off_site(client, auth, factory, target):
    """Already logged in: GET /login?next=… redirects at once, and never off site or to a 500."""
    auth.login(factory.user().email)
    response = client.get(f"/login?next={target}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/jobs"


@pytest.mark.parametrize("target", ["/jobs/abc?page=2", "/account/tokens", "/jobs?q=" + quote("a b")])
def test_same_site_paths_are_kept(client, factory, target):
    user = factory.user()
    form = {"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client), "next": target}
    assert client.post("/login", data=form).headers["Location"] == target


def test_a_nul_in_next_is_refused(client, factory):
    user = factory.user()
    form = {
        "email": user.email,
        "password": PASSWORD,
        "csrf_token": csrf_token(client),
        "next": "\x00//evil.example",
    }
    response = client.post("/login", data=form)
    assert response.status_code == 400 and "Location" not in response.headers
