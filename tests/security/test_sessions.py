"""Sessions end when they should: password change, deactivation, "log out everywhere",
14 days; the remember-me cookie follows the session cookie's Secure flag; the CSRF secret
is new after logging in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest

from ..helpers import PASSWORD, bearer, csrf_token

REMEMBER = "remember_token"


def login(app, email, password=PASSWORD, remember=True):
    client = app.test_client()
    form = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if remember:
        form["remember"] = "1"
    response = client.post("/login", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client, response


def remember_cookie(response) -> SimpleCookie:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(REMEMBER + "="):
            cookie = SimpleCookie()
            cookie.load(header)
            return cookie[REMEMBER]
    raise AssertionError("no remember-me cookie set")


def only_remembered(app, client):
    """A browser restarted: the session cookie is gone, the remember-me cookie stays."""
    fresh = app.test_client()
    fresh.set_cookie(REMEMBER, client.get_cookie(REMEMBER).value)
    return fresh


def is_logged_in(client) -> bool:
    return client.get("/jobs").status_code == 200


def test_remember_cookie_is_secure_with_https_and_lasts_14_days(app, factory):
    user = factory.user()
    app.config.update(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True)
    _, response = login(app, user.email)
    cookie = remember_cookie(response)
    assert cookie["secure"] and cookie["httponly"]
    expires = datetime.strptime(cookie["expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert abs(expires - datetime.now(UTC) - timedelta(days=14)) < timedelta(minutes=5)


def test_remember_cookie_settings_follow_the_configuration(tmp_path, config, factory):
    from webapp import create_app

    app = create_app({**config, "SESSION_COOKIE_SECURE": True, "REMEMBER_COOKIE_DAYS": 3})
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_DURATION"] == timedelta(days=3)


def test_remember_cookie_differs_per_login_and_expires_on_the_server(app, factory, monkeypatch):
    user = factory.user()
    first, one = login(app, user.email)
    now = time.time()
    monkeypatch.setattr("time.time", lambda: now + 5)  # a later login (login times are whole seconds)
    _, two = login(app, user.email)
    monkeypatch.undo()
    assert remember_cookie(one).value != remember_cookie(two).value
    assert is_logged_in(only_remembered(app, first))
    # Fifteen days on, the same cookie is refused even if the browser kept it.
    later = time.time() + 15 * 24 * 3600
    monkeypatch.setattr("webapp.auth.time.time", lambda: later)
    assert not is_logged_in(only_remembered(app, first))
    assert not is_logged_in(first)


def test_password_change_ends_every_other_session(app, factory):
    user = factory.user()
    laptop, _ = login(app, user.email)
    phone, _ = login(app, user.email)
    restarted = only_remembered(app, phone)
    form = {
        "current_password": PASSWORD,
        "new_password": "a brand new password",
        "confirm_password": "a brand new password",
        "csrf_token": csrf_token(laptop, "/account"),
    }
    assert laptop.post("/account/password", data=form).status_code == 302
    assert is_logged_in(laptop)  # the browser that changed it stays in
    assert not is_logged_in(phone)
    assert not is_logged_in(restarted)
    assert not is_logged_in(only_remembered(app, phone))


def test_password_change_from_the_cli_ends_sessions(app, factory, runner):
    user = factory.user()
    browser, _ = login(app, user.email)
    result = runner.invoke(args=["users", "create", user.email, "--password", "another password!"])
    assert result.exit_code == 0, result.output
    assert not is_logged_in(browser) and not is_logged_in(only_remembered(app, browser))


def test_deactivating_a_user_ends_every_session(app, factory, runner):
    user = factory.user()
    browser, _ = login(app, user.email)
    token = app.test_client().post("/auth/token", json={"email": user.email, "password": PASSWORD}).json
    assert runner.invoke(args=["users", "deactivate", user.email]).exit_code == 0
    assert not is_logged_in(browser) and not is_logged_in(only_remembered(app, browser))
    assert app.test_client().get("/api/jobs", headers=bearer(token["accessToken"])).status_code == 401
    assert runner.invoke(args=["users", "activate", user.email]).exit_code == 0
    assert not is_logged_in(browser)  # coming back does not revive old sessions
    login(app, user.email)


def test_log_out_everywhere(app, factory):
    user = factory.user()
    laptop, _ = login(app, user.email)
    phone, _ = login(app, user.email)
    restarted = only_remembered(app, phone)
    signed = app.test_client().post("/auth/token", json={"email": user.email, "password": PASSWORD}).json
    page = laptop.get("/account").get_data(as_text=True)
    assert "Log out everywhere" in page
    response = laptop.post("/account/logout-everywhere", data={"csrf_token": csrf_token(laptop, "/account")})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    for client in (laptop, phone, restarted):
        assert not is_logged_in(client)
    assert app.test_client().get("/api/jobs", headers=bearer(signed["accessToken"])).status_code == 401
    fresh, _ = login(app, user.email)  # logging in again works
    assert is_logged_in(fresh)


def test_csrf_token_from_before_login_is_refused_after_it(app, factory):
    """A token planted before login (or read from the login page) does not carry over."""
    user = factory.user()
    client = app.test_client()
    before = csrf_token(client)
    form = {"email": user.email, "password": PASSWORD, "csrf_token": before}
    assert client.post("/login", data=form).status_code == 302
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert is_logged_in(client)
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/jobs")}).status_code == 302


@pytest.mark.parametrize("session_id", ["1", "1:0", "x:0:0", "1:0:99999999999999999999", "1:-1:5"])
def test_forged_or_old_session_ids_are_refused(app, factory, session_id):
    factory.user()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    assert not is_logged_in(client)


def test_logging_out_ends_that_login_on_the_server_too(app, factory):
    """A session or remember-me cookie copied before logging out (a shared computer, a stolen
    cookie) does not work after it; the user's other logins go on."""
    user = factory.user()
    laptop, _ = login(app, user.email)
    phone, _ = login(app, user.email)
    copied_session = app.test_client()
    copied_session.set_cookie("session", laptop.get_cookie("session").value)
    copied_remember = only_remembered(app, laptop)
    assert is_logged_in(copied_session) and is_logged_in(copied_remember)

    response = laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/account")})
    assert response.status_code == 302
    for client in (laptop, copied_session, copied_remember):
        assert not is_logged_in(client)
    assert is_logged_in(phone)
    again, _ = login(app, user.email)
    assert is_logged_in(again)
