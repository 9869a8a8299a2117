"""Signed webhooks: a real HTTP receiver verifies each delivery with the standardwebhooks package
and sees a failed delivery retried, then succeed; endpoints stay within their course."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from standardwebhooks.webhooks import Webhook as Verifier
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .helpers import bearer, csrf_token


class Receiver:
    """An HTTP endpoint that records every request; it answers `fail_first` times with 500."""

    def __init__(self, fail_first: int = 0):
        self.requests: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ, start_response):
        request = Request(environ)
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, request.get_data()))
        status = 500 if len(self.requests) <= self.fail_first else 200
        return Response("ok", status=status)(environ, start_response)

    def messages(self, secret: str) -> list[dict]:
        """Every request, verified (raises if a signature does not match), with its headers."""
        verifier = Verifier(secret)
        return [
            {**verifier.verify(body, headers), "id": headers["webhook-id"]} for headers, body in self.requests
        ]


@pytest.fixture
def receiver():
    made = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for one in made:
        one.server.shutdown()


@pytest.fixture
def member(app, factory):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_INTERVALS=[0, 0, 0])
    user = factory.user("member@example.com", courses=["Course A"])
    return bearer(factory.token(user.email))


def test_deliveries_are_signed_retried_and_logged(app, client, factory, member, receiver, work):
    endpoint = receiver(fail_first=1)
    created = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member)
    assert created.status_code == 201, created.json
    hook, secret = created.json, created.json["secret"]
    assert secret.startswith("whsec_") and hook["events"] == [
        "render.completed",
        "render.failed",
        "render.cancelled",
        "job.completed",
    ]
    assert "secret" not in client.get("/api/webhooks", headers=member).json[0]

    job = factory.job("Course A", lessons=1)
    body = {"jobId": job.id, "lessonPath": job.lessons[0]}
    render_id = client.post("/video-transform/generate-video", json=body, headers=member).json["renderId"]
    work()  # renders, then delivers (the first attempt fails, RQ retries it)

    messages = endpoint.messages(secret)
    assert sorted(m["type"] for m in messages) == ["job.completed", "render.completed", "render.completed"]
    first, retried = [m for m in messages if m["type"] == "render.completed"]
    finished = next(m for m in messages if m["type"] == "job.completed")
    assert first["id"] == retried["id"] != finished["id"]  # a retry keeps its webhook-id
    data = retried["data"]
    assert data["videoJobId"] == job.id and data["videoGenerationStatus"] == "completed"
    assert data["render"]["renderId"] == render_id and data["render"]["state"] == "completed"
    assert finished["data"]["completedLessons"] == 1

    log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert sorted((d["event"], d["attempt"], d["statusCode"], d["succeeded"]) for d in log) == [
        ("job.completed", 1, 200, True),
        ("render.completed", 1, 500, False),
        ("render.completed", 2, 200, True),
    ]
    assert all(d["latencyMs"] is not None for d in log)

    # Redeliver the failed attempt: the same message id, as attempt 3; and a test message.
    # Each answer says which message goes out, as which attempt (what the log will show).
    failed = next(d for d in log if not d["succeeded"])
    queued = client.post(f"/api/webhooks/deliveries/{failed['id']}/redeliver", headers=member)
    assert queued.status_code == 202 and queued.is_json
    assert queued.json == {"messageId": failed["messageId"], "event": "render.completed", "attempt": 3}
    sent = client.post(f"/api/webhooks/{hook['id']}/test", headers=member)
    assert sent.status_code == 202 and sent.json["event"] == "webhook.test" and sent.json["attempt"] == 1
    work()
    again, test = endpoint.messages(secret)[3:]
    assert again["id"] == first["id"] and test["type"] == "webhook.test"
    assert test["id"] == sent.json["messageId"] != failed["messageId"]
    newest = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    redelivered = next(d for d in newest if d["attempt"] == 3)
    assert redelivered["messageId"] == failed["messageId"] and redelivered["succeeded"]

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'lvt_webhook_deliveries_total{result="failed"} 1.0' in metrics
    assert 'lvt_webhook_deliveries_total{result="delivered"} 4.0' in metrics


def test_events_filter_what_an_endpoint_hears(app, client, factory, member, receiver, work):
    endpoint = receiver()
    created = client.post(
        "/api/webhooks", json={"url": endpoint.url, "events": ["job.completed"]}, headers=member
    )
    assert created.status_code == 201 and created.json["events"] == ["job.completed"]
    job = factory.job("Course A", lessons=1)
    client.post(
        "/video-transform/generate-video",
        json={"jobId": job.id, "lessonPath": job.lessons[0]},
        headers=member,
    )
    work()
    assert [m["type"] for m in endpoint.messages(created.json["secret"])] == ["job.completed"]
    bad = client.post(
        "/api/webhooks", json={"url": endpoint.url, "events": ["render.exploded"]}, headers=member
    )
    assert bad.status_code == 400 and bad.json["message"].startswith("'events[0]': Must be one of")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "ftp://93.184.216.34/hook",
        "http://user:pw@93.184.216.34/hook",
        "http:///no-host",
        "http://no-such-host.invalid/hook",
        # IPv6 addresses carrying an IPv4 one: NAT64, 6to4, IPv4-compatible, IPv4-mapped
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:7f00:1::]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:10.0.0.5]/hook",
    ],
)
def test_private_and_odd_urls_are_refused(app, client, factory, url):
    user = factory.user(courses=["Course A"])
    response = client.post("/api/webhooks", json={"url": url}, headers=bearer(factory.token(user.email)))
    assert response.status_code == 422, response.json


def test_refusals_do_not_tell_inner_names_from_unknown_ones(client, factory):
    """A name that resolves inside the network and one that does not resolve at all are refused
    in the same words: staff could otherwise map the web server's internal host names."""
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))

    def refusal(url: str) -> str:
        answer = client.post("/api/webhooks", json={"url": url}, headers=headers)
        assert answer.status_code == 422
        return answer.json["message"]

    assert refusal("http://localhost/hook") == refusal("http://no-such-host.invalid/hook")
    assert "public address" in refusal("http://localhost/hook")
    # ... and in words that fit both: a name that could not be looked up (a typo, a DNS failure)
    # was said to be "not public" only.
    assert "could not be resolved" in refusal("http://no-such-host.invalid/hook")


