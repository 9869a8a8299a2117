"""Logging in: HEAD behaves as GET, every password check counts, counted before it runs."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..helpers import PASSWORD, csrf_token


def logged_in(client) -> bool:
    return client.get("/jobs").status_code == 200


def test_head_login_with_a_form_body_does_not_log_in(app, client, factory):
    user = factory.user()
    token = csrf_token(client)
    response = client.open(
        "/login", method="HEAD", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 200  # the login page's head, as for GET
    assert not logged_in(client)


def _get_routes(app):
    """Every GET route of ours that takes no argument."""
    skip = {"static", "fonts.static"}
    for rule in app.url_map.iter_rules():
        dashboard = rule.endpoint.startswith("rq_dashboard")
        if "GET" in rule.methods and not rule.arguments and rule.endpoint not in skip and not dashboard:
            yield rule.rule


def test_head_answers_as_get_everywhere(app, client, auth, factory):
    admin = factory.user(role="admin")
    job = factory.job("Course A", lessons=1)
    auth.login(admin.email)
    paths = [*_get_routes(app), f"/jobs/{job.id}", f"/api/jobs/{job.id}", "/login?next=/jobs", "/rq/"]
    assert len(paths) > 8
    for path in paths:
        get, head = client.get(path), client.head(path)
        assert (head.status_code, head.mimetype) == (get.status_code, get.mimetype), path
        assert head.get_data() == b"", path


def test_every_password_check_counts_toward_one_limit(app, factory, client, auth):
    """Wrong passwords on the login page, /auth/token and the password form share one count."""
    victim = factory.user("victim@example.com")
    other = app.test_client()
    for _ in range(2):
        page = other.post(
            "/login", data={"email": victim.email, "password": "wrong", "csrf_token": csrf_token(other)}
        )
        assert page.status_code == 401
    for _ in range(2):
        assert other.post("/auth/token", json={"email": victim.email, "password": "no"}).status_code == 401
    auth.login(victim.email)  # a success gives its count back: still 4 used
    form = {
        "current_password": "wrong",
        "new_password": "another password",
        "confirm_password": "another password",
        "csrf_token": csrf_token(client, "/account"),
    }
    assert client.post("/account/password", data=form).status_code == 422  # the 5th failure
    blocked = client.post("/account/password", data={**form, "current_password": PASSWORD})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    assert other.post("/auth/token", json={"email": victim.email, "password": PASSWORD}).status_code == 429


@pytest.fixture
def threaded_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_parallel_wrong_passwords_cannot_pass_the_limit_together(app, factory, threaded_server):
    """20 attempts at once: only the limit's 5 reach the password check, the rest get 429."""
    victim = factory.user("victim@example.com")

    def attempt(_):
        body = json.dumps({"email": victim.email, "password": "wrong guess"}).encode()
        request = urllib.request.Request(
            f"{threaded_server}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(attempt, range(20)))
    assert codes.count(401) == 5, codes
    assert codes.count(429) == 15, codes


def test_a_wrong_password_costs_the_same_for_every_kind_of_account(app, client, factory, monkeypatch):
    """One password hash for an unknown email, a known one, and one waiting for its set-password
    link (invited, or reset by an administrator): that one answered ~0.1 s sooner, so anyone
    could list the accounts whose link is live."""
    import hashlib

    from webapp.models import Role
    from webapp.services import user_admin

    factory.user("known@example.com")
    with app.app_context():
        user_admin.invite_user(None, "invited@example.com", Role.STAFF)
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))

    def hashes_spent(email: str) -> int:
        calls.clear()
        assert client.post("/auth/token", json={"email": email, "password": "guess"}).status_code == 401
        return len(calls)

    hashes_spent("warm-up@example.com")  # the stand-in hash is made once, on first use
    assert [hashes_spent(e) for e in ("nobody@example.com", "known@example.com", "invited@example.com")] == [
        1,
        1,
        1,
    ]


def test_one_ipv6_network_counts_as_one_address(app, factory):
    """The limit was per address: a host with an IPv6 /64 (2^64 addresses) guessed without end.
    A /64 is one sender; another network is not held up by it."""
    victim = factory.user("victim@example.com")
    attacker = app.test_client()

    def guess(address: str, password: str = "guess") -> int:
        return attacker.post(
            "/auth/token",
            json={"email": victim.email, "password": password},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    answers = [guess(f"2001:db8:1:2::{n + 1:x}") for n in range(8)]
    assert answers == [401] * 5 + [429] * 3
    assert guess("2001:db8:1:3::1", PASSWORD) == 200  # the next /64
    mixed = [guess("::ffff:198.51.100.7" if n % 2 else "198.51.100.7") for n in range(6)]
    assert mixed == [401] * 5 + [429]  # one IPv4 sender, however written


def test_a_deactivated_user_with_the_right_password_is_told_so(app, client, factory):
    """ "Wrong email or password" was false: they retried until the limit locked them out. Only
    whoever knows the password learns it; a wrong one still says wrong."""
    from webapp.services import user_admin

    user = factory.user("gone@example.com")
    with app.app_context():
        user_admin.set_active("gone@example.com", False)
    form = {"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)}
    page = client.post("/login", data=form)
    assert page.status_code == 401 and "This account is deactivated" in page.get_data(as_text=True)
    wrong = client.post("/login", data={**form, "password": "not it"})
    assert wrong.status_code == 401 and "Wrong email or password." in wrong.get_data(as_text=True)
    api = client.post("/auth/token", json={"email": user.email, "password": PASSWORD})
    assert api.status_code == 401 and api.json["message"].startswith("This account is deactivated")
    assert client.get("/jobs").status_code == 302  # not logged in
