"""Logging in and out, bearer tokens, CSRF, and throttled password guessing."""

import re

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import ApiToken, User

from .helpers import PASSWORD, bearer, csrf_token


def status_url(job_id):
    return f"/video-transform/{job_id}/video-generation-status"


def test_pages_need_login(client):
    response = client.get("/jobs")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_and_logout(client, auth, factory):
    user = factory.user("staff@example.com", courses=["A"])
    response = auth.login(user.email)
    assert response.status_code == 302 and response.headers["Location"] == "/jobs"
    assert client.get("/jobs").status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert auth.logout().status_code == 302
    assert client.get("/jobs").status_code == 302


def test_login_redirects_only_to_this_site(client, auth, factory):
    user = factory.user(courses=["A"])
    for target, expected in [
        ("/jobs/new", "/jobs/new"),
        ("//evil.example/x", "/jobs"),
        ("https://evil.example/", "/jobs"),
    ]:
        browser = client.application.test_client()  # logging in starts a new session each time
        token = csrf_token(browser)
        response = browser.post(
            "/login", data={"email": user.email, "password": PASSWORD, "next": target, "csrf_token": token}
        )
        assert response.headers["Location"] == expected


def test_wrong_password_is_refused_with_a_message(client, auth, factory):
    user = factory.user()
    response = auth.login(user.email, "not the password")
    assert response.status_code == 401
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert client.get("/jobs").status_code == 302
    # An unknown email gets the same answer.
    assert auth.login("nobody@example.com").status_code == 401


def test_inactive_user_cannot_log_in(app, auth, factory):
    user = factory.user()
    with app.app_context():
        db.session.get(User, user.id).active = False
        db.session.commit()
    assert auth.login(user.email).status_code == 401


def test_logout_is_a_csrf_protected_post(client, auth, factory):
    auth.login(factory.user(courses=["A"]).email)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/jobs").status_code == 200


