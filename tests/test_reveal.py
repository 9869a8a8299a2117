"""Secrets shown once after a redirect (views/reveal.py), when Redis cannot keep them: the
action still happens once and its answer shows the secret itself, as before the redirect."""

from __future__ import annotations

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