def test_a_course_registers_a_url_once(client, factory):
    """The same URL twice for one course sent every event twice (and deleting one said nothing
    more would be sent there); another course may use it."""
    user = factory.user(courses=["Course A"])
    headers = bearer(factory.token(user.email))
    url = "https://93.184.216.34/hook"
    assert client.post("/api/webhooks", json={"url": url}, headers=headers).status_code == 201
    again = client.post("/api/webhooks", json={"url": url}, headers=headers)
    assert again.status_code == 422 and "already has a webhook for that URL" in again.json["message"]
    other = bearer(factory.token(factory.user(courses=["Course B"]).email))
    assert client.post("/api/webhooks", json={"url": url}, headers=other).status_code == 201


def test_a_public_address_is_accepted(client, factory):
    user = factory.user(courses=["Course A"])
    response = client.post(
        "/api/webhooks", json={"url": "https://93.184.216.34/hook"}, headers=bearer(factory.token(user.email))
    )
    assert response.status_code == 201


def test_an_endpoint_that_turns_private_is_refused_at_delivery(app, client, member, receiver, work):
    endpoint = receiver()
    hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False  # as if its name now pointed inside the network
    client.post(f"/api/webhooks/{hook['id']}/test", headers=member)
    work()
    assert endpoint.requests == []
    log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert log and all("public address" in d["error"] for d in log)


def test_webhooks_stay_within_their_course(app, client, factory, member, receiver, work, redis_url):
    endpoint = receiver()
    hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
    client.post(f"/api/webhooks/{hook['id']}/test", headers=member)
    # RQ holds ids only (its dashboard shows them unescaped); the message is in the database.
    [queued] = Queue("webhooks", connection=Redis.from_url(redis_url)).jobs
    assert set(queued.kwargs) == {"message_id", "first_attempt"}
    assert queued.description == f"webhook message {queued.kwargs['message_id']}"
    work()
    delivery = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json[0]
    other = bearer(factory.token(factory.user(courses=["Course B"]).email))
    assert client.get("/api/webhooks", headers=other).json == []
    assert client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=other).status_code == 404
    assert client.post(f"/api/webhooks/{hook['id']}/test", headers=other).status_code == 404
    assert (
        client.post(f"/api/webhooks/deliveries/{delivery['id']}/redeliver", headers=other).status_code == 404
    )
    assert client.delete(f"/api/webhooks/{hook['id']}", headers=other).status_code == 404
    course_b_job = factory.job("Course B", lessons=1)
    body = {"jobId": course_b_job.id, "lessonPath": course_b_job.lessons[0]}
    client.post("/video-transform/generate-video", json=body, headers=other)
    work()
    assert len(endpoint.requests) == 1  # course B's render told course A nothing
    assert client.delete(f"/api/webhooks/{hook['id']}", headers=member).status_code == 204
    assert client.get("/api/webhooks", headers=member).json == []


