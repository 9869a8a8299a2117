"""Secrets shown once after a redirect (views/reveal.py), when Redis cannot keep them: the
action still happens once and its answer shows the secret itself, as before the redirect."""

from __future__ import annotations

import base64

from webapp import embedded_redis

from .helpers import Auth, csrf_token


def test_without_redis_the_answer_itself_shows_the_secret(outage_app, own_redis, factory):
    folder, _ = own_redis
    user = factory.user("member@example.com", courses=["Course A"])
    client = outage_app.test_client()
    Auth(client).login(user.email)
    token = csrf_token(client, "/account/tokens")

    embedded_redis.stop(folder)
    answer = client.post("/account/tokens", data={"name": "LMS", "csrf_token": token})
    assert answer.status_code == 200
    assert 'id="new-token">lvt_' in answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"

    embedded_redis.ensure_running(folder)  # back: the redirect again
    again = client.post("/account/tokens", data={"name": "CMS", "csrf_token": token})
    assert again.status_code == 303
    assert 'id="new-token">lvt_' in client.get("/account/tokens").get_data(as_text=True)


def test_a_waiting_secret_is_nowhere_whole(app, client, auth, factory, redis_url):
    """Redis (whose snapshots reach the disk) holds the secret only XORed with a pad that is in
    the user's session cookie alone."""
    from redis import Redis

    user = factory.user("member@example.com", courses=["Course A"])
    auth.login(user.email)
    answer = client.post("/account/tokens", data={"name": "LMS", "csrf_token": csrf_token(client, "/jobs")})
    assert answer.status_code == 303
    kept = Redis.from_url(redis_url)
    values = b"".join(kept.get(key) or b"" for key in kept.scan_iter("lvt:reveal:*"))
    assert values and b"lvt_" not in values and b"lvt_" not in base64.b64decode(values)
    shown = client.get("/account/tokens").get_data(as_text=True)
    token = shown.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("lvt_") and list(kept.scan_iter("lvt:reveal:*")) == []


def test_two_tabs_each_see_their_secret(client, auth, factory):
    """Two tokens made before either page is shown: both are shown, each once."""
    user = factory.user("member@example.com", courses=["Course A"])
    auth.login(user.email)
    token = csrf_token(client, "/account/tokens")
    for name in ("First", "Second"):
        assert client.post("/account/tokens", data={"name": name, "csrf_token": token}).status_code == 303
    page = client.get("/account/tokens").get_data(as_text=True)
    assert "Token “First” created." in page and "Token “Second” created." in page
    assert page.count('class="token" id="new-token') == 2
    assert "created." not in client.get("/account/tokens").get_data(as_text=True)


def test_a_reset_link_waits_for_its_own_users_page(app, client, auth, factory):
    from html import unescape

    from webapp.extensions import db
    from webapp.models import User

    admin = factory.user("root@example.com", role="admin")
    factory.user("ann@example.com", courses=["Course A"])
    factory.user("ben@example.com", courses=["Course A"])
    with app.app_context():
        ids = {u.email: u.id for u in db.session.query(User)}
    auth.login(admin.email)
    token = csrf_token(client, "/admin/users")
    ann, ben = ids["ann@example.com"], ids["ben@example.com"]
    assert client.post(f"/admin/users/{ann}/link", data={"csrf_token": token}).status_code == 303
    assert "set-password-link" not in client.get(f"/admin/users/{ben}").get_data(as_text=True)
    page = client.get(f"/admin/users/{ann}").get_data(as_text=True)
    link = unescape(page.split('id="set-password-link">')[1].split("<")[0])
    assert "/set-password?token=" in link