def test_browser_posts_without_csrf_token_are_refused(client, auth, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 400
    auth.login(user.email)
    response = client.post(f"/jobs/{job.id}/rescan")
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    response = client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": "forged"})
    assert response.status_code == 400
    good = client.post(f"/jobs/{job.id}/rescan", data={"csrf_token": csrf_token(client, "/jobs")})
    assert good.status_code == 302


def test_api_token_authenticates_and_records_last_use(app, client, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=2)
    token = factory.token(user.email)
    response = client.get(status_url(job.id), headers=bearer(token))
    assert response.status_code == 200
    assert response.json["totalLessons"] == 2
    with app.app_context():
        row = db.session.scalars(sa.select(ApiToken)).one()
        assert row.last_used_at is not None
        assert token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64


def test_no_or_bad_credentials_get_401_json(client, factory):
    job = factory.job("A", lessons=1)
    for headers in ({}, bearer("lvt_not-a-token"), bearer("garbage"), {"Authorization": "Basic abc"}):
        response = client.get(status_url(job.id), headers=headers)
        assert response.status_code == 401
        assert response.json == {
            "success": False,
            "statusCode": 401,
            "error": "Unauthorized",
            "message": response.json["message"],
        }


def test_revoked_token_is_refused(app, client, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    token = factory.token(user.email)
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 200
    from webapp.services import tokens

    with app.app_context():
        row = db.session.scalars(sa.select(ApiToken)).one()
        assert tokens.revoke_api_token(db.session.get(User, user.id), row.id)
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 401


def test_tokens_page_creates_shows_once_and_revokes(client, auth, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    auth.login(user.email)
    answer = client.post(
        "/account/tokens", data={"name": "LMS sync", "csrf_token": csrf_token(client, "/jobs")}
    )
    # A redirect: reloading the page it leads to does not make a second token.
    assert answer.status_code == 303 and answer.headers["Location"] == "/account/tokens"
    assert "lvt_" not in answer.get_data(as_text=True)
    html = client.get("/account/tokens").get_data(as_text=True)
    token = html.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("lvt_")
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert "LMS sync" in listing and token not in listing  # shown only once
    assert listing.count("<td>LMS sync</td>") == 1
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 200
    token_id = listing.split("/account/tokens/")[1].split("/revoke")[0]
    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(client, "/jobs")})
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 401
    # A revoked token leaves the list of those that work (on a phone it looked like one of them)
    # for a folded list of its own; the name field has a label a person sees.
    listing = client.get("/account/tokens").get_data(as_text=True)
    working, _, revoked = listing.partition('<details class="revoked-tokens">')
    assert "<td>LMS sync</td>" not in working and "You have no working tokens." in working
    assert "<summary>Revoked tokens (1)</summary>" in revoked and "<td>LMS sync</td>" in revoked
    assert re.search(r'<label for="name">Token name', listing)


def test_a_repeated_token_name_is_numbered_so_working_tokens_can_be_told_apart(client, auth, factory):
    # Two working tokens both called "LMS sync" left a person guessing which one to revoke.
    user = factory.user(courses=["A"])
    auth.login(user.email)
    for _ in range(3):
        client.post("/account/tokens", data={"name": "LMS sync", "csrf_token": csrf_token(client, "/jobs")})
        shown = client.get("/account/tokens").get_data(as_text=True)
    assert "LMS sync (3)" in shown.split('id="new-token">')[0]  # the new token is shown with its name
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert re.findall(r"<td>(LMS sync[^<]*)</td>", listing) == ["LMS sync (3)", "LMS sync (2)", "LMS sync"]
    # A revoked token's name is free again, and a name at the length limit stays within it.
    first = listing.split("/account/tokens/")[-1].split("/revoke")[0]
    client.post(f"/account/tokens/{first}/revoke", data={"csrf_token": csrf_token(client, "/jobs")})
    long = "x" * 100
    for name in ("LMS sync", long, long):
        client.post("/account/tokens", data={"name": name, "csrf_token": csrf_token(client, "/jobs")})
    working = client.get("/account/tokens").get_data(as_text=True).partition("revoked-tokens")[0]
    names = re.findall(r"<td>([^<]*)</td>", working)
    assert names.count("LMS sync") == 1 and "x" * 96 + " (2)" in names and long in names


def test_auth_token_endpoint_issues_a_signed_bearer_token(client, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    response = client.post("/auth/token", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json["tokenType"] == "Bearer" and response.json["expiresIn"] == 3600
    assert client.get(status_url(job.id), headers=bearer(response.json["accessToken"])).status_code == 200
    assert client.post("/auth/token", json={"email": user.email, "password": "nope"}).status_code == 401
    assert client.post("/auth/token", data="email=x").status_code == 415
    assert client.post("/auth/token", json={"email": user.email}).status_code == 400
    assert client.post("/auth/token", json=["not", "an", "object"]).status_code == 400


def test_signed_token_expires_and_dies_with_a_password_change(app, client, factory):
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    token = client.post("/auth/token", json={"email": user.email, "password": PASSWORD}).json["accessToken"]
    app.config["AUTH_TOKEN_TTL"] = -1
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 401
    app.config["AUTH_TOKEN_TTL"] = 3600
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 200
    factory.user(user.email, password="a brand new password")
    assert client.get(status_url(job.id), headers=bearer(token)).status_code == 401


def test_bearer_header_overrides_the_session(client, auth, factory):
    """A request with a bearer header is judged by it alone, never by the cookie."""
    user = factory.user(courses=["A"])
    job = factory.job("A", lessons=1)
    auth.login(user.email)
    assert client.get(status_url(job.id)).status_code == 200
    assert client.get(status_url(job.id), headers=bearer("lvt_wrong")).status_code == 401


@pytest.mark.parametrize("path", ["/login", "/auth/token"])
def test_repeated_wrong_passwords_are_throttled_per_account_and_address(app, factory, path):
    victim = factory.user("victim@example.com")
    other = factory.user("other@example.com")

    def attempt(email, password, addr="10.0.0.1"):
        client = app.test_client()  # a fresh browser each time: cookies do not matter
        env = {"REMOTE_ADDR": addr}
        if path == "/login":
            data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
            return client.post(path, data=data, environ_base=env)
        return client.post(path, json={"email": email, "password": password}, environ_base=env)

    for _ in range(5):
        assert attempt(victim.email, "wrong").status_code == 401
    blocked = attempt(victim.email, PASSWORD)
    assert blocked.status_code == 429  # even the right password waits now
    assert "Too many failed attempts" in blocked.get_data(as_text=True)
    assert "Retry-After" in blocked.headers
    # Another account from the same address, and the same account from elsewhere, are not blocked.
    assert attempt(other.email, PASSWORD).status_code in (200, 302)
    assert attempt(victim.email, PASSWORD, addr="10.0.0.2").status_code in (200, 302)


def test_successful_logins_are_not_counted(client, factory):
    user = factory.user()
    for _ in range(8):
        response = client.post("/auth/token", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200


def test_a_missing_token_and_an_invalid_one_are_told_apart(client, factory):
    job = factory.job("A", lessons=1)
    missing = client.get(status_url(job.id))
    invalid = client.get(status_url(job.id), headers=bearer("lvt_not-a-token"))
    malformed = client.get(status_url(job.id), headers={"Authorization": "Basic abc"})
    assert (missing.status_code, invalid.status_code, malformed.status_code) == (401, 401, 401)
    assert missing.json["message"] == (
        "Authentication required: log in or send an Authorization: Bearer token."
    )
    assert invalid.json["message"] == "The bearer token is not valid: it is unknown, revoked or expired."
    assert malformed.json["message"] == "The Authorization header must read 'Bearer <token>'."
    # RFC 6750's challenge says the same to programs.
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert invalid.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert malformed.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


def test_the_login_redirect_keeps_the_path_without_a_stray_question_mark(client, factory):
    from urllib.parse import parse_qs, urlsplit

    def next_of(location: str) -> str:
        return parse_qs(urlsplit(location).query)["next"][0]

    assert next_of(client.get("/jobs").headers["Location"]) == "/jobs"
    assert next_of(client.get("/jobs?q=thai&page=2").headers["Location"]) == "/jobs?q=thai&page=2"
    job = factory.job("A", lessons=1)
    fragment = client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"})
    assert next_of(fragment.headers["HX-Redirect"]) == f"/jobs/{job.id}"
    login = client.get("/login?next=/jobs").get_data(as_text=True)
    assert 'value="/jobs"' in login  # the login form carries it on


def test_after_the_session_ended_mid_action_login_returns_to_the_page(client, auth, factory):
    """A button pressed (or a panel polled) after the session ended sends the user to log in and
    then back to the page they were on, told why: not to the action's URL (a 405 page) or to a
    bare fragment."""
    from urllib.parse import parse_qs, urlsplit

    def next_of(location: str) -> str:
        return parse_qs(urlsplit(location).query)["next"][0]

    user = factory.user("back@example.com", courses=["A"])
    job = factory.job("A", lessons=1)
    page = f"/jobs/{job.id}"
    auth.login(user.email)
    token = csrf_token(client, page)
    client.post("/logout", data={"csrf_token": token})  # e.g. in another tab

    pressed = client.post(
        f"{page}/generate",
        data={"csrf_token": token, "lesson": 1},
        headers={"Referer": f"http://localhost{page}"},
    )
    assert pressed.status_code == 302 and next_of(pressed.headers["Location"]) == page
    told = client.get(pressed.headers["Location"]).get_data(as_text=True)
    assert "Your session has ended" in told

    polled = client.get(
        f"/video-transform/{job.id}/video-generation-status",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://localhost{page}?tab=1"},
    )
    assert polled.status_code == 401 and next_of(polled.headers["HX-Redirect"]) == f"{page}?tab=1"
    # Another site's page is never where the login leads.
    elsewhere = client.post(
        f"{page}/generate", data={"csrf_token": token}, headers={"Referer": "https://evil.example/x"}
    )
    assert next_of(elsewhere.headers["Location"]) == "/jobs"
    after = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": user.email,
            "password": PASSWORD,
            "next": page,
        },
    )
    assert after.headers["Location"] == page