def test_the_webhooks_page(app, client, auth, factory, receiver):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    user = factory.user(courses=["Course A"])
    auth.login(user.email)
    endpoint = receiver()
    page = client.get("/webhooks")
    assert page.status_code == 200 and "Add an endpoint" in page.get_data(as_text=True)
    with app.app_context():
        from webapp.services import jobs

        course_id = jobs.find_course("Course A").id
    form = {"csrf_token": csrf_token(client, "/webhooks"), "course": course_id, "url": endpoint.url}
    created = client.post("/webhooks", data=form)
    # A redirect (reloading the page registers nothing again) to the page that shows the secret.
    assert created.status_code == 303 and created.headers["Location"] == "/webhooks"
    assert "whsec_" not in created.get_data(as_text=True)
    shown = client.get("/webhooks")
    text = shown.get_data(as_text=True)
    assert "whsec_" in text and "Webhook for Course A created." in text
    assert shown.headers["Cache-Control"] == "no-store"
    assert "whsec_" not in client.get("/webhooks").get_data(as_text=True)  # shown once
    assert len(client.get("/api/webhooks").json) == 1
    refused = client.post("/webhooks", data={**form, "url": "ftp://x"})
    assert refused.status_code == 422 and "http://" in refused.get_data(as_text=True)
    hook_id = client.get("/api/webhooks").json[0]["id"]
    deleted = client.post(f"/webhooks/{hook_id}/delete", data={"csrf_token": csrf_token(client, "/webhooks")})
    assert deleted.status_code == 302 and client.get("/api/webhooks").json == []


def test_tests_and_redeliveries_are_limited_per_course(app, client, factory, member, receiver, work):
    """A course cannot flood the workers with manual sends; another course can still send."""
    app.config["WEBHOOK_SEND_LIMIT"] = "3 per minute"
    endpoint = receiver()
    hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
    assert client.post(f"/api/webhooks/{hook['id']}/test", headers=member).status_code == 202
    work()
    [delivery] = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert client.post(f"/api/webhooks/{hook['id']}/test", headers=member).status_code == 202
    redeliver = f"/api/webhooks/deliveries/{delivery['id']}/redeliver"
    assert client.post(redeliver, headers=member).status_code == 202

    for url in (f"/api/webhooks/{hook['id']}/test", redeliver):
        refused = client.post(url, headers=member)
        assert refused.status_code == 429, refused.json
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        assert "test and repeated deliveries" in refused.json["message"]
    work()
    assert len(endpoint.requests) == 3  # the refused ones were never queued

    other = bearer(factory.token(factory.user(courses=["Course B"]).email))
    theirs = client.post("/api/webhooks", json={"url": endpoint.url}, headers=other).json
    assert client.post(f"/api/webhooks/{theirs['id']}/test", headers=other).status_code == 202


def test_the_page_watches_a_send_until_it_is_delivered(app, client, auth, factory, receiver, work):
    """After Send test (or Redeliver) the log asks again every 2 s, answered 204 until a newer
    delivery is in, then says what became of it (once: then forgotten). Another course's staff
    cannot read the log."""
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_INTERVALS=[0, 0, 0])
    user = factory.user("watcher@example.com", courses=["Course A"])
    token = bearer(factory.token(user.email))
    hook = client.post("/api/webhooks", json={"url": receiver(fail_first=1).url}, headers=token).json
    log_url = f"/webhooks/{hook['id']}/log"
    auth.login(user.email)
    form = {"csrf_token": csrf_token(client, "/webhooks")}
    sent = client.post(f"/webhooks/{hook['id']}/test", data=form)
    assert sent.status_code == 302 and sent.headers["Location"] == f"/webhooks#webhook-{hook['id']}"
    page = client.get("/webhooks").get_data(as_text=True)
    assert "Sending <code>webhook.test</code>: it shows below" in page
    assert f'hx-get="{log_url}?seen=0"' in page and 'hx-trigger="every 2s"' in page
    assert client.get(f"{log_url}?seen=0").status_code == 204  # not sent yet

    work()  # attempt 1 is answered 500, retried at once: 200
    done = client.get(f"{log_url}?seen=0")
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and "every 2s" not in text
    assert "Delivered: <code>webhook.test</code> (attempt 2) answered 200." in text
    assert 'id="delivery-note-' in text and 'hx-swap-oob="innerHTML"' in text
    assert text.count("<tr class=") == 2  # the failed attempt and its retry
    assert "(attempt 2) answered 200" in client.get("/webhooks").get_data(as_text=True)
    assert "answered 200" not in client.get("/webhooks").get_data(as_text=True)  # said once

    # Redeliver the failed attempt: it goes as attempt 3.
    failed = client.get(f"/api/webhooks/{hook['id']}/deliveries").json[-1]
    assert failed["attempt"] == 1 and not failed["succeeded"]
    client.post(f"/webhooks/deliveries/{failed['id']}/redeliver", data=form)
    assert "Sending <code>webhook.test</code>" in client.get("/webhooks").get_data(as_text=True)
    work()
    assert "(attempt 3) answered 200." in client.get(f"{log_url}?seen=0").get_data(as_text=True)


def test_the_page_says_when_a_send_fails_or_does_not_go(app, client, auth, factory, receiver, work):
    """An endpoint that fails: the page says so and keeps watching for the retries (a poll that
    has seen that failure gets 204 until the next one); after a minute it stops asking."""
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_INTERVALS=[60])  # no retry in this test
    user = factory.user("watcher@example.com", courses=["Course A"])
    token = bearer(factory.token(user.email))
    hook = client.post("/api/webhooks", json={"url": receiver().url}, headers=token).json
    log_url = f"/webhooks/{hook['id']}/log"
    broken = client.post("/api/webhooks", json={"url": receiver(fail_first=99).url}, headers=token).json
    auth.login(user.email)
    form = {"csrf_token": csrf_token(client, "/webhooks")}
    client.post(f"/webhooks/{broken['id']}/test", data=form)
    work()
    retrying = client.get(f"/webhooks/{broken['id']}/log?seen=0").get_data(as_text=True)
    assert "(attempt 1) failed: HTTP 500.</span> Failed deliveries are tried again after 1 min" in retrying
    seen = client.get(f"/api/webhooks/{broken['id']}/deliveries").json[0]["id"]
    assert f'hx-get="/webhooks/{broken["id"]}/log?seen={seen}"' in retrying
    assert client.get(f"/webhooks/{broken['id']}/log?seen={seen}").status_code == 204

    # After a minute the page stops asking: late when nothing went, failed when it did.
    client.post(f"/webhooks/{hook['id']}/test", data=form)  # no worker takes it
    from webapp.views import webhooks as views

    minute, views.WATCH_SECONDS = views.WATCH_SECONDS, 0
    try:
        late = client.get(f"{log_url}?seen=0").get_data(as_text=True)
        given_up = client.get(f"/webhooks/{broken['id']}/log?seen={seen}").get_data(as_text=True)
    finally:
        views.WATCH_SECONDS = minute
    assert "has not gone yet" in late and "every 2s" not in late
    assert (
        "failed: HTTP 500.</span> Any later attempts (after 1 min)" in given_up and "every 2s" not in given_up
    )

    auth.logout()
    other = factory.user("other-course@example.com", courses=["Course B"])
    auth.login(other.email)
    assert client.get(log_url).status_code == 404
    auth.logout()
    assert client.get(log_url).status_code in (302, 401)


def test_the_page_says_when_sends_are_limited(app, client, auth, factory, receiver):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_SEND_LIMIT="1 per minute")
    user = factory.user("pager@example.com", courses=["Course A"])
    token = bearer(factory.token(user.email))
    hook = client.post("/api/webhooks", json={"url": receiver().url}, headers=token).json
    auth.login(user.email)
    form = {"csrf_token": csrf_token(client, "/webhooks")}
    first = client.post(f"/webhooks/{hook['id']}/test", data=form, follow_redirects=True)
    assert "Sending <code>webhook.test</code>" in first.get_data(as_text=True)
    refused = client.post(f"/webhooks/{hook['id']}/test", data=form)
    assert refused.headers["Location"] == "/webhooks"  # not down to the webhook: the message is at the top
    second = client.get(refused.headers["Location"])
    assert second.status_code == 200 and "test and repeated deliveries" in second.get_data(as_text=True)
    assert "Failed deliveries are retried after 5 s, 30 s, 2 min, 10 min and 1 h." in second.get_data(
        as_text=True
    )


def test_deliveries_never_hold_up_housekeeping(app, client, member, receiver, redis_url):
    """Webhook deliveries have their own queue, which the housekeeping worker (the Procfile's
    `ops`) takes only when the lost-render reaper has nothing waiting."""
    from rq import SimpleWorker

    from webapp import queue, tasks

    procfile = (Path(__file__).parents[1] / "Procfile").read_text().splitlines()
    ops = next(line for line in procfile if line.startswith("ops:"))
    names = ops.split("--queue")[1:]
    order = [name.split()[0] for name in names]
    assert order == ["maintenance", "webhooks", "webhooks-slow"]

    hook = client.post("/api/webhooks", json={"url": receiver().url}, headers=member).json
    for _ in range(3):
        client.post(f"/api/webhooks/{hook['id']}/test", headers=member)
    conn = Redis.from_url(redis_url)
    reaper = Queue("maintenance", connection=conn).enqueue(tasks.reap_lost_renders)
    with app.app_context():
        worker = SimpleWorker([Queue(n, connection=conn) for n in order], connection=conn)
        worker.work(burst=True, max_jobs=1, logging_level="WARNING")
    reaper.refresh()
    assert reaper.get_status() == "finished"
    lanes = (queue.WEBHOOK_QUEUE, queue.WEBHOOK_SLOW_QUEUE)
    assert sum(Queue(name, connection=conn).count for name in lanes) == 3


def test_endpoints_that_do_not_keep_up_hold_up_only_their_course(app, client, factory, receiver, redis_url):
    """A member with endpoints that never answer (each attempt waits WEBHOOK_TIMEOUT) could fill
    the one webhook worker's time: every cancelled render told each of them. Once a course has a
    message not yet delivered, its next ones wait in the slow lane, which the worker takes only
    when the others' are done."""
    from rq import SimpleWorker

    from webapp import queue

    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_INTERVALS=[])
    mallory = bearer(factory.token(factory.user("mallory@example.com", courses=["Course A"]).email))
    carol = bearer(factory.token(factory.user("carol@example.com", courses=["Course B"]).email))
    broken, healthy = receiver(fail_first=99), receiver()
    bad = client.post("/api/webhooks", json={"url": broken.url}, headers=mallory).json
    good = client.post("/api/webhooks", json={"url": healthy.url}, headers=carol).json
    conn = Redis.from_url(redis_url)
    fast, slow = (Queue(name, connection=conn) for name in (queue.WEBHOOK_QUEUE, queue.WEBHOOK_SLOW_QUEUE))

    def deliver_one() -> None:
        with app.app_context():
            worker = SimpleWorker([fast, slow], connection=conn)
            worker.work(burst=True, max_jobs=1, logging_level="ERROR")

    client.post(f"/api/webhooks/{bad['id']}/test", headers=mallory)
    assert (fast.count, slow.count) == (1, 0)  # nothing known against the course yet
    deliver_one()  # it fails
    for _ in range(3):
        client.post(f"/api/webhooks/{bad['id']}/test", headers=mallory)
    assert (fast.count, slow.count) == (0, 3)
    client.post(f"/api/webhooks/{good['id']}/test", headers=carol)
    assert (fast.count, slow.count) == (1, 3)
    deliver_one()
    assert len(healthy.requests) == 1 and len(broken.requests) == 1  # course B first
    for _ in range(3):
        deliver_one()
    assert len(broken.requests) == 4 and slow.count == 0  # course A's are still delivered


def test_a_delivery_connects_to_the_address_it_checked(app, client, member, receiver, work, monkeypatch):
    """DNS rebinding: a name that resolves to a public address when checked and to an inner one a
    moment later must not reach the inner one. The delivery connects to the address it checked
    (sending the name as Host). Simulated here: loopback counts as "public" for this test, and
    the resolver answers loopback once, then an address inside the network."""
    import ipaddress
    import socket

    from webapp.services import endpoints

    endpoint = receiver()
    port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
    hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    real_public, real_resolve = endpoints._public, socket.getaddrinfo
    monkeypatch.setattr(
        endpoints, "_public", lambda a: a == ipaddress.ip_address("127.0.0.1") or real_public(a)
    )
    answers = iter(["127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host != "rebind.example":
            return real_resolve(host, *args, **kwargs)
        return real_resolve(next(answers, "10.255.255.1"), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Webhook

        db.session.get(Webhook, hook["id"]).url = f"http://rebind.example:{port}/hooks"
        db.session.commit()
    app.config["WEBHOOK_TIMEOUT"] = 2
    client.post(f"/api/webhooks/{hook['id']}/test", headers=member)
    work()
    assert len(endpoint.requests) == 1
    headers, _ = endpoint.requests[0]
    assert headers["host"] == f"rebind.example:{port}"


def test_a_failed_delivery_says_why_in_words(app, client, member, work, tmp_path):
    """The log said `URLError: [SSL: CERTIFICATE_VERIFY_FAILED] … (_ssl.c:1006)`: now a sentence
    about the endpoint, for a certificate it cannot trust, a port nobody listens on, and an
    endpoint that never answers."""
    import socket
    import ssl
    import subprocess

    app.config.update(WEBHOOK_RETRY_INTERVALS=[0], WEBHOOK_TIMEOUT=1)
    # An HTTPS endpoint with a certificate signed by itself.
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hooks.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    tls = make_server("127.0.0.1", 0, lambda environ, start: Response("ok")(environ, start), threaded=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    # A port nobody listens on, and one that takes connections but never answers.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    cases = {
        f"https://127.0.0.1:{tls.server_port}/hooks": "TLS certificate",
        f"http://127.0.0.1:{refused_port}/hooks": "Connection refused",
        f"http://127.0.0.1:{silent.getsockname()[1]}/hooks": "No answer within 1 s",
    }
    try:
        for url, said in cases.items():
            hook = client.post("/api/webhooks", json={"url": url}, headers=member).json
            client.post(f"/api/webhooks/{hook['id']}/test", headers=member)
            work()
            errors = {
                d["error"] for d in client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
            }
            assert errors and all(said in error for error in errors), (url, errors)
            assert not any("URLError" in error or "_ssl.c" in error or "Errno" in error for error in errors)
    finally:
        tls.shutdown()
        silent.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_sent_test_shows_up_without_a_reload(app, browser, live_server, factory, receiver, work):
    """In a real browser: Send test, and the note then the log say it went, the page untouched."""
    from webapp.extensions import db
    from webapp.models import Course, User
    from webapp.services import webhooks

    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_INTERVALS=[0])
    user = factory.user("browser-hooks@example.com", courses=["Course A"])
    endpoint = receiver()
    with app.app_context():
        course = db.session.scalars(db.select(Course).where(Course.name == "Course A")).one()
        hook_id = webhooks.create(db.session.get(User, user.id), course, endpoint.url, None).id
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(20_000)
    page.goto(f"{live_server}/login?next=/webhooks")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", user.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live_server}/webhooks")
    assert page.locator(f"#deliveries-{hook_id}").inner_text().strip() == "Nothing delivered yet."

    page.click(f"#webhook-{hook_id} button:has-text('Send test')")
    page.wait_for_url(f"{live_server}/webhooks#webhook-{hook_id}")
    note = page.locator(f"#delivery-note-{hook_id}")
    assert note.inner_text().startswith("Sending webhook.test")
    # The keyboard goes on from the webhook acted on, not from the top of the page.
    page.wait_for_function("id => document.activeElement.id === 'webhook-' + id", arg=hook_id)
    page.keyboard.press("Tab")
    assert page.evaluate(
        "id => document.getElementById('webhook-' + id).contains(document.activeElement)", hook_id
    )
    page.evaluate("window.samePage = true")  # a reload would forget it
    work()
    page.wait_for_function(
        "id => document.getElementById('delivery-note-' + id).textContent.includes('answered 200')",
        arg=hook_id,
    )
    assert note.inner_text() == "Delivered: webhook.test (attempt 1) answered 200."
    assert page.locator(f"#deliveries-{hook_id} table.deliveries tbody tr").count() == 1
    assert page.get_attribute(f"#deliveries-{hook_id}", "hx-trigger") is None  # no more asking
    assert page.evaluate("window.samePage") is True and len(endpoint.requests) == 1
    page.close()


def test_an_answer_that_is_not_http_is_logged_as_a_failed_delivery(app, client, member, work):
    """http.client's own errors (a bad status line, an endless header) escaped the delivery log:
    the attempt went unrecorded and the endpoint's raw answer landed in RQ's traceback."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"<img src=x onerror=alert(1)>\r\n\r\n")
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/h"
    hook = client.post("/api/webhooks", json={"url": url}, headers=member).json
    assert client.post(f"/api/webhooks/{hook['id']}/test", headers=member).status_code == 202
    work()
    server.close()
    log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert log and all(d["error"] == "The endpoint's answer is not HTTP." for d in log)
    assert all(not d["succeeded"] and d["statusCode"] is None for d in log)


def _lanes(redis_url: str) -> list[Queue]:
    from webapp import queue

    conn = Redis.from_url(redis_url)
    return [Queue(name, connection=conn) for name in (queue.WEBHOOK_QUEUE, queue.WEBHOOK_SLOW_QUEUE)]


def test_a_redelivery_replaces_the_retry_still_waiting(app, client, member, receiver, work, redis_url):
    """A message failed and waits an hour for its retry; the endpoint is mended and the message
    redelivered: it arrives once more, as attempt 2, and that is all. The waiting retry used to
    stay scheduled and send it again an hour later, a second "attempt 2" in the log."""
    from rq.job import Job

    app.config["WEBHOOK_RETRY_INTERVALS"] = [3600]
    endpoint = receiver(fail_first=1)
    hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
    assert client.post(f"/api/webhooks/{hook['id']}/test", headers=member).status_code == 202
    work()
    [failed] = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert not failed["succeeded"]
    [waiting] = [job_id for lane in _lanes(redis_url) for job_id in lane.scheduled_job_registry.get_job_ids()]

    queued = client.post(f"/api/webhooks/deliveries/{failed['id']}/redeliver", headers=member)
    assert queued.status_code == 202 and queued.json["attempt"] == 2
    assert not any(lane.scheduled_job_registry.count for lane in _lanes(redis_url))  # taken out of RQ
    work()
    # Had a worker taken the waiting retry a moment before the redelivery took it out, it runs
    # anyway: it finds itself replaced and sends nothing.
    conn = Redis.from_url(redis_url)
    late = Job.fetch(waiting, connection=conn)
    Queue(late.origin, connection=conn).enqueue_job(late)
    work()

    log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert sorted((d["attempt"], d["succeeded"]) for d in log) == [(1, False), (2, True)]
    assert len(endpoint.requests) == 2
    # Which chain is the message's is remembered while one may run (the retries' waits and
    # attempts, and an hour), not for a week after every message.
    attempt_time = app.config["WEBHOOK_TIMEOUT"] + 30
    assert 0 < conn.ttl(f"lvt:webhook-chain:{failed['messageId']}") <= 3600 + 2 * attempt_time + 3600


def test_a_message_being_sent_is_not_redelivered_beside_it(app, client, member, receiver, work):
    """Redeliver pressed while the message's retry is on its way to the endpoint: refused (409,
    saying so), where it used to start a second chain of attempts beside the first (the same
    message sent twice at once, two attempts of the same number in the log)."""

    class Stalling(Receiver):
        """Fails twice; holds the second request (the retry) until released."""

        def __init__(self):
            self.arrived, self.release = threading.Event(), threading.Event()
            super().__init__(fail_first=2)

        def wsgi(self, environ, start_response):
            if len(self.requests) == 1:
                self.arrived.set()
                self.release.wait(20)
            return super().wsgi(environ, start_response)

    endpoint = Stalling()
    try:
        hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
        assert client.post(f"/api/webhooks/{hook['id']}/test", headers=member).status_code == 202
        answers = []

        def press_redeliver():
            try:
                assert endpoint.arrived.wait(20)
                [first] = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
                redeliver = f"/api/webhooks/deliveries/{first['id']}/redeliver"
                answers.append(client.post(redeliver, headers=member))
            finally:
                endpoint.release.set()

        presser = threading.Thread(target=press_redeliver)
        presser.start()
        work()  # attempt 1 fails; attempt 2 is held while Redeliver is pressed, fails; attempt 3 succeeds
        presser.join()
        [refused] = answers
        assert refused.status_code == 409, refused.json
        assert "being sent right now" in refused.json["message"]
        log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
        assert sorted((d["attempt"], d["succeeded"]) for d in log) == [(1, False), (2, False), (3, True)]
        assert len(endpoint.requests) == 3

        # Once nothing is on its way, a redelivery goes as the next attempt.
        again = client.post(f"/api/webhooks/deliveries/{log[-1]['id']}/redeliver", headers=member)
        assert again.status_code == 202 and again.json["attempt"] == 4
    finally:
        endpoint.server.shutdown()


def test_a_retry_taken_by_a_worker_as_redeliver_is_pressed_goes_once(
    app, client, member, redis_url, monkeypatch
):
    """A worker took the waiting retry in the moment between Redeliver reading that it waited and
    taking it out of RQ: both were sent at once, as two "attempt 2", and a further Redeliver was
    accepted though an attempt was visibly on its way. The worker now claims the send and the
    redelivery replaces the chain in one step each, so whichever comes second gives way."""
    from rq import SimpleWorker
    from rq.job import Job
    from rq.timeouts import TimerDeathPenalty

    from webapp import queue

    class ThreadWorker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self):
            pass

    conn = Redis.from_url(redis_url)
    lanes = [Queue(name, connection=conn) for name in queue.ALL_QUEUES]

    def run_one(done=None):
        with app.app_context():
            ThreadWorker(lanes, connection=conn).work(burst=True, max_jobs=1, logging_level="ERROR")
        if done is not None:
            done.set()

    class Holding(Receiver):
        """Fails the first request; holds the second until released; counts requests at once."""

        def __init__(self):
            self.lock, self.open, self.most = threading.Lock(), 0, 0
            self.second, self.release = threading.Event(), threading.Event()
            super().__init__(fail_first=1)

        def wsgi(self, environ, start_response):
            with self.lock:
                self.open += 1
                self.most = max(self.most, self.open)
                n = len(self.requests) + 1
            try:
                if n == 2:
                    self.second.set()
                    self.release.wait(20)
                return super().wsgi(environ, start_response)
            finally:
                with self.lock:
                    self.open -= 1

    app.config["WEBHOOK_RETRY_INTERVALS"] = [0, 0]
    endpoint, threads = Holding(), []
    try:
        hook = client.post("/api/webhooks", json={"url": endpoint.url}, headers=member).json
        assert client.post(f"/api/webhooks/{hook['id']}/test", headers=member).status_code == 202
        run_one()  # attempt 1 fails; its retry waits in the queue
        [failed] = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
        real_cancel = Job.cancel

        def a_worker_takes_it_first(job, *args, **kwargs):
            if not threads:
                done = threading.Event()
                threads.append(threading.Thread(target=run_one, args=(done,)))
                threads[0].start()
                while not (done.is_set() or endpoint.second.is_set()):
                    time.sleep(0.05)
            return real_cancel(job, *args, **kwargs)

        monkeypatch.setattr(Job, "cancel", a_worker_takes_it_first)
        redeliver = f"/api/webhooks/deliveries/{failed['id']}/redeliver"
        assert client.post(redeliver, headers=member).status_code == 202
        monkeypatch.setattr(Job, "cancel", real_cancel)
        assert threads, "the waiting retry was never taken out of RQ"
        threads.append(threading.Thread(target=run_one))
        threads[-1].start()
        assert endpoint.second.wait(20)  # an attempt is on its way (held by the endpoint)
        busy = client.post(redeliver, headers=member)
        assert busy.status_code == 409, busy.json
        time.sleep(1)  # anything else about to send would be at the endpoint by now
        assert endpoint.most == 1, "two attempts of one message were on their way at once"
    finally:
        endpoint.release.set()
        for thread in threads:
            thread.join(20)
        endpoint.server.shutdown()
    log = client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=member).json
    assert sorted((d["attempt"], d["succeeded"]) for d in log) == [(1, False), (2, True)]
    assert len(endpoint.requests) == 2
